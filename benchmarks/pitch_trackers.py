"""Which f0 tracker should the voice path use? Accuracy against vocadito's f0 annotation and
speed, for each candidate, printed as JSON.

    .venv/bin/python -m benchmarks.pitch_trackers
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path

import librosa
import mir_eval
import numpy as np
import parselmouth
import pyworld

from engine.audio import decode_file

SAMPLE_RATE = 16000
HOP_S = 0.01
FLOOR_HZ, CEILING_HZ = 65.0, 1000.0
DEFAULT_CLIP = (Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "singing" /
                "vocadito" / "vocadito_1.wav")

Tracker = Callable[[np.ndarray, int], tuple[np.ndarray, np.ndarray]]


def praat_ac(x: np.ndarray, sr: int) -> tuple[np.ndarray, np.ndarray]:
    pitch = parselmouth.Sound(x.astype(np.float64), sr).to_pitch_ac(
        time_step=HOP_S, pitch_floor=FLOOR_HZ, pitch_ceiling=CEILING_HZ)
    return pitch.xs(), pitch.selected_array["frequency"]


def praat_cc(x: np.ndarray, sr: int) -> tuple[np.ndarray, np.ndarray]:
    pitch = parselmouth.Sound(x.astype(np.float64), sr).to_pitch_cc(
        time_step=HOP_S, pitch_floor=FLOOR_HZ, pitch_ceiling=CEILING_HZ)
    return pitch.xs(), pitch.selected_array["frequency"]


def world_dio(x: np.ndarray, sr: int) -> tuple[np.ndarray, np.ndarray]:
    x64 = x.astype(np.float64)
    f0, t = pyworld.dio(x64, sr, f0_floor=FLOOR_HZ, f0_ceil=CEILING_HZ,
                        frame_period=HOP_S * 1000)
    return t, pyworld.stonemask(x64, f0, t, sr)


def world_harvest(x: np.ndarray, sr: int) -> tuple[np.ndarray, np.ndarray]:
    f0, t = pyworld.harvest(x.astype(np.float64), sr, f0_floor=FLOOR_HZ, f0_ceil=CEILING_HZ,
                            frame_period=HOP_S * 1000)
    return t, f0


def pyin(x: np.ndarray, sr: int) -> tuple[np.ndarray, np.ndarray]:
    f0, voiced, _ = librosa.pyin(x, fmin=FLOOR_HZ, fmax=CEILING_HZ, sr=sr,
                                 hop_length=int(HOP_S * sr))
    times = librosa.times_like(f0, sr=sr, hop_length=int(HOP_S * sr))
    return times, np.where(voiced, np.nan_to_num(f0), 0.0)


def swift_f0(x: np.ndarray, sr: int) -> tuple[np.ndarray, np.ndarray]:
    from swift_f0 import SwiftF0

    result = SwiftF0(threads=1).detect(x, sr, fmin=FLOOR_HZ, fmax=CEILING_HZ)
    return result.timestamps, np.where(result.confidence >= 0.5, result.pitch_hz, 0.0)


TRACKERS: dict[str, Tracker] = {
    "praat_ac": praat_ac, "praat_cc": praat_cc, "world_dio": world_dio,
    "world_harvest": world_harvest, "pyin": pyin, "swift_f0": swift_f0,
}


def score(reference: np.ndarray, times: np.ndarray, f0: np.ndarray) -> dict[str, float]:
    scores = mir_eval.melody.evaluate(reference[:, 0], reference[:, 1], times, f0)
    keep = ("Voicing Recall", "Voicing False Alarm", "Raw Pitch Accuracy", "Overall Accuracy")
    return {k.lower().replace(" ", "_"): round(float(scores[k]), 4) for k in keep}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clip", type=Path, default=DEFAULT_CLIP)
    args = parser.parse_args(argv)
    audio = decode_file(args.clip, sample_rate=SAMPLE_RATE)
    reference = np.loadtxt(str(args.clip).replace(".wav", "_f0.csv"), delimiter=",")
    results = {}
    for name, tracker in TRACKERS.items():
        tracker(audio.samples[: SAMPLE_RATE], SAMPLE_RATE)  # warm up (numba, ONNX session)
        start = time.perf_counter()
        times, f0 = tracker(audio.samples, SAMPLE_RATE)
        seconds = time.perf_counter() - start
        results[name] = {**score(reference, times, f0),
                         "seconds_per_15_s": round(seconds * 15 / audio.duration_s, 4)}
    print(json.dumps({"clip": str(args.clip.name), "duration_s": round(audio.duration_s, 2),
                      "sample_rate": SAMPLE_RATE, "trackers": results}, indent=2))


if __name__ == "__main__":
    main()
