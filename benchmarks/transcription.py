"""Voice-to-notes transcription on vocadito, against each of its two annotators, beside
Basic Pitch (spotify's model, ONNX) and a plain pYIN-notes baseline. Prints JSON.

Note F-measure with mir_eval: onset within 50 ms, pitch within 50 cents; once with offsets
ignored and once with mir_eval's default offset rule (within 20 % of the note or 50 ms).
Speed: SingSong's transcription of the clip with its models loaded, per 30 s of audio.

    .venv/bin/python -m benchmarks.transcription

Basic Pitch requires TensorFlow, which has no build here; its ONNX model runs without it:
`pip install --no-deps basic-pitch==0.4.0` with onnxruntime and resampy (scripts/setup
--dev does this).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import librosa
import mir_eval
import numpy as np

from engine.audio import decode_file
from engine.notes import transcribe
from engine.pitch import HOP_S, track

CLIP = (Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "singing" /
        "vocadito" / "vocadito_1.wav")
Notes = tuple[np.ndarray, np.ndarray]  # intervals [n, 2] in s, pitches [n] in Hz
MIN_PYIN_FRAMES = 3


def singsong_notes(clip: Path) -> Notes:
    audio = decode_file(clip)
    heard = transcribe(audio.samples, audio.sample_rate, track(audio.samples,
                                                                audio.sample_rate))
    return (np.array([[n.start_s, n.end_s] for n in heard]),
            librosa.midi_to_hz(np.array([n.pitch for n in heard])))


def pyin_notes(clip: Path) -> Notes:
    """pYIN f0 rounded to semitones; each run of one semitone (3 frames or more) a note."""
    audio = decode_file(clip, sample_rate=22050)
    hop = int(HOP_S * 22050)
    f0, voiced, _ = librosa.pyin(audio.samples, fmin=65.0, fmax=1000.0, sr=22050,
                                 hop_length=hop)
    semitone = np.where(voiced, np.round(librosa.hz_to_midi(np.nan_to_num(f0, nan=1.0))), -1)
    intervals, pitches = [], []
    start = 0
    for i in range(1, len(semitone) + 1):
        if i == len(semitone) or semitone[i] != semitone[start]:
            if semitone[start] >= 0 and i - start >= MIN_PYIN_FRAMES:
                intervals.append([start * HOP_S, i * HOP_S])
                pitches.append(librosa.midi_to_hz(semitone[start]))
            start = i
    return np.array(intervals), np.array(pitches)


def basic_pitch_notes(clip: Path) -> Notes:
    from basic_pitch import FilenameSuffix, build_icassp_2022_model_path
    from basic_pitch.inference import predict

    with contextlib.redirect_stdout(sys.stderr):  # it prints progress; stdout is the JSON
        _, _, events = predict(str(clip), build_icassp_2022_model_path(FilenameSuffix.onnx))
    events = sorted(events, key=lambda e: e[0])
    return (np.array([[e[0], e[1]] for e in events]),
            librosa.midi_to_hz(np.array([e[2] for e in events])))


def scores(reference: Notes, estimate: Notes) -> dict[str, float]:
    out = {}
    for name, offset_ratio in (("onset_only", None), ("with_offsets", 0.2)):
        p, r, f, _ = mir_eval.transcription.precision_recall_f1_overlap(
            reference[0], reference[1], estimate[0], estimate[1], onset_tolerance=0.05,
            pitch_tolerance=50.0, offset_ratio=offset_ratio)
        out[f"f_{name}"] = round(float(f), 4)
        out[f"precision_{name}"] = round(float(p), 4)
        out[f"recall_{name}"] = round(float(r), 4)
    return out


def annotation(clip: Path, annotator: str) -> Notes:
    rows = np.loadtxt(clip.with_name(f"{clip.stem}_notes{annotator}.csv"), delimiter=",")
    return np.column_stack([rows[:, 0], rows[:, 0] + rows[:, 2]]), rows[:, 1]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clip", type=Path, default=CLIP)
    args = parser.parse_args(argv)
    systems: dict[str, Callable[[Path], Notes]] = {
        "singsong": singsong_notes, "basic_pitch_onnx": basic_pitch_notes,
        "pyin_notes": pyin_notes,
    }
    references = {a: annotation(args.clip, a) for a in ("A1", "A2")}
    results: dict[str, object] = {}
    for name, system in systems.items():
        try:
            estimate = system(args.clip)
        except ImportError as error:
            results[name] = {"skipped": f"not installed: {error}"}
            continue
        results[name] = {"notes": len(estimate[0]),
                         **{a: scores(ref, estimate) for a, ref in references.items()}}

    singsong_notes(args.clip)  # models loaded, caches warm
    audio = decode_file(args.clip)
    runs = []
    for _ in range(5):
        start = time.perf_counter()
        transcribe(audio.samples, audio.sample_rate, track(audio.samples, audio.sample_rate))
        runs.append(time.perf_counter() - start)
    per_30_s = float(np.median(runs)) * 30.0 / audio.duration_s
    ours = results["singsong"]
    assert isinstance(ours, dict)
    print(json.dumps({
        "clip": args.clip.name,
        "duration_s": round(audio.duration_s, 2),
        "reference_notes": {a: len(r[0]) for a, r in references.items()},
        "systems": results,
        "singsong_seconds_per_30_s": round(per_30_s, 4),
        "targets_met": {
            "f_onset_only_vs_A1_at_least_0.70": ours["A1"]["f_onset_only"] >= 0.70,
            "at_most_0.2_s_per_30_s": per_30_s <= 0.2,
        },
    }, indent=2))


if __name__ == "__main__":
    main()
