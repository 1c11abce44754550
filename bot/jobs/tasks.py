"""The engine's side of a job: what each kind of job asks of engine.pipeline, and the song's
curation features, measured from the samples the worker still holds (once the reply is on its
way: the worker calls JobResult.measure after storing the track). Runs in a worker process."""

from __future__ import annotations

import dataclasses
import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from storage.models import JobKind

log = logging.getLogger("singsong.jobs")


@dataclass(frozen=True)
class JobResult:
    """What one job made, whatever its kind, as the worker stores it: the files (a Track
    row's blobs) and what is known of them. Made and stored in the worker's process."""

    audio: bytes  # Ogg Opus
    duration_s: float  # of the audio
    timings_s: dict[str, float]  # wall time of each stage, seconds
    midi: bytes | None = None  # the melody, a MIDI file
    picture: bytes | None = None  # PNG (a group song's)
    picture_card: bytes | None = None  # the picture, to draw when asked (engine.picture.draw)
    key: str | None = None  # "A minor"; None for a piano part
    tempo_bpm: float | None = None
    features: dict[str, Any] | None = None  # measure(): curation features, or {"failed": why}
    sung: dict[str, Any] | None = None  # sung_as(): what the reply tells of the song
    # Measures the curation features (measure(), on the samples the job made): called by the
    # worker after the track is stored, so the reply does not wait for it (0.07 s a song).
    measure: Callable[[], dict[str, Any]] | None = field(default=None, repr=False,
                                                         compare=False)


@dataclass(frozen=True)
class _Made:
    """A job's result and, for measuring it, its decoded song (never leaves the worker)."""

    result: JobResult
    samples: tuple[Any, int] | None = None  # (samples, rate)
    pitch_accuracy: float | None = None


Runner = Callable[[str, bytes | None, dict[str, Any]], JobResult]
"""Runs one job's engine work: (kind, input bytes, parameters) -> what it made (see
run_engine)."""


def run_engine(kind: str, data: bytes | None, parameters: dict[str, Any]) -> JobResult:
    """The engine call for each kind of job: bytes out, plus what to record, and how to
    measure the song's curation features (JobResult.measure: at ingest, from the samples the
    worker has, once the track is stored; a piano version is never an album candidate, so it
    is not measured)."""
    made = _make(kind, data, parameters)
    result = made.result
    if kind == JobKind.PIANO:
        return result
    # SingSong's own songs and melodies start on a downbeat.
    return dataclasses.replace(result, measure=functools.partial(
        measure, result.audio, result.key, result.tempo_bpm, samples=made.samples,
        pitch_accuracy=made.pitch_accuracy, downbeat_s=0.0))


def warm_up() -> None:
    """Import the engine and load what it keeps per process (the melody model, the
    soundfont, libchromaprint), by making one short melody and measuring it as a song is."""
    from engine import pipeline

    piece = pipeline.melody(seed=0, bars=1, formats=("ogg",))
    measure(piece.files["ogg"], piece.melody.key.name, piece.melody.tempo_bpm, downbeat_s=0.0)


FEATURE_RATE = 22050  # engine.album's frames are sized for 22.05 kHz


def measure(data: bytes, key: str | None, tempo_bpm: float | None, *,
            samples: tuple[Any, int] | None = None, pitch_accuracy: float | None = None,
            downbeat_s: float | None = None) -> dict[str, Any]:
    """A stored song's curation features as JSON, or {"failed": why} when it cannot be
    measured (such a song stays out of albums). `samples`: the song already decoded
    (samples, rate), which saves decoding `data` again. SingSong's own songs start on a
    downbeat (downbeat_s=0.0); a piano transcription keeps the singer's timing (None)."""
    from engine import album, audio

    try:
        if samples is None:
            decoded = audio.decode(data, sample_rate=FEATURE_RATE)
            samples = (decoded.samples, decoded.sample_rate)
        return album.features(samples[0], samples[1], key=key,
                               tempo_bpm=tempo_bpm, downbeat_s=downbeat_s,
                               pitch_accuracy=pitch_accuracy).to_json()
    except Exception as error:
        log.warning("measuring a song failed: %s: %s", type(error).__name__, error)
        return {"failed": f"{type(error).__name__}: {error}"[:500]}


