"""The weekly community album, music side: clip features and quality at ingest, choosing and
ordering the week's shared songs, and joining them into one mastered album with chapters.

Pure functions: samples and bytes in, small dataclasses and bytes out. The bot side decides
whose songs may go in (consent), stores features and votes, and makes a build idempotent;
everything here is deterministic (the same songs give the same album, byte for byte).

Choices: fingerprints are chromaprint's, computed in-process through ctypes (a subprocess
per clip would cost more than the whole 30 ms budget; fed at 11025 Hz it skips its own slow
resampler). Near-duplicates are found by locality-sensitive hashing: two 20-bit slices of
every fingerprint item are bucket keys, and only clips sharing several keys are compared
bit by bit, so choosing never compares all pairs. The order is searched over the chosen
songs only (all pairs of up to SEARCH_MAX_SONGS: nearest neighbours from every start, then
2-opt), key steps and tempo steps each weighed against a random order's; a longer list walks
the circle of fifths and reverses short runs. Each join overlaps a bar with the incoming
song's first downbeat on a downbeat of the outgoing one, the outgoing tail cut where it has
faded, and far-apart tempi ramped to meet (see `order` and `assemble`).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import io
import itertools
import math
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import scipy.fft
from numpy.lib.stride_tricks import sliding_window_view
from scipy.signal import resample_poly

from engine import audio
from engine.errors import InvalidRequest, ToolMissing
from engine.theory import PITCH_CLASS_NAMES, Key, parse_key

# --- Features at ingest -------------------------------------------------------------------

FRAME_S = 0.0232  # onset, timbre and silence hop (512 samples at 22.05 kHz; a power of 2)
CHROMA_FRAME_S = 0.1858  # chroma frames, side by side (4096 samples at 22.05 kHz; ditto)
SILENCE_BELOW_PEAK_DB = 45.0  # a frame this far under the loudest one is silence...
SILENCE_FLOOR_DBFS = -60.0  # ...and so is any frame under this level
QUIET_BELOW_LOUD_DB = 30.0  # inside the bounds, frames this far under the loud ones are gaps
MIN_TEMPO_BPM, MAX_TEMPO_BPM, PRIOR_TEMPO_BPM = 60.0, 200.0, 120.0
BEATS_PER_BAR = 4
ONSET_LAG_FRAMES = 1.5  # an onset peaks in the flux this many hops before it sounds
GOOD_LENGTH_S = (10.0, 180.0)  # a song length that fits an album track
CLIPPED_LEVEL = 0.999
CLIPPING_ZERO_SHARE = 0.02  # this share of samples stuck at full scale scores 0
QUALITY_WEIGHTS = {"pitch": 0.4, "clipping": 0.25, "silence": 0.15, "length": 0.2}
TIMBRE_BANDS_HZ = (0.0, 200.0, 500.0, 1000.0, 2000.0, 4000.0)
TIMBRE_NAMES = ("centroid", "rolloff", "flatness", "band_0_200", "band_200_500",
                "band_500_1k", "band_1k_2k", "band_2k_4k", "band_4k_up")

# Krumhansl and Kessler's key profiles (probe-tone ratings), tonic first.
_MAJOR_PROFILE = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29,
                           2.88])
_MINOR_PROFILE = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34,
                           3.17])


@dataclass(frozen=True)
class Quality:
    """A clip's fitness for the album (0..1) and its parts, each 0..1 (1 is best).

    pitch_accuracy: share of the vocal's voiced frames within 50 cents of its note (None
    when unknown); clipping_share: share of samples stuck at full scale; silence_share: share
    of frames inside the trimmed bounds 30 dB or more under the loud ones (the 95th
    percentile); length_fit: 1 for 10-180 s, less outside.
    """

    score: float
    pitch_accuracy: float | None
    clipping_share: float
    silence_share: float
    length_fit: float


@dataclass(frozen=True)
class ClipFeatures:
    """What the album needs to know about one song; JSON round trip via to_json/from_json.

    Times are seconds on the clip's own time line; chroma is 12 means (C first, summing to
    1); timbre holds TIMBRE_NAMES in 0..1; fingerprint is chromaprint's raw 32-bit items.
    """

    start_s: float
    end_s: float
    duration_s: float
    loudness_lufs: float
    key: str
    fifths: int  # the key's place on the circle of fifths: C major / A minor 0, G / Em 1, ...
    tempo_bpm: float
    beat_period_s: float
    first_beat_s: float
    first_downbeat_s: float
    chroma: tuple[float, ...]
    timbre: tuple[float, ...]
    quality: Quality
    fingerprint: tuple[int, ...] = field(repr=False)

    def beats_s(self) -> np.ndarray:
        """Beat times (s) from the first beat to the end of the trimmed clip."""
        count = max(0, int((self.end_s - self.first_beat_s) / self.beat_period_s) + 1)
        return self.first_beat_s + self.beat_period_s * np.arange(count)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["chroma"], data["timbre"] = list(self.chroma), list(self.timbre)
        data["fingerprint"] = list(self.fingerprint)
        if not math.isfinite(self.loudness_lufs):
            data["loudness_lufs"] = None  # JSON has no -inf
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ClipFeatures:
        values = dict(data)
        values["quality"] = Quality(**values["quality"])
        if values["loudness_lufs"] is None:
            values["loudness_lufs"] = float("-inf")
        for name in ("chroma", "timbre", "fingerprint"):
            values[name] = tuple(values[name])
        return cls(**values)


def features(samples: np.ndarray, sample_rate: int, *, key: Key | str | None = None,
             tempo_bpm: float | None = None, downbeat_s: float | None = None,
             pitch_accuracy: float | None = None) -> ClipFeatures:
    """Features of a decoded mono clip (float samples in -1..1 at `sample_rate` Hz).

    key, tempo_bpm and downbeat_s (the time of any downbeat, s): pass them when known
    (SingSong's own songs know them, and start on a downbeat at 0 s). Otherwise the key
    comes from the chroma against Krumhansl's key profiles, the tempo from the
    autocorrelation of the onset strength, and the beats from the beat grid that collects the
    most onset strength (on busy off-beats it can land half a beat early or late).
    pitch_accuracy: the vocal's share of voiced frames within 50 cents of its notes, when
    known (engine.pipeline's summary has it).
    """
    samples = np.asarray(samples, dtype=np.float32)
    if samples.size == 0:
        raise InvalidRequest("the clip is empty: there is nothing to describe")
    duration_s = len(samples) / sample_rate
    hop = _power_of_two(FRAME_S * sample_rate)
    level_db = _frame_levels_db(samples, hop)
    loud = level_db > max(float(level_db.max(initial=-200.0)) - SILENCE_BELOW_PEAK_DB,
                          SILENCE_FLOOR_DBFS)
    if loud.any():
        first, last = int(np.argmax(loud)), len(loud) - int(np.argmax(loud[::-1]))
        # Samples after the last whole frame count with it.
        start_s = first * hop / sample_rate
        end_s = duration_s if last == len(loud) else last * hop / sample_rate
        inside = level_db[first:last]
        quiet = inside < np.percentile(inside, 95) - QUIET_BELOW_LOUD_DB
        silence_share = float(quiet.mean())
    else:
        start_s, end_s, silence_share = 0.0, duration_s, 1.0
    clip = samples[round(start_s * sample_rate):round(end_s * sample_rate)]

    power = _power_spectrogram(clip, 2 * hop, hop)
    chroma = _chroma(clip, sample_rate)
    known_key = parse_key(key) if isinstance(key, str) else key
    found_key = known_key or _estimate_key(chroma)
    band_starts, band_widths, centres_hz = _bands(sample_rate, 2 * hop)
    band_power = np.add.reduceat(power, band_starts, axis=1)
    onset = _onset_strength(band_power)
    if tempo_bpm:
        periods_s = [60.0 / tempo_bpm]
    else:  # the autocorrelation's period, refined by the grid that fits the onsets best
        estimate = _estimate_period_s(onset, hop / sample_rate)
        periods_s = list(estimate * np.linspace(0.97, 1.03, 25))
    period_s, first_beat_s, first_downbeat_s = _beat_grid(onset, hop / sample_rate, periods_s)
    if downbeat_s is not None:  # the known downbeat anchors the grid: the first of each
        first_beat_s = _first_at_or_after(start_s, downbeat_s, period_s) - start_s
        first_downbeat_s = _first_at_or_after(start_s, downbeat_s,
                                              BEATS_PER_BAR * period_s) - start_s
    quality = _quality(samples, silence_share, end_s - start_s, pitch_accuracy)
    return ClipFeatures(
        start_s=round(float(start_s), 4), end_s=round(float(end_s), 4),
        duration_s=round(duration_s, 4),
        loudness_lufs=round(audio.integrated_loudness(clip, sample_rate), 3),
        key=found_key.name, fifths=fifths_position(found_key),
        tempo_bpm=round(float(60.0 / period_s), 3), beat_period_s=round(float(period_s), 5),
        first_beat_s=round(float(start_s + first_beat_s), 4),
        first_downbeat_s=round(float(start_s + first_downbeat_s), 4),
        chroma=tuple(round(float(c), 5) for c in chroma.mean(axis=0) / max(
            float(chroma.mean(axis=0).sum()), 1e-12)),
        timbre=tuple(round(float(t), 5) for t in _timbre(band_power, centres_hz, band_widths)),
        quality=quality,
        fingerprint=tuple(int(v) for v in fingerprint(clip, sample_rate)),
    )


def _first_at_or_after(time_s: float, anchor_s: float, step_s: float) -> float:
    """The first of anchor_s + k * step_s (k any integer) at or after time_s."""
    return anchor_s + math.ceil((time_s - anchor_s) / step_s - 1e-9) * step_s


def fifths_position(key: Key) -> int:
    """The key's place on the circle of fifths (0-11): C major and A minor 0, G and E minor
    1, ..., F and D minor 11; relative keys share a place."""
    return (key.relative_major_tonic * 7) % 12


def _power_of_two(samples: float) -> int:
    """The power of two nearest to `samples` (FFT sizes that are fast at any rate)."""
    return int(2 ** round(math.log2(max(samples, 1.0))))


def _frame_levels_db(samples: np.ndarray, hop: int) -> np.ndarray:
    """RMS level (dBFS) of consecutive frames of `hop` samples."""
    usable = max(1, len(samples) // hop) * hop
    frames = audio.fit_length(samples, usable).reshape(-1, hop).astype(np.float64)
    return np.asarray(10 * np.log10(np.mean(frames**2, axis=1) + 1e-20))


def _power_spectrogram(samples: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    """|STFT|^2 with a Hann window, frames of n_fft every hop samples ([frames, bins])."""
    if len(samples) < n_fft:
        samples = audio.fit_length(samples, n_fft)
    frames = sliding_window_view(samples, n_fft)[::hop] * _hann(n_fft)
    spectrum = scipy.fft.rfft(frames, axis=1)
    return np.asarray(spectrum.real**2 + spectrum.imag**2)


@cache
def _hann(n: int) -> np.ndarray:
    return np.hanning(n).astype(np.float32)


def _chroma(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    """Per-frame pitch-class magnitude ([frames, 12], C first) from 55 Hz to 5 kHz."""
    n_fft = _power_of_two(CHROMA_FRAME_S * sample_rate)
    power = _power_spectrogram(samples, n_fft, n_fft)
    bins, starts = _chroma_bins(sample_rate, n_fft)
    # Summed with reduceat over bins grouped by pitch class: no BLAS threads for a tiny job.
    return np.asarray(np.add.reduceat(np.sqrt(power[:, bins]), starts, axis=1))


@cache
def _chroma_bins(sample_rate: int, n_fft: int) -> tuple[np.ndarray, np.ndarray]:
    """The FFT bins from 55 Hz to 5 kHz ordered by pitch class (C first), and where each
    class's run of bins starts in that order."""
    freqs = np.arange(n_fft // 2 + 1) * sample_rate / n_fft
    bins = np.flatnonzero((freqs >= 55.0) & (freqs <= 5000.0))
    classes = np.round(12 * np.log2(freqs[bins] / 440.0) + 9).astype(int) % 12
    order = np.argsort(classes, kind="stable")
    return bins[order], np.searchsorted(classes[order], np.arange(12))


def _estimate_key(chroma: np.ndarray) -> Key:
    """The key whose Krumhansl profile correlates best with the mean chroma."""
    mean = chroma.mean(axis=0)
    if not np.any(mean > 0):
        return Key(0, "major")
    profiles, keys = _key_profiles()
    centred = mean - mean.mean()
    scores = (profiles * (centred / max(float(np.linalg.norm(centred)), 1e-12))).sum(axis=1)
    return keys[int(np.argmax(scores))]


@cache
def _key_profiles() -> tuple[np.ndarray, tuple[Key, ...]]:
    """The 24 key profiles, centred and of unit length (rows), and their keys."""
    rows, keys = [], []
    for mode, profile in (("major", _MAJOR_PROFILE), ("minor", _MINOR_PROFILE)):
        for tonic in range(12):
            rotated = np.roll(profile, tonic) - profile.mean()
            rows.append(rotated / np.linalg.norm(rotated))
            keys.append(Key(tonic, mode))  # type: ignore[arg-type]
    return np.array(rows), tuple(keys)


def _onset_strength(bands: np.ndarray) -> np.ndarray:
    """Spectral flux of log-compressed band magnitudes, one value per frame (mean-removed)."""
    log_mag = np.log1p(100.0 * np.sqrt(bands))
    flux = np.maximum(np.diff(log_mag, axis=0), 0.0).mean(axis=1)
    flux = np.concatenate([[0.0], flux])
    return np.asarray(flux - flux.mean())


@cache
def _bands(sample_rate: int, n_fft: int, count: int = 40) -> tuple[np.ndarray, np.ndarray,
                                                                     np.ndarray]:
    """FFT bins grouped into up to `count` bands spaced evenly in log frequency from 50 Hz
    to the Nyquist frequency (bins under 50 Hz join the first; empty bands are dropped):
    each band's first bin, its width (bins) and its centre (Hz)."""
    freqs = np.arange(n_fft // 2 + 1) * sample_rate / n_fft
    edges = np.geomspace(50.0, sample_rate / 2, count + 1)
    band = np.clip(np.searchsorted(edges, freqs, side="right") - 1, 0, count - 1)
    starts = np.flatnonzero(np.diff(band, prepend=-1))
    widths = np.diff(starts, append=len(freqs))
    return starts, widths, np.sqrt(edges[:-1] * edges[1:])[band[starts]]


def _estimate_period_s(onset: np.ndarray, hop_s: float) -> float:
    """The beat period (s) whose lag best autocorrelates the onset strength, weighted by a
    log-normal prior around 120 BPM (one octave wide)."""
    if len(onset) < 8 or not np.any(onset):
        return 60.0 / PRIOR_TEMPO_BPM
    size = scipy.fft.next_fast_len(2 * len(onset))
    spectrum = scipy.fft.rfft(onset, size)
    autocorr = scipy.fft.irfft(spectrum.real**2 + spectrum.imag**2, size)[:len(onset)]
    lags = np.arange(len(onset), dtype=np.float64)
    lags[0] = 1.0
    bpm = 60.0 / (lags * hop_s)
    usable = (bpm >= MIN_TEMPO_BPM) & (bpm <= MAX_TEMPO_BPM)
    if not usable.any():
        return 60.0 / PRIOR_TEMPO_BPM
    prior = np.exp(-0.5 * np.log2(bpm / PRIOR_TEMPO_BPM) ** 2)
    scored = np.where(usable, np.maximum(autocorr, 0.0) * prior, -np.inf)
    lag = int(np.argmax(scored))
    if 0 < lag < len(scored) - 1 and np.isfinite(scored[lag - 1 : lag + 2]).all():
        left, mid, right = scored[lag - 1], scored[lag], scored[lag + 1]
        bend = left - 2 * mid + right
        shift = 0.5 * (left - right) / bend if bend < 0 else 0.0
        return float((lag + shift) * hop_s)
    return float(lag * hop_s)


def _beat_grid(onset: np.ndarray, hop_s: float, periods_s: Sequence[float]
               ) -> tuple[float, float, float]:
    """The beat grid that collects the most onset strength: its period (one of `periods_s`),
    its first beat and its first downbeat (s from the clip's start); the downbeat is the beat
    of the bar (every BEATS_PER_BAR beats) whose own grid collects the most."""
    if len(onset) < 2:
        return periods_s[0], 0.0, 0.0
    best: tuple[float, float, int, np.ndarray] = (-np.inf, periods_s[0], 0, onset[:1])
    for period_s in periods_s:
        period = period_s / hop_s
        phases = np.arange(max(1, int(period)))
        beats = np.arange(int(len(onset) / period) + 1)
        grid = np.round(phases[:, None] + beats[None, :] * period).astype(int)
        inside = grid < len(onset)
        strength = np.where(inside, onset[np.minimum(grid, len(onset) - 1)], 0.0)
        scores = strength.sum(axis=1) / np.maximum(inside.sum(axis=1), 1)
        phase = int(np.argmax(scores))
        if scores[phase] > best[0] + 1e-12:
            best = (float(scores[phase]), period_s, phase, strength[phase])
    _, period_s, phase, on_beats = best
    bar_scores = [on_beats[m::BEATS_PER_BAR].mean() if on_beats[m::BEATS_PER_BAR].size
                  else -np.inf for m in range(BEATS_PER_BAR)]
    downbeat = int(np.argmax(bar_scores))
    # Flux value i compares the windows (two hops long) starting i - 1 and i hops in: it
    # peaks when a note starts in the second half of window i, 1.5 hops after i.
    first_beat_s = (phase + ONSET_LAG_FRAMES) * hop_s
    return period_s, first_beat_s, first_beat_s + downbeat * period_s


def _timbre(band_power: np.ndarray, centres_hz: np.ndarray, bins: np.ndarray) -> np.ndarray:
    """TIMBRE_NAMES, each in 0..1, from band energies ([frames, bands]) with their centres
    (Hz) and widths (bins): the mean spectral centroid and 85 % rolloff (octaves above 50
    Hz over 8), flatness (dB over 60, plus 1) and the share of energy in each of
    TIMBRE_BANDS_HZ."""
    frame_energy = band_power.sum(axis=1)
    active = frame_energy > frame_energy.max(initial=0.0) * 1e-4
    if not active.any():
        return np.zeros(len(TIMBRE_NAMES))
    spectra, energy = band_power[active], frame_energy[active]
    octaves = np.log2(centres_hz / 50.0)
    centroid = (spectra * octaves).sum(axis=1) / energy
    rolloff = octaves[np.argmax(np.cumsum(spectra, axis=1) >= 0.85 * energy[:, None], axis=1)]
    density = spectra / bins + 1e-12
    flatness_db = 10 * np.log10(np.exp(np.log(density).mean(axis=1)) / density.mean(axis=1))
    shares = np.add.reduceat(spectra.sum(axis=0), np.searchsorted(centres_hz, TIMBRE_BANDS_HZ)
                             ) / energy.sum()
    values = [centroid.mean() / 8, rolloff.mean() / 8, 1 + flatness_db.mean() / 60, *shares]
    return np.clip(np.array(values, dtype=np.float64), 0.0, 1.0)


def _quality(samples: np.ndarray, silence_share: float, length_s: float,
             pitch_accuracy: float | None) -> Quality:
    stuck = np.abs(samples) >= CLIPPED_LEVEL
    # A sample at full scale counts as clipped when a neighbour is there too: a flat top.
    flat = stuck[1:] & stuck[:-1]
    clipping_share = float(flat.mean()) if flat.size else 0.0
    low, high = GOOD_LENGTH_S
    length_fit = min(1.0, length_s / low, high / max(length_s, 1e-9))
    parts = {"clipping": max(0.0, 1.0 - clipping_share / CLIPPING_ZERO_SHARE),
             "silence": 1.0 - silence_share, "length": length_fit}
    if pitch_accuracy is not None:
        parts["pitch"] = pitch_accuracy
    score = sum(QUALITY_WEIGHTS[k] * v for k, v in parts.items()) / sum(
        QUALITY_WEIGHTS[k] for k in parts)
    return Quality(score=round(score, 4), pitch_accuracy=pitch_accuracy,
                   clipping_share=round(clipping_share, 6),
                   silence_share=round(silence_share, 4), length_fit=round(length_fit, 4))


# --- Chromaprint fingerprints -------------------------------------------------------------

CHROMAPRINT_RATE = 11025  # chromaprint's own rate: fed at it, it skips its slow resampler
CHROMAPRINT_ITEM_S = 4096 / 3 / CHROMAPRINT_RATE  # one 32-bit item every 0.124 s
MAX_OFFSET_S = 3.0  # fingerprints are compared at offsets up to this much
MIN_OVERLAP_ITEMS = 16
NEAR_DUPLICATE_SIMILARITY = 0.8  # 1 - bit error rate; unrelated audio sits near 0.5


@cache
def _chromaprint() -> ctypes.CDLL:
    """libchromaprint (the C library ffmpeg links), loaded once, with its signatures."""
    name = ctypes.util.find_library("chromaprint") or "libchromaprint.so.1"
    try:
        lib = ctypes.CDLL(name)
    except OSError:
        raise ToolMissing("libchromaprint is not installed (Debian: apt-get install "
                          "libchromaprint1)") from None
    lib.chromaprint_new.restype = ctypes.c_void_p
    lib.chromaprint_new.argtypes = [ctypes.c_int]
    lib.chromaprint_start.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int]
    lib.chromaprint_feed.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int]
    lib.chromaprint_finish.argtypes = [ctypes.c_void_p]
    lib.chromaprint_get_raw_fingerprint.argtypes = [
        ctypes.c_void_p, ctypes.POINTER(ctypes.POINTER(ctypes.c_uint32)),
        ctypes.POINTER(ctypes.c_int)]
    lib.chromaprint_dealloc.argtypes = [ctypes.c_void_p]
    lib.chromaprint_free.argtypes = [ctypes.c_void_p]
    return lib


def fingerprint(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    """Chromaprint's raw fingerprint (uint32 items, one per 0.124 s) of mono samples,
    computed in-process by libchromaprint (default algorithm)."""
    pcm = (np.clip(_at_chromaprint_rate(samples, sample_rate), -1.0, 1.0) * 32767).astype("<i2")
    lib = _chromaprint()
    context = lib.chromaprint_new(1)  # CHROMAPRINT_ALGORITHM_DEFAULT (TEST2)
    items = ctypes.POINTER(ctypes.c_uint32)()
    size = ctypes.c_int()
    try:
        if not (lib.chromaprint_start(context, CHROMAPRINT_RATE, 1)
                and lib.chromaprint_feed(context, pcm.ctypes.data, pcm.size)
                and lib.chromaprint_finish(context)
                and lib.chromaprint_get_raw_fingerprint(context, ctypes.byref(items),
                                                        ctypes.byref(size))):
            raise RuntimeError("libchromaprint failed to fingerprint the clip")
        result = np.ctypeslib.as_array(items, (size.value,)).copy() if size.value else (
            np.zeros(0, np.uint32))
    finally:
        if items:
            lib.chromaprint_dealloc(items)
        lib.chromaprint_free(context)
    return result


def _at_chromaprint_rate(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    """The samples at 11025 Hz: an exact multiple averages neighbours (its low-pass is
    enough for chromaprint's 28 Hz - 3.5 kHz chroma, and ten times cheaper)."""
    factor, remainder = divmod(sample_rate, CHROMAPRINT_RATE)
    if remainder == 0 and factor >= 1:
        usable = len(samples) // factor * factor
        return np.asarray(sum(samples[i:usable:factor] for i in range(factor)) / factor)
    divisor = math.gcd(sample_rate, CHROMAPRINT_RATE)
    return np.asarray(resample_poly(samples, CHROMAPRINT_RATE // divisor,
                                    sample_rate // divisor))


def similarity(a: Sequence[int] | np.ndarray, b: Sequence[int] | np.ndarray) -> float:
    """1 - the bit error rate of two raw fingerprints at their best alignment (offsets up to
    MAX_OFFSET_S, overlap at least MIN_OVERLAP_ITEMS or the shorter one); 0 when they are
    too short to compare. Unrelated audio scores about 0.5, the same audio near 1."""
    x, y = np.asarray(a, dtype=np.uint32), np.asarray(b, dtype=np.uint32)
    need = min(MIN_OVERLAP_ITEMS, len(x), len(y))
    if need == 0:
        return 0.0
    max_offset = round(MAX_OFFSET_S / CHROMAPRINT_ITEM_S)
    best = 0.0
    for offset in range(-max_offset, max_offset + 1):
        left, right = (x[offset:], y) if offset >= 0 else (x, y[-offset:])
        overlap = min(len(left), len(right))
        if overlap < need:
            continue
        errors = int(np.bitwise_count(left[:overlap] ^ right[:overlap]).sum())
        best = max(best, 1.0 - errors / (32 * overlap))
    return best


def near_duplicate(a: ClipFeatures, b: ClipFeatures) -> bool:
    """Whether two clips are the same recording (re-encoded, trimmed a little, ...)."""
    return similarity(a.fingerprint, b.fingerprint) >= NEAR_DUPLICATE_SIMILARITY


# --- Choosing the week's songs ------------------------------------------------------------

VOTE_WEIGHT = 0.1  # each doubling of votes (plus one) is worth this much quality
LSH_BANDS = ((12, 0xFFFFF), (0, 0xFFFFF))  # (shift, mask): sub-hashes of 20 bits per item
LSH_MIN_SHARED = 4  # candidate pairs share at least this many sub-hashes
LSH_MAX_BUCKET = 32  # sub-hashes this common say nothing (silence, a drone): skipped


@dataclass(frozen=True)
class Candidate:
    """A shared song of the week: its track, its person, its features and votes."""

    track_id: int
    person_id: int
    features: ClipFeatures
    votes: int = 0

    @property
    def score(self) -> float:
        """Ranking: quality plus VOTE_WEIGHT per doubling of (votes + 1)."""
        return self.features.quality.score + VOTE_WEIGHT * math.log2(1 + max(self.votes, 0))


def choose(candidates: Sequence[Candidate], *, size: int = 20,
           per_person: int = 2) -> list[Candidate]:
    """The best `size` candidates by score (ties: lower track id first), at most
    `per_person` per person, each group of near-duplicates collapsed to its best one.

    Near-duplicates are found by locality-sensitive hashing: only candidates sharing
    fingerprint sub-hashes are compared, never all pairs.
    """
    ranked = sorted(candidates, key=lambda c: (-c.score, c.track_id))
    group = duplicate_groups([c.features.fingerprint for c in ranked])
    taken_groups: set[int] = set()
    per_person_count: dict[int, int] = {}
    chosen: list[Candidate] = []
    for index, candidate in enumerate(ranked):
        if len(chosen) >= size:
            break
        if group[index] in taken_groups:
            continue
        # The group is spent by its best member even when that member's person is full:
        # a copy must not slip in under another name.
        taken_groups.add(group[index])
        if per_person_count.get(candidate.person_id, 0) >= per_person:
            continue
        per_person_count[candidate.person_id] = per_person_count.get(candidate.person_id, 0) + 1
        chosen.append(candidate)
    return chosen


def duplicate_groups(fingerprints: Sequence[Sequence[int]]) -> list[int]:
    """A group number per fingerprint: near-duplicates share one (the lowest index in the
    group). Pairs are compared only when they share LSH_MIN_SHARED sub-hashes."""
    parent = list(range(len(fingerprints)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    arrays = [np.asarray(f, dtype=np.uint32) for f in fingerprints]
    for first, second in _lsh_pairs(arrays):
        a, b = root(first), root(second)
        if a != b and similarity(arrays[first], arrays[second]) >= NEAR_DUPLICATE_SIMILARITY:
            parent[max(a, b)] = min(a, b)
    return [root(i) for i in range(len(fingerprints))]


def _lsh_pairs(arrays: Sequence[np.ndarray]) -> list[tuple[int, int]]:
    """Index pairs (i < j) whose fingerprints share at least LSH_MIN_SHARED sub-hashes."""
    keys, owners = [], []
    for index, items in enumerate(arrays):
        own = np.unique(np.concatenate([
            ((items.astype(np.int64) >> shift) & mask) | (band << 32)
            for band, (shift, mask) in enumerate(LSH_BANDS)]))
        keys.append(own)
        owners.append(np.full(len(own), index, np.int64))
    if not keys:
        return []
    key, owner = np.concatenate(keys), np.concatenate(owners)
    order = np.argsort(key, kind="stable")
    key, owner = key[order], owner[order]
    starts = np.flatnonzero(np.concatenate([[True], key[1:] != key[:-1]]))
    sizes = np.diff(np.append(starts, len(key)))
    bucket_size = np.repeat(sizes, sizes)
    pair_codes = []
    for step in range(1, LSH_MAX_BUCKET):
        same = (key[step:] == key[:-step]) & (bucket_size[step:] <= LSH_MAX_BUCKET)
        if not same.any():
            break
        a, b = owner[:-step][same], owner[step:][same]
        pair_codes.append(np.minimum(a, b) * len(arrays) + np.maximum(a, b))
    if not pair_codes:
        return []
    codes, counts = np.unique(np.concatenate(pair_codes), return_counts=True)
    frequent = codes[counts >= LSH_MIN_SHARED]
    return [(int(c // len(arrays)), int(c % len(arrays))) for c in frequent]


# --- Ordering -----------------------------------------------------------------------------

TIMBRE_SHARE = 0.25  # timbre counts this much beside key and tempo (each 1)
SEARCH_MAX_SONGS = 64  # up to this many songs the order is searched over all pairs
# (key, tempo) weights tried in turn until both steps beat a random order's
WEIGHTINGS = ((1.0, 1.0), (2.0, 1.0), (1.0, 2.0), (4.0, 1.0), (1.0, 4.0))
ORDER_WINDOW = 8  # beyond SEARCH_MAX_SONGS, local moves reverse runs of at most this many
ORDER_PASSES = 6


def key_distance(a: ClipFeatures, b: ClipFeatures) -> int:
    """Steps between the two keys on the circle of fifths (0-6; relative keys 0)."""
    step = abs(a.fifths - b.fifths) % 12
    return min(step, 12 - step)


def tempo_distance_pct(a: ClipFeatures, b: ClipFeatures) -> float:
    """How much faster the faster song is, in % of the slower one's tempo."""
    low, high = sorted((a.tempo_bpm, b.tempo_bpm))
    return 100.0 * (high / low - 1.0)


def order(chosen: Sequence[Candidate]) -> list[Candidate]:
    """The songs in an order where neighbours fit: near on the circle of fifths and in tempo.

    Key steps and tempo steps (|ln| of the tempo ratio) are each measured against their
    mean over all pairs of these songs, which is what a random order averages, so neither
    outweighs the other whatever the week holds; timbre counts TIMBRE_SHARE as much. Up to
    SEARCH_MAX_SONGS songs (an album has 20 at most) the cheapest path is searched: from
    every song, nearest neighbours, then 2-opt until nothing improves. When the mean key or
    tempo step is then not under a random order's, the weights lean towards it (WEIGHTINGS)
    and the search runs again. Longer lists walk the circle of fifths, snaking through
    tempo, improved by reversing runs of up to ORDER_WINDOW songs: O(n log n + n * window).
    """
    if len(chosen) < 3:  # every order of two is as good
        return list(chosen)
    features = [c.features for c in chosen]
    if len(chosen) > SEARCH_MAX_SONGS:
        cost = _pair_cost(features, (1.0, 1.0))
        path = _circle_path(chosen)
        for _ in range(ORDER_PASSES):
            if not _improve_locally(path, cost):
                break
        return [chosen[i] for i in path]
    steps = _step_matrices(features)
    tried = []
    for weights in WEIGHTINGS:
        path = _cheapest_path(_weighted(steps, weights))
        if _beats_random(steps, path):
            return [chosen[i] for i in path]
        tried.append(path)
    balanced = _weighted(steps, WEIGHTINGS[0])  # none beat random on both: the evenest
    return [chosen[i] for i in min(tried, key=lambda path: _path_cost(balanced, path))]


def neighbour_distances(ordered: Sequence[ClipFeatures]) -> dict[str, float]:
    """Mean neighbour key distance (fifths) and tempo distance (%)."""
    pairs = list(itertools.pairwise(ordered))
    if not pairs:
        return {"key_fifths": 0.0, "tempo_pct": 0.0}
    return {"key_fifths": float(np.mean([key_distance(a, b) for a, b in pairs])),
            "tempo_pct": float(np.mean([tempo_distance_pct(a, b) for a, b in pairs]))}


def random_order_distances(songs: Sequence[ClipFeatures]) -> dict[str, float]:
    """What a random order's neighbours average (every pair is neighbours equally often):
    the mean key distance (fifths) and tempo distance (%) over all pairs."""
    pairs = list(itertools.combinations(songs, 2))
    if not pairs:
        return {"key_fifths": 0.0, "tempo_pct": 0.0}
    return {"key_fifths": float(np.mean([key_distance(a, b) for a, b in pairs])),
            "tempo_pct": float(np.mean([tempo_distance_pct(a, b) for a, b in pairs]))}


def _step_matrices(features: Sequence[ClipFeatures]) -> np.ndarray:
    """[3, n, n]: key steps, tempo steps (|ln ratio|) and timbre distances between every
    two songs, each divided by its mean over all pairs (1 where all are alike)."""
    fifths = np.array([f.fifths for f in features])
    log_tempo = np.log(np.maximum([f.tempo_bpm for f in features], 1.0))
    timbre = np.array([f.timbre for f in features], dtype=np.float64)
    key = np.abs(fifths[:, None] - fifths[None, :]) % 12
    steps = np.stack([np.minimum(key, 12 - key).astype(np.float64),
                      np.abs(log_tempo[:, None] - log_tempo[None, :]),
                      np.linalg.norm(timbre[:, None, :] - timbre[None, :, :], axis=2)])
    pairs = np.triu_indices(len(features), 1)
    means = steps[:, pairs[0], pairs[1]].mean(axis=1) if len(features) > 1 else np.ones(3)
    return np.asarray(steps / np.where(means > 1e-12, means, 1.0)[:, None, None])


def _weighted(steps: np.ndarray, weights: tuple[float, float]) -> np.ndarray:
    return np.asarray(weights[0] * steps[0] + weights[1] * steps[1] + TIMBRE_SHARE * steps[2])


def _beats_random(steps: np.ndarray, path: Sequence[int]) -> bool:
    """Whether the path's mean key step and mean tempo step are both under 1, the mean over
    all pairs (steps of a kind where every pair is alike are all 0, so under it)."""
    here, there = np.array(path[:-1]), np.array(path[1:])
    return all(float(steps[kind][here, there].mean()) < 1.0 - 1e-9 for kind in (0, 1))


def _path_cost(cost: np.ndarray, path: Sequence[int]) -> float:
    return float(sum(cost[a, b] for a, b in itertools.pairwise(path)))


def _cheapest_path(cost: np.ndarray) -> list[int]:
    """An open path through every index, short under `cost` (a symmetric matrix): from each
    start the nearest unvisited neighbour next, then 2-opt; the cheapest of those, ties to
    the earliest start (deterministic)."""
    n = len(cost)
    table = cost.tolist()
    best: tuple[float, list[int]] = (math.inf, list(range(n)))
    for start in range(n):
        path = _nearest_neighbour_path(table, start)
        while _improve_locally(path, lambda a, b: table[a][b], window=n):
            pass
        total = _path_cost(cost, path)
        if total < best[0] - 1e-9:
            best = (total, path)
    return best[1]


def _nearest_neighbour_path(table: list[list[float]], start: int) -> list[int]:
    path, left = [start], set(range(len(table))) - {start}
    while left:
        here = table[path[-1]]
        following = min(sorted(left), key=lambda j: here[j])
        path.append(following)
        left.remove(following)
    return path


def _pair_cost(features: Sequence[ClipFeatures], weights: tuple[float, float]
               ) -> Callable[[int, int], float]:
    """The weighted step between two songs by index, each kind of step divided by an O(n)
    estimate of its mean over all pairs (for lists too long for all pairs)."""
    fifths = np.array([f.fifths for f in features])
    log_tempo = np.log(np.maximum([f.tempo_bpm for f in features], 1.0))
    timbre = np.array([f.timbre for f in features], dtype=np.float64)
    counts = np.bincount(fifths, minlength=12).astype(np.float64)
    ring = np.arange(12)
    circle = np.minimum(ring, 12 - ring)[(ring[:, None] - ring[None, :]) % 12]
    key_mean = float(counts @ circle @ counts) / max(float(counts.sum()) ** 2, 1.0)
    ordered = np.sort(log_tempo)
    n = len(ordered)
    tempo_mean = float(((2 * np.arange(n) - n + 1) * ordered).sum()) * 2 / max(n * n, 1)
    timbre_mean = math.sqrt(2 * float(timbre.var(axis=0).sum())) if n else 1.0
    scale = [weights[0] / max(key_mean, 1e-12), weights[1] / max(tempo_mean, 1e-12),
             TIMBRE_SHARE / max(timbre_mean, 1e-12)]

    def cost(a: int, b: int) -> float:
        step = abs(int(fifths[a]) - int(fifths[b])) % 12
        return (scale[0] * min(step, 12 - step)
                + scale[1] * abs(float(log_tempo[a]) - float(log_tempo[b]))
                + scale[2] * math.dist(timbre[a], timbre[b]))

    return cost


def _circle_path(chosen: Sequence[Candidate]) -> list[int]:
    """Indices sorted around the circle of fifths, starting after its widest empty stretch,
    tempo rising and falling in turn within each place (a snake)."""
    if not chosen:
        return []
    places = sorted({c.features.fifths for c in chosen})
    gaps = [((places[(i + 1) % len(places)] - p - 1) % 12, i) for i, p in enumerate(places)]
    start = places[(max(gaps)[1] + 1) % len(places)]
    path: list[int] = []
    for turn, place in enumerate(sorted(places, key=lambda p: (p - start) % 12)):
        members = sorted((i for i, c in enumerate(chosen) if c.features.fifths == place),
                         key=lambda i: (chosen[i].features.tempo_bpm, chosen[i].track_id))
        path.extend(members if turn % 2 == 0 else members[::-1])
    return path


def _improve_locally(path: list[int], cost: Callable[[int, int], float],
                     window: int = ORDER_WINDOW) -> bool:
    """One pass of 2-opt on an open path: reverse path[i+1..j] (j - i <= window; a reversed
    beginning too) where that lowers the total cost. Returns whether anything changed."""
    changed = False
    n = len(path)
    for i in range(-1, n - 1):
        for j in range(i + 2, min(n, i + window + 1)):
            b, c = path[i + 1], path[j]
            before = after = 0.0
            if i >= 0:
                before, after = cost(path[i], b), cost(path[i], c)
            if j + 1 < n:
                before += cost(c, path[j + 1])
                after += cost(b, path[j + 1])
            if after < before - 1e-9:
                path[i + 1: j + 1] = path[i + 1: j + 1][::-1]
                changed = True
    return changed


# --- Assembly -----------------------------------------------------------------------------

SONG_LUFS = -16.0  # each song is levelled to this before the crossfades
MAX_SONG_GAIN_DB = 20.0
ALBUM_LUFS = -14.0
CROSSFADE_SHARE = 0.4  # a crossfade takes at most this share of either song
LEVEL_WINDOW_S, LEVEL_HOP_S = 0.4, 0.1  # short-term level: windows and their spacing
LOUD_PERCENTILE = 95.0  # a song's loud part: this percentile of its short-term levels
FADED_BELOW_LOUD_DB = 15.0  # a song has faded (or not yet risen) this far under it
BEATMATCH_TOLERANCE = 0.03  # tempi this close (relative) are crossfaded as they are
RAMP_BARS = 1  # over this many bars before a join the outgoing tempo moves to the incoming
STRETCH_PRE_ROLL_S = 0.2  # fed to the stretcher before the ramp (its first output is faint)
SEAM_S = 0.01  # the untouched song and its stretched tail are crossfaded over this


@dataclass(frozen=True)
class Chapter:
    """Where one song sits in the album (s); chapters meet mid-crossfade."""

    start_s: float
    end_s: float


@dataclass(frozen=True)
class Join:
    """One song going into the next, in album time (s). The incoming song starts at start_s
    and overlaps the outgoing one for overlap_s, its first downbeat on a downbeat of the
    outgoing one. bar_s: the outgoing song's bar as heard at the join; tempo_ratio: how much
    faster its last bars were played to meet the incoming tempo (1: untouched; under 1:
    slower); trimmed_s: how much of its faded tail (s of the song) was left out."""

    start_s: float
    overlap_s: float
    bar_s: float
    tempo_ratio: float
    trimmed_s: float


@dataclass(frozen=True)
class AlbumMix:
    """The mastered album: mono float32 samples, its chapters and joins, and `inside_s`,
    the stretch from the first song's rise to the last song's fade (album s)."""

    samples: np.ndarray
    sample_rate: int
    chapters: tuple[Chapter, ...]
    joins: tuple[Join, ...] = ()
    inside_s: tuple[float, float] = (0.0, 0.0)

    @property
    def duration_s(self) -> float:
        return len(self.samples) / self.sample_rate


@dataclass(frozen=True)
class _Clip:
    """A song ready to be joined: levelled, at the album's rate, starting on its last
    downbeat before it rises (or where its sound starts); times in s from that start."""

    samples: np.ndarray
    rate: int
    beat_s: float
    downbeat_s: float  # its first downbeat
    rise_s: float  # where it is first within FADED_BELOW_LOUD_DB of its loud part
    faded_s: float  # where it is last within FADED_BELOW_LOUD_DB of its loud part

    @property
    def bar_s(self) -> float:
        return BEATS_PER_BAR * self.beat_s

    @property
    def length_s(self) -> float:
        return len(self.samples) / self.rate


def assemble(songs: Sequence[tuple[np.ndarray, int, ClipFeatures]], *,
             sample_rate: int | None = None) -> AlbumMix:
    """Join songs (samples, their rate, their features) in the given order into one mix.

    Each song is trimmed to its bounds and levelled to SONG_LUFS. Neighbours overlap by one
    bar of the outgoing song (less only where that would take over CROSSFADE_SHARE of a
    song) with an equal-power crossfade; the incoming song's first downbeat lands on a
    downbeat of the outgoing one, chosen so the outgoing song ends where it has faded (its
    quiet tail is left out). Where the tempi differ by more than BEATMATCH_TOLERANCE, the
    outgoing song's last bars speed up or slow down (pitch kept, Rubber Band through
    pedalboard) to the incoming tempo, or to its double or half, so the beats meet
    throughout the crossfade. The whole is mastered to ALBUM_LUFS under a true-peak limiter
    at audio.MASTER_CEILING_DBTP. sample_rate: of the album (Hz; default: the first song's).
    """
    if not songs:
        raise InvalidRequest("an album needs at least one song")
    rate = sample_rate or songs[0][1]
    clips = [_prepared_clip(s, r, f, rate) for s, r, f in songs]
    pieces: list[tuple[int, np.ndarray]] = []
    joins: list[Join] = []
    offset = fade_in = 0
    for index, clip in enumerate(clips):
        samples, fade_out = clip.samples, 0
        if index + 1 < len(clips):
            samples, start, join = _joined_tail(clip, clips[index + 1], fade_in / rate)
            fade_out = len(samples) - start
            joins.append(replace(join, start_s=round((offset + start) / rate, 4)))
        pieces.append((offset, _crossfaded(samples, fade_in, fade_out)))
        if index + 1 < len(clips):
            offset, fade_in = offset + start, fade_out
    mix = np.zeros(max(o + len(p) for o, p in pieces), np.float32)
    for start, piece in pieces:
        mix[start:start + len(piece)] += piece
    starts = [0.0] + [j.start_s + j.overlap_s / 2 for j in joins]
    ends = [*starts[1:], len(mix) / rate]
    chapters = tuple(Chapter(round(float(a), 3), round(float(b), 3))
                     for a, b in zip(starts, ends, strict=True))
    inside_s = (clips[0].rise_s, min(offset / rate + clips[-1].faded_s, len(mix) / rate))
    mastered = mix * audio.mastering_gain(mix, rate, ALBUM_LUFS, audio.MASTER_CEILING_DBTP)
    return AlbumMix(mastered.astype(np.float32), rate, chapters, tuple(joins),
                    (round(inside_s[0], 3), round(inside_s[1], 3)))


def _prepared_clip(samples: np.ndarray, rate: int, feats: ClipFeatures,
                   album_rate: int) -> _Clip:
    """The song levelled, at the album's rate, with where it rises and fades, starting on
    its last downbeat before it rises (a quiet lead-in of whole bars is left out)."""
    clip = _levelled_clip(samples, rate, feats, album_rate)
    rise_s, faded_s = _audible_span_s(clip, album_rate)
    beat_s = feats.beat_period_s
    downbeat_s = max(feats.first_downbeat_s - feats.start_s, 0.0)
    bars_before_rise = math.floor((rise_s - downbeat_s) / (BEATS_PER_BAR * beat_s))
    cut_s = downbeat_s + bars_before_rise * BEATS_PER_BAR * beat_s if bars_before_rise > 0 else 0.0
    return _Clip(clip[round(cut_s * album_rate):], album_rate, beat_s,
                 downbeat_s if cut_s == 0.0 else 0.0, rise_s - cut_s, faded_s - cut_s)


def _levelled_clip(samples: np.ndarray, rate: int, feats: ClipFeatures,
                   album_rate: int) -> np.ndarray:
    """The song trimmed to its bounds, at the album's rate, levelled to SONG_LUFS."""
    clip = np.asarray(samples[round(feats.start_s * rate):round(feats.end_s * rate)],
                      dtype=np.float32)
    if rate != album_rate:
        divisor = math.gcd(rate, album_rate)
        clip = resample_poly(clip, album_rate // divisor, rate // divisor).astype(np.float32)
    if not math.isfinite(feats.loudness_lufs):
        return clip
    gain_db = min(SONG_LUFS - feats.loudness_lufs, MAX_SONG_GAIN_DB)
    return np.asarray(clip * np.float32(10 ** (gain_db / 20)))


def _audible_span_s(clip: np.ndarray, rate: int) -> tuple[float, float]:
    """Where the clip first rises to, and last falls from, FADED_BELOW_LOUD_DB under its
    loud part (LOUD_PERCENTILE of its short-term levels), in s from its start."""
    levels = audio.window_levels_dbfs(clip, rate, LEVEL_WINDOW_S, LEVEL_HOP_S)
    audible = np.flatnonzero(levels >= np.percentile(levels, LOUD_PERCENTILE)
                             - FADED_BELOW_LOUD_DB)
    length_s = len(clip) / rate
    return (float(audible[0]) * LEVEL_HOP_S,
            min(float(audible[-1]) * LEVEL_HOP_S + LEVEL_WINDOW_S, length_s))


def tempo_ratio(outgoing_beat_s: float, incoming_beat_s: float) -> float:
    """How much faster the outgoing song must play for its beats to meet the incoming
    song's: their beat periods' ratio, folded by octaves into 1/sqrt(2)..sqrt(2) (at double
    or half time every other beat meets); 1 when within BEATMATCH_TOLERANCE."""
    ratio = outgoing_beat_s / incoming_beat_s
    ratio /= 2.0 ** round(math.log2(ratio))
    return 1.0 if abs(math.log(ratio)) <= math.log1p(BEATMATCH_TOLERANCE) else ratio


def _joined_tail(out: _Clip, into: _Clip, busy_s: float) -> tuple[np.ndarray, int, Join]:
    """The outgoing clip cut (and, for far-apart tempi, its last bars stretched) for its join
    with the next, the sample at which the next one starts, and the join (start_s 0).
    busy_s: the outgoing clip's own first seconds, which its previous join fades in and
    this one must leave alone."""
    ratio = tempo_ratio(out.beat_s, into.beat_s)
    heard_bar_s = out.bar_s / ratio
    overlap_s = min(heard_bar_s, CROSSFADE_SHARE * out.length_s, CROSSFADE_SHARE * into.length_s)
    start_s = _incoming_start_s(out, into, overlap_s * ratio, ratio, busy_s)
    end_s = start_s + overlap_s * ratio  # on the outgoing song's own time line
    trimmed_s = out.length_s - end_s
    join = Join(0.0, round(overlap_s, 4), round(heard_bar_s, 4), round(ratio, 4),
                round(trimmed_s, 3))
    if ratio == 1.0:
        cut = out.samples[:round(end_s * out.rate)]
        return cut, round(start_s * out.rate), join
    ramp_start_s = max(busy_s, start_s - RAMP_BARS * out.bar_s)
    tail, start = _ramped(out, ramp_start_s, start_s, end_s, ratio)
    return tail, start, join


def _incoming_start_s(out: _Clip, into: _Clip, overlap_s: float, ratio: float,
                      busy_s: float) -> float:
    """Where the incoming song starts on the outgoing song's time line (s): its first
    downbeat on a downbeat of the outgoing song, the overlap (`overlap_s` of outgoing time)
    ending as near its fade as the bars allow, inside the song and after `busy_s`.
    Without such a downbeat (a song shorter than a few bars) the overlap ends the song."""
    lead_in_s = into.downbeat_s * ratio
    nearest = round((out.faded_s - overlap_s + lead_in_s - out.downbeat_s) / out.bar_s)
    for bars in range(nearest, nearest - 4, -1):
        start_s = out.downbeat_s + bars * out.bar_s - lead_in_s
        if start_s >= busy_s and start_s + overlap_s <= out.length_s + 1e-9:
            return start_s
    return max(busy_s, out.length_s - overlap_s)


def _ramped(out: _Clip, ramp_start_s: float, start_s: float, end_s: float,
            ratio: float) -> tuple[np.ndarray, int]:
    """The outgoing clip up to end_s with its tempo moving from its own to `ratio` times it
    between ramp_start_s and start_s and held there to end_s (pitch kept), and where
    start_s falls in the result (samples)."""
    import pedalboard  # loaded by the processes that build albums, not on import

    rate = out.rate
    pre_s = min(STRETCH_PRE_ROLL_S, ramp_start_s)
    first, ramp, stop = (round(t * rate) for t in (ramp_start_s - pre_s, ramp_start_s,
                                                   start_s))
    end = round(end_s * rate)
    speed = np.concatenate([np.ones(ramp - first), np.linspace(1.0, ratio, stop - ramp),
                            np.full(end - stop, ratio)])
    stretched = pedalboard.time_stretch(out.samples[None, first:end], rate,
                                        stretch_factor=speed, high_quality=False)[0]
    # Rubber Band follows the speed per input sample; its output runs on past the end.
    mapped = np.concatenate([[0.0], np.cumsum(1.0 / speed)])
    stretched = audio.fit_length(stretched, round(mapped[-1]))[ramp - first:]
    seam = min(round(SEAM_S * rate), len(stretched), len(out.samples) - ramp)
    fade = np.linspace(0.0, 1.0, seam, dtype=np.float32)
    head = out.samples[:ramp + seam].copy()
    head[ramp:] = head[ramp:] * (1 - fade) + stretched[:seam] * fade
    tail = np.concatenate([head, stretched[seam:]]).astype(np.float32)
    return tail, ramp + round(mapped[stop - first] - mapped[ramp - first])


def _crossfaded(samples: np.ndarray, fade_in: int, fade_out: int) -> np.ndarray:
    """The samples with an equal-power fade-in over the first `fade_in` and a fade-out
    over the last `fade_out` samples."""
    shaped = samples.copy()
    fade_in, fade_out = min(fade_in, len(shaped)), min(fade_out, len(shaped))
    if fade_in:
        shaped[:fade_in] *= np.sin(0.5 * np.pi * (np.arange(fade_in) + 0.5) / fade_in)
    if fade_out:
        shaped[len(shaped) - fade_out:] *= np.cos(
            0.5 * np.pi * (np.arange(fade_out) + 0.5) / fade_out)
    return shaped


def quietest_inside_dbfs(mix: AlbumMix) -> float:
    """The quietest short-term level (dBFS, LEVEL_WINDOW_S windows every LEVEL_HOP_S) inside
    the album: from the first song's rise to the last song's fade."""
    first, last = (round(t * mix.sample_rate) for t in mix.inside_s)
    levels = audio.window_levels_dbfs(mix.samples[first:last], mix.sample_rate,
                                      LEVEL_WINDOW_S, LEVEL_HOP_S)
    return float(levels.min(initial=0.0))


# --- Album files --------------------------------------------------------------------------

ALBUM_FORMATS = ("ogg", "mp3")


def encode_album(mix: AlbumMix, titles: Sequence[str], fmt: str, *,
                 album_title: str = "SingSong weekly album",
                 artist: str = "SingSong community") -> bytes:
    """The album as 'ogg' (Opus) or 'mp3' bytes with one chapter per song, titled.

    The audio is encoded by engine.audio.encode_true_peak (the decoded file peaks at most
    audio.DELIVERED_CEILING_DBTP, 4x oversampled), then remuxed by ffmpeg (no shell, with a
    timeout) with the album's metadata and chapters; bit-exact, so the same mix gives the
    same bytes.
    """
    if fmt not in ALBUM_FORMATS:
        raise InvalidRequest(f"unknown album format {fmt!r}: use one of "
                             f"{', '.join(ALBUM_FORMATS)}")
    if len(titles) != len(mix.chapters):
        raise InvalidRequest(f"{len(titles)} titles for {len(mix.chapters)} songs")
    encoded, _ = audio.encode_true_peak(mix.samples, mix.sample_rate, fmt)
    with tempfile.TemporaryDirectory(prefix="singsong-album-") as folder:
        source, metadata, target = (Path(folder, name) for name in (
            f"in.{fmt}", "metadata.txt", f"album.{fmt}"))
        source.write_bytes(encoded)
        metadata.write_text(_ffmetadata(mix.chapters, titles, album_title, artist, fmt),
                            encoding="utf-8")
        command = [audio.ffmpeg_path(), "-nostdin", "-hide_banner", "-loglevel", "error",
                   "-i", str(source), "-f", "ffmetadata", "-i", str(metadata),
                   "-map", "0:a", "-map_metadata", "1",
                   "-map_chapters", "1" if fmt == "mp3" else "-1", "-c", "copy",
                   "-fflags", "+bitexact", str(target)]
        result = subprocess.run(command, capture_output=True, timeout=audio.REMUX_TIMEOUT_S,
                                check=False)
        if result.returncode != 0:
            raise RuntimeError(f"ffmpeg failed to write the album: "
                               f"{result.stderr.decode(errors='replace')[-500:]}")
        return target.read_bytes()


@dataclass(frozen=True)
class Album:
    """A built album: the mix (with its chapters) and its files by format: "ogg", "mp3",
    "png" (the cover)."""

    mix: AlbumMix
    files: dict[str, bytes]


def build_album(songs: Sequence[tuple[np.ndarray, int, ClipFeatures]], titles: Sequence[str],
                *, album_title: str = "SingSong weekly album",
                artist: str = "SingSong community", sample_rate: int | None = None) -> Album:
    """assemble (at `sample_rate` Hz, default the first song's), then encode_album for every
    ALBUM_FORMATS and cover_png, side by side (the encoders and the decoders that check them
    run in FFmpeg's and libsndfile's C code, so they overlap with each other and with the
    drawing)."""
    mix = assemble(songs, sample_rate=sample_rate)
    with ThreadPoolExecutor(max_workers=len(ALBUM_FORMATS)) as pool:
        encoding = {fmt: pool.submit(encode_album, mix, titles, fmt, album_title=album_title,
                                     artist=artist) for fmt in ALBUM_FORMATS}
        cover = cover_png([f for _, _, f in songs], album_title)
        files = {fmt: future.result() for fmt, future in encoding.items()}
    return Album(mix, {**files, "png": cover})


def _ffmetadata(chapters: Sequence[Chapter], titles: Sequence[str], album_title: str,
                artist: str, fmt: str) -> str:
    """ffmpeg's metadata file: the album's tags and one chapter per song. MP3 gets [CHAPTER]
    sections (ID3 CHAP frames); Ogg gets the CHAPTERnnn comments players read, written as
    tags: ffmpeg 5.1 writes [CHAPTER] starts into Ogg rounded to the nearest second."""
    lines = [";FFMETADATA1", f"title={_escape(album_title)}", f"album={_escape(album_title)}",
             f"artist={_escape(artist)}"]
    for number, (chapter, title) in enumerate(zip(chapters, titles, strict=True)):
        start_ms, end_ms = round(chapter.start_s * 1000), round(chapter.end_s * 1000)
        if fmt == "mp3":
            lines += ["[CHAPTER]", "TIMEBASE=1/1000", f"START={start_ms}", f"END={end_ms}",
                      f"title={_escape(title)}"]
        else:
            hours, rest = divmod(start_ms, 3_600_000)
            minutes, rest = divmod(rest, 60_000)
            lines += [f"CHAPTER{number:03d}={hours:02d}:{minutes:02d}:{rest / 1000:06.3f}",
                      f"CHAPTER{number:03d}NAME={_escape(title)}"]
    return "\n".join(lines) + "\n"


def _escape(value: str) -> str:
    """A value as ffmetadata needs it: = ; # \\ and line ends escaped with a backslash."""
    value = "".join(ch if ch.isprintable() else " " for ch in value)
    for special in ("\\", "=", ";", "#"):
        value = value.replace(special, "\\" + special)
    return value


# --- Cover --------------------------------------------------------------------------------

COVER_PIXELS = 1000


def cover_png(songs: Sequence[ClipFeatures], title: str) -> bytes:
    """A square cover drawn from the music: a circle of fifths with one ring per song (the
    first inside), each of its 12 sectors as strong as the song's chroma in that key's
    tonic, coloured by the sector's place on the circle and shaded by the song's brightness
    (spectral centroid); the title beneath. Deterministic."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib import colors

    fig = plt.figure(figsize=(10, 10), dpi=COVER_PIXELS // 10, facecolor="#101018")
    try:
        ax: Any = fig.add_axes((0.05, 0.1, 0.9, 0.85), projection="polar")
        ax.set_facecolor("#101018")
        ax.set_theta_zero_location("N")
        ax.set_theta_direction(-1)
        ax.axis("off")
        width = 2 * np.pi / 12
        rings = max(len(songs), 1)
        places = np.arange(12)
        theta, bottom, rgba = [], [], []
        for ring, song in enumerate(songs):
            chroma = np.asarray(song.chroma)[(places * 7) % 12]  # in circle-of-fifths order
            strength = chroma / max(float(chroma.max()), 1e-12)
            brightness = float(song.timbre[0]) if song.timbre else 0.5
            hsv = np.stack([places / 12, 0.35 + 0.6 * strength,
                            np.full(12, 0.35 + 0.65 * brightness)], axis=1)
            rgba.append(np.column_stack([colors.hsv_to_rgb(hsv), 0.25 + 0.75 * strength]))
            theta.append(places * width)
            bottom.append(np.full(12, 1.0 + ring))
        if songs:
            ax.bar(np.concatenate(theta), 1.0, width=width * 0.96,
                   bottom=np.concatenate(bottom), color=np.concatenate(rgba), linewidth=0)
            ax.scatter([s.fifths * width for s in songs], 1.5 + np.arange(len(songs)),
                       s=max(9.0, 3600.0 / rings**2), color="white", alpha=0.9, zorder=3)
        for place in range(12):
            ax.text(place * width, 1.0 + rings + 0.6, PITCH_CLASS_NAMES[(place * 7) % 12],
                    color="#e9ecef", ha="center", va="center", fontsize=16)
        ax.set_ylim(0, 1.0 + rings + 1.0)
        fig.text(0.5, 0.05, title, color="#e9ecef", ha="center", va="center", fontsize=28)
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", facecolor=fig.get_facecolor(),
                    metadata={"Software": None})
        return buffer.getvalue()
    finally:
        plt.close(fig)
