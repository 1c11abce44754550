"""The jobs, each a plain function from a request to finished files and a summary."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from engine import arrange, audio, picture
from engine.errors import InvalidRequest
from engine.melody.compose import Melody, compose
from engine.melody.model import load_model
from engine.theory import Key, chord_name
from engine.timing import StageTimer

MELODY_FORMATS = ("mid", *audio.AUDIO_FORMATS, "png")


@dataclass(frozen=True)
class MelodyPiece:
    """A composed melody and the files made from it, by format ("mid", "ogg", "png", ...)."""

    melody: Melody
    files: dict[str, bytes]
    timings_s: dict[str, float] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        return melody_summary(self.melody)


def melody_summary(melody: Melody) -> dict[str, Any]:
    """What a melody is, as plain JSON-ready values."""
    return {
        "seed": melody.seed,
        "key": melody.key.name,
        "tempo_bpm": melody.tempo_bpm,
        "bars": melody.n_bars,
        "duration_s": round(melody.duration_s, 3),
        "notes": [
            {"pitch": n.pitch, "start_s": round(n.start_s, 4), "end_s": round(n.end_s, 4),
             "velocity": n.velocity}
            for n in melody.notes
        ],
        "chords": [
            {"name": chord_name(c.root, c.quality), "start_s": round(c.start_s, 4),
             "end_s": round(c.end_s, 4)}
            for c in melody.chords
        ],
    }


def melody(
    *,
    seed: int,
    key: Key | None = None,
    bars: int = 8,
    tempo_bpm: float = 110.0,
    formats: Collection[str] = ("ogg", "mid", "png"),
) -> MelodyPiece:
    """Compose a melody and make the requested files: MIDI (melody, chords and bass), audio
    rendered through FluidSynth (piano melody over the accompaniment), a piano-roll PNG."""
    unknown = set(formats) - set(MELODY_FORMATS)
    if unknown:
        raise InvalidRequest(f"unsupported format {sorted(unknown)[0]!r}: "
                             f"use {', '.join(MELODY_FORMATS)}")
    timer = StageTimer()
    with timer.stage("load_model"):
        load_model()
    with timer.stage("compose"):
        tune = compose(seed=seed, key=key, bars=bars, tempo_bpm=tempo_bpm)
    files: dict[str, bytes] = {}
    midi = arrange.melody_midi(tune)
    if "mid" in formats:
        with timer.stage("midi"):
            files["mid"] = arrange.midi_bytes(midi)
    audio_formats = [f for f in formats if f in audio.AUDIO_FORMATS]
    if audio_formats:
        with timer.stage("render"):
            samples = audio.peak_normalise(arrange.render(midi))
        with timer.stage("encode"):
            for fmt in audio_formats:
                files[fmt] = audio.encode(samples, arrange.SAMPLE_RATE, fmt)
    if "png" in formats:
        with timer.stage("picture"):
            files["png"] = picture.piano_roll_png(tune)
    return MelodyPiece(melody=tune, files=files, timings_s=timer.report())