def _make(kind: str, data: bytes | None, parameters: dict[str, Any]) -> _Made:
    from engine import arrange, picture, pipeline
    from engine.form import DEFAULT_FORM
    from engine.singer import supported_language
    from engine.theory import parse_key

    seed = int(parameters.get("seed", 0))
    title = parameters.get("title")  # the picture's headline
    if kind in (JobKind.SING, JobKind.LYRICS):
        style = parameters.get("style", arrange.DEFAULT_STYLE)
        form = parameters.get("form", DEFAULT_FORM)
        # No stems, and no picture: its card is kept, drawn when someone asks for it (the
        # drawing cost 0.1-0.3 core-s a song, and matplotlib's memory in every worker).
        song = (pipeline.sing(data or b"", seed=seed, style=style, form=form, title=title,
                              extras=False)
                if kind == JobKind.SING else
                # A platform's setting SingSong does not sing in ("ja") counts as none: the
                # person did not choose it for this song, so it must not fail it.
                pipeline.lyrics(parameters.get("text", ""), seed=seed, style=style, form=form,
                                language=supported_language(parameters.get("language")),
                                title=title, extras=False))
        return _Made(JobResult(
            audio=song.audio, midi=song.melody_midi, picture_card=song.picture_card,
            duration_s=float(song.summary["duration_s"]), key=song.summary["key"],
            tempo_bpm=song.summary["tempo_bpm"], timings_s=song.timings_s,
            sung=sung_as(song.summary)), samples=(song.samples, arrange.SAMPLE_RATE),
            pitch_accuracy=song.summary.get("pitch_accuracy"))
    if kind == JobKind.MELODY:
        key = parse_key(parameters["key"]) if parameters.get("key") else None
        piece = pipeline.melody(seed=seed, key=key, style=parameters.get("style"),
                                formats=("ogg", "mid"), title=title)
        # Stored as long as its audio is (the notes end before the band stops ringing).
        assert piece.audio_duration_s is not None  # set whenever audio is asked for
        return _Made(JobResult(
            audio=piece.files["ogg"], midi=piece.files["mid"],
            picture_card=picture.piano_roll_card(piece.melody, title),
            duration_s=piece.audio_duration_s, key=piece.melody.key.name,
            tempo_bpm=piece.melody.tempo_bpm, timings_s=piece.timings_s))
    if kind == JobKind.GROUP:
        return _group_song(data or b"", parameters)
    if kind == JobKind.PIANO:
        result = pipeline.piano(data or b"", formats=("ogg", "mid"))
        return _Made(JobResult(
            audio=result.files["ogg"], midi=result.files["mid"],
            picture_card=picture.heard_notes_card(
                [(n.pitch, n.start_s, n.end_s, n.velocity) for n in result.notes],
                result.duration_s, result.tempo_bpm),
            duration_s=result.duration_s, key=None, tempo_bpm=result.tempo_bpm,
            timings_s=result.timings_s))
    raise ValueError(f"unknown job kind {kind!r}")


def _group_song(data: bytes, parameters: dict[str, Any]) -> _Made:
    """A group song from its voices (bot.together packs them, in the order they joined)."""
    from bot.group_bundle import unpack_voices
    from engine import arrange, pipeline

    voices, names = unpack_voices(data)
    song = pipeline.group_song(voices, seed=int(parameters.get("seed", 0)),
                               style=parameters.get("style", arrange.DEFAULT_STYLE))
    summary = song.summary
    heard = {int(voice["index"]): voice for voice in summary.get("voices", [])}
    sung = {"form": "group", "sections": sung_as(summary)["sections"],
            "voices": [{"name": name, "sung": bool(heard.get(index, {}).get("sung", True)),
                        "reason": heard.get(index, {}).get("reason")}
                       for index, name in enumerate(names)]}
    return _Made(JobResult(
        audio=song.audio, midi=song.melody_midi, picture=song.picture or None,
        duration_s=float(summary["duration_s"]), key=summary["key"],
        tempo_bpm=summary["tempo_bpm"], timings_s=song.timings_s, sung=sung),
        # Curation measures one channel: the two, averaged.
        samples=(song.samples.mean(axis=1), arrange.SAMPLE_RATE))


def sung_as(summary: dict[str, Any]) -> dict[str, Any]:
    """What a song's reply tells of it, from the engine's summary: its form, its sections
    (name and start) and, for lyrics, the language it was sung in."""
    sung: dict[str, Any] = {"form": summary.get("form"),
                            "sections": [{"name": s["name"], "start_s": round(s["start_s"], 2)}
                                         for s in summary.get("sections") or ()]}
    if summary.get("language"):
        sung["language"] = {k: summary["language"][k] for k in ("code", "name", "chosen_by")
                            if k in summary["language"]}
    if summary.get("syllables_sung", 0) < summary.get("syllables", 0):
        sung["sung_s"] = summary["input_sung_s"]
    return sung

