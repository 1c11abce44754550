"""How well the voice sings its melody, on every clip in ../shared/data/speech. Prints JSON.

Pitch: the vocal stem is tracked with SwiftF0 (a neural tracker, not the Praat tracker used
inside) and each voiced frame during a note of the melody MIDI is compared with that note:
the share within 50 cents (target 95 %). Voiced frames between notes (consonants, glides,
breaths) are counted apart. Timing: the share of notes with an onset heard in the vocal stem
within 60 ms of the note's onset (target 90 %). Two measures of "heard": syllable onsets
found again by the loudness-dip detector alone, and those plus the instants where the sung
pitch jumps by more than 0.7 semitone (legato syllables, with no dip in loudness between
them, start where the pitch moves).

    .venv/bin/python -m benchmarks.sing_quality [--seed 1] [--style pop]
"""

from __future__ import annotations

import argparse
import io
import json
import time
from pathlib import Path

import numpy as np
import pretty_midi
from swift_f0 import SwiftF0

from engine.audio import BadAudio, decode
from engine.notes import syllables
from engine.pipeline import sing
from engine.pitch import hz_to_midi, track

SPEECH = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "speech"
PITCH_TOLERANCE_SEMITONES = 0.5
ONSET_TOLERANCE_S = 0.06
PITCH_JUMP_SEMITONES = 0.7


def measure(song_midi: bytes, vocal_wav: bytes) -> dict[str, float | int]:
    notes = pretty_midi.PrettyMIDI(io.BytesIO(song_midi)).instruments[0].notes
    vocal16 = decode(vocal_wav, sample_rate=16000).samples
    result = SwiftF0(threads=1).detect(vocal16, 16000, fmin=50, fmax=1000)
    voiced = result.confidence >= 0.5
    starts = np.array([n.start for n in notes])
    ends = np.array([n.end for n in notes])
    t = result.timestamps
    index = np.searchsorted(starts, t, side="right") - 1
    during = (index >= 0) & (t < ends[np.clip(index, 0, None)])
    target = np.array([notes[i].pitch for i in np.clip(index, 0, None)])
    error = np.abs(hz_to_midi(np.where(voiced, result.pitch_hz, 1.0)) - target)
    in_notes = voiced & during
    hits = int((in_notes & (error <= PITCH_TOLERANCE_SEMITONES)).sum())

    vocal22 = decode(vocal_wav, sample_rate=22050).samples
    heard = syllables(vocal22, 22050, track(vocal22, 22050))
    onsets = np.array([s.onset_s for s in heard] + [np.inf])
    sung_midi = hz_to_midi(np.where(voiced, result.pitch_hz, np.nan))
    jumps = t[1:][np.abs(np.diff(sung_midi)) > PITCH_JUMP_SEMITONES]
    with_jumps = np.concatenate([onsets, jumps])

    def share_on_time(candidates: np.ndarray) -> float:
        return float(np.mean([np.min(np.abs(candidates - n.start)) <= ONSET_TOLERANCE_S
                              for n in notes]))

    return {
        "notes": len(notes),
        "voiced_frames_in_notes": int(in_notes.sum()),
        "pitch_within_50_cents": round(hits / max(int(in_notes.sum()), 1), 4),
        "voiced_frames_between_notes": round(float((voiced & ~during).sum() / voiced.sum()), 4),
        "onsets_within_60_ms": round(share_on_time(with_jumps), 4),
        "onsets_within_60_ms_loudness_only": round(share_on_time(onsets), 4),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--style", default="pop")
    parser.add_argument("--speech", type=Path, default=SPEECH)
    args = parser.parse_args(argv)
    clips = sorted(args.speech.glob("*.ogg")) + sorted(args.speech.glob("*.wav")) + sorted(
        (args.speech / "fsdd").glob("*.wav"))
    per_clip: dict[str, object] = {}
    totals = {"hits": 0.0, "frames": 0, "on_time": 0.0, "on_time_loudness": 0.0, "notes": 0}
    refused: dict[str, str] = {}
    started = time.monotonic()
    for clip in clips:
        name = str(clip.relative_to(args.speech))
        try:
            song = sing(clip.read_bytes(), seed=args.seed, style=args.style, audio_format="wav")
        except BadAudio as error:
            refused[name] = str(error)
            continue
        scores = measure(song.melody_midi, song.stems["vocal"])
        per_clip[name] = scores
        totals["hits"] += scores["pitch_within_50_cents"] * scores["voiced_frames_in_notes"]
        totals["frames"] += int(scores["voiced_frames_in_notes"])
        totals["on_time"] += scores["onsets_within_60_ms"] * scores["notes"]
        totals["on_time_loudness"] += (scores["onsets_within_60_ms_loudness_only"] *
                                       scores["notes"])
        totals["notes"] += int(scores["notes"])
    long_clips = [v for k, v in per_clip.items() if not k.startswith("fsdd") and
                  isinstance(v, dict)]
    pitch_all = totals["hits"] / max(totals["frames"], 1)
    timing_all = totals["on_time"] / max(totals["notes"], 1)
    print(json.dumps({
        "clips": len(clips),
        "sung": len(per_clip),
        "refused": refused,
        "pitch_within_50_cents_all_frames": round(pitch_all, 4),
        "onsets_within_60_ms_all_notes": round(timing_all, 4),
        "onsets_within_60_ms_all_notes_loudness_only": round(
            totals["on_time_loudness"] / max(totals["notes"], 1), 4),
        "per_clip": per_clip,
        "longer_clips_min_pitch": min((v["pitch_within_50_cents"] for v in long_clips),
                                      default=None),
        "targets_met": {"pitch_at_least_95pct": pitch_all >= 0.95,
                        "onsets_at_least_90pct": timing_all >= 0.90},
        "wall_s": round(time.monotonic() - started, 1),
    }, indent=2))


if __name__ == "__main__":
    main()
