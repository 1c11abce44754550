"""Whether a full song (`form="full"`) has the shape, second voice, sound and speed it should.
Prints one JSON object.

Seed 1, style pop, on the 3 LibriSpeech clips, the 6 CMU ARCTIC sentences and six lyrics
(three English texts of 2-4 lines, one with a repeated line; one each in Spanish, German and
French); the 60 spoken digits only as a count of sung and refused. For each song:
- length: the song's against the voice note's (targets: 25-60 s for a 4-20 s note, never
  over 90 s);
- form: the sections, where the first chorus starts (target: within 20 s) and how many;
- the chorus recurs: (a) its lead notes (pitch, onset and end relative to the section's
  start, within 2 ms) are those of the first chorus; (b) its sound: the mean cosine
  similarity of the lead stem's chroma (librosa's chroma_cqt, 16 ms frames where both
  sections sound), frame by frame from the sections' starts, of each later chorus against
  the first, beside the same for each verse against the first chorus (the baseline);
- the second voice: the share of its Praat pitch frames within 50 cents of a pitch class of
  the song's key, and the share of its notes a diatonic third (3 or 4 semitones) above the
  lead note they overlap most;
- the voices, after the engine's Opus encode and decode: benchmarks/sing_quality.py's pitch
  and quality figures on the whole song, the lead stem against `Song.sung` and the harmony
  stem against `summary["harmony_notes"]`;
- the decoded OGG's integrated loudness (target -14 LUFS) and the true peak of the decoded
  OGG and MP3 (target at most -1 dBTP);
- lyrics: the language the summary reports against the text's.

Speed, in a worker process of its own after all of that (models loaded; one full song with
stems and one lyrics song first, so the language detector is loaded too): each LibriSpeech
clip sung with 3 seeds in the full and the short form (`extras=False`), seconds per 15 s of
voice (p50, p95; targets: full p50 at most 1.2 s, short p50 at most 0.9 s), beside the floor
in the same runs (the ffmpeg command decoding the clip and the one encoding a song as long
as ours to Opus at 64 kb/s); then the worker's peak resident memory (target 500 MB).

    .venv/bin/python -m benchmarks.song_form [--clips NAME_PREFIX ...] [--jobs 2]

Names: the clips' stems (198-209-0000, cmu_arctic_...), lyrics-en-1 ... lyrics-fr, fsdd,
speed.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from benchmarks import sing_quality as sq
from benchmarks import singing_measures as sm
from benchmarks.sing_speed import ffmpeg_opus
from engine import audio
from engine.theory import Key, parse_key

if TYPE_CHECKING:
    from engine.pipeline import Song

SPEECH = sq.SPEECH
SEED, STYLE, FORM = 1, "pop", "full"
STEM_RATE, SONG_RATE = sq.STEM_RATE, sq.SONG_RATE
LYRICS = (  # name, text, the language it is in
    ("lyrics-en-1", "The morning sun is shining on the river\nand the birds are singing "
     "in the trees", "en"),
    ("lyrics-en-2", "Happy birthday to you my friend\nhave a wonderful day\nhappy birthday "
     "to you my friend\nand many more to come", "en"),
    ("lyrics-en-3", "Rain is falling on the city streets\nI walk alone and hum a tune\nthe "
     "lights are glowing soft and warm\nI will be home with you soon", "en"),
    ("lyrics-es", "El sol brilla sobre el mar\ny las olas cantan para mí\nquiero bailar "
     "contigo esta noche", "es"),
    ("lyrics-de", "Die Sonne scheint über dem Fluss\nund die Vögel singen im Wald\nich "
     "komme heute Abend nach Hause", "de"),
    ("lyrics-fr", "Le soleil brille sur la rivière\net les oiseaux chantent dans les "
     "arbres\nje rentre à la maison ce soir", "fr"),
)
SPEED_SEEDS = (1, 2, 3)
SAME_NOTE_S = 0.002  # chorus notes this close in relative time count as the same
CHROMA_HOP = 512  # samples at STEM_RATE: 16 ms
SOUNDING_DB = -40.0  # a chroma frame counts where the stem's RMS is within this of its top
NOTE_RANGE_S = (4.0, 20.0)  # voice notes whose songs the length target is about
SONG_RANGE_S = (25.0, 60.0)
MAX_SONG_S = 90.0
FIRST_CHORUS_BY_S = 20.0
TARGET_LUFS, LUFS_TOLERANCE = -14.0, 1.0
PEAK_DBTP = -1.0
FULL_P50_S, SHORT_P50_S, PEAK_RSS_MB = 1.2, 0.9, 500.0


@dataclass(frozen=True)
class Piece:
    """One thing to sing: a clip on disk, or lyrics in a known language."""

    name: str
    path: Path | None = None
    text: str | None = None
    language: str | None = None

    def sing(self, audio_format: str, extras: bool, seed: int = SEED) -> Song:
        from engine.pipeline import lyrics, sing

        if self.path is not None:
            return sing(self.path.read_bytes(), seed=seed, style=STYLE, form=FORM,
                        audio_format=audio_format, extras=extras)
        return lyrics(self.text or "", seed=seed, style=STYLE, form=FORM,
                      audio_format=audio_format, extras=extras)


def pieces() -> list[Piece]:
    clips = [*sorted(SPEECH.glob("*.ogg")), *sorted((SPEECH / "cmu_arctic").glob("*.wav"))]
    return [*(Piece(p.stem, path=p) for p in clips),
            *(Piece(name, text=text, language=code) for name, text, code in LYRICS)]


# --- One song -------------------------------------------------------------------------------

def song_task(piece: Piece) -> dict[str, Any]:
    """Sing the piece in the full form (OGG with stems, then MP3) and measure the song."""
    started = time.perf_counter()
    try:
        song = piece.sing("ogg", extras=True)
    except audio.BadAudio as error:
        return {"refused": str(error)}
    mp3 = piece.sing("mp3", extras=False).audio
    summary = song.summary
    lead = sm.Notes.of((n.pitch, n.start_s, n.end_s) for n in song.sung)
    vocal = sq.wav_samples(song.stems["vocal"])
    spans = section_spans(summary["sections"], float(summary["duration_s"]))
    choruses = [(a, b) for name, a, b in spans if name == "chorus"]
    figures: dict[str, Any] = {
        "duration_s": summary["duration_s"],
        "input_duration_s": summary["input_duration_s"],
        "song_to_note_length": round(summary["duration_s"] / summary["input_duration_s"], 3),
        "sections": [f"{s['name']} {s['start_s']:.2f}" for s in summary["sections"]],
        "first_chorus_s": choruses[0][0] if choruses else None,
        "choruses": len(choruses),
        "phrases": summary["phrases"],
        "hook": summary["hook"],
        "chorus_notes": chorus_notes_recur(lead, choruses),
        "chorus_chroma": chorus_chroma(vocal, spans),
        **decoded_levels(song.audio, mp3),
    }
    figures["lead"] = sq.judge_vocal(vocal, lead, words=False)
    harmony_notes = sm.Notes.of((n["pitch"], n["start_s"], n["end_s"])
                                for n in summary["harmony_notes"])
    if "harmony" in song.stems and len(harmony_notes):
        harmony = sq.wav_samples(song.stems["harmony"])
        figures["harmony_notes_recur"] = chorus_notes_recur(harmony_notes, choruses)
        second = second_voice(harmony, harmony_notes, lead, parse_key(summary["key"]))
        judged = sq.judge_vocal(harmony, harmony_notes, words=False)
        judged["pooled"].update(second.pop("pooled"))
        figures["harmony"] = {**second, **judged}
    if piece.language is not None:
        figures["language"] = {"text": piece.language, "reported": summary["language"]}
    figures["seconds"] = round(time.perf_counter() - started, 2)
    return figures


def section_spans(sections: Sequence[dict[str, Any]], end_s: float
                  ) -> list[tuple[str, float, float]]:
    """(name, start s, end s) of each section: each ends where the next starts."""
    starts = [float(s["start_s"]) for s in sections]
    return [(s["name"], a, b) for s, a, b in zip(sections, starts, [*starts[1:], end_s],
                                                  strict=True)]


def _notes_in(notes: sm.Notes, start_s: float, end_s: float) -> np.ndarray:
    """The notes with an onset in [start_s, end_s): rows of (pitch, onset, end) with the
    times from start_s. The summary's section starts are rounded to 1 ms, so both edges
    allow SAME_NOTE_S: a note right on the next section's start is that section's."""
    inside = ((notes.start_s >= start_s - SAME_NOTE_S) &
              (notes.start_s < end_s - SAME_NOTE_S))
    return np.column_stack([notes.midi[inside], notes.start_s[inside] - start_s,
                            notes.end_s[inside] - start_s])


def chorus_notes_recur(notes: sm.Notes, choruses: Sequence[tuple[float, float]]
                       ) -> dict[str, Any]:
    """How many later choruses sing the first one's notes: the same pitches at the same
    times from the section's start (within SAME_NOTE_S)."""
    if not choruses:
        return {"later": 0, "identical": 0}
    first = _notes_in(notes, *choruses[0])
    same = 0
    for span in choruses[1:]:
        later = _notes_in(notes, *span)
        same += int(later.shape == first.shape and bool(
            np.all(later[:, 0] == first[:, 0]) and
            np.all(np.abs(later[:, 1:] - first[:, 1:]) <= SAME_NOTE_S)))
    return {"notes_in_first": len(first), "later": len(choruses) - 1, "identical": same}


def _chroma(samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """librosa's chroma_cqt (12 x frames, every CHROMA_HOP samples) and the frames' RMS."""
    import librosa

    x = samples.astype(np.float32)
    chroma = librosa.feature.chroma_cqt(y=x, sr=STEM_RATE, hop_length=CHROMA_HOP)
    rms = librosa.feature.rms(y=x, hop_length=CHROMA_HOP)[0]
    n = min(chroma.shape[1], len(rms))
    return chroma[:, :n], rms[:n]


def _similarity(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray],
                floor: float) -> tuple[float, int]:
    """Mean cosine similarity of two chromagrams frame by frame from their first frames,
    over the frames where both sound (RMS above `floor`); and how many frames that was."""
    n = min(a[0].shape[1], b[0].shape[1])
    x, y = a[0][:, :n], b[0][:, :n]
    keep = (a[1][:n] > floor) & (b[1][:n] > floor)
    if not keep.any():
        return float("nan"), 0
    x, y = x[:, keep], y[:, keep]
    cosine = (x * y).sum(axis=0) / (np.linalg.norm(x, axis=0) * np.linalg.norm(y, axis=0))
    return float(np.mean(cosine)), int(keep.sum())


def chorus_chroma(vocal: np.ndarray, spans: Sequence[tuple[str, float, float]]
                  ) -> dict[str, Any]:
    """The lead stem's chroma of each later chorus against the first chorus, and of each
    verse against the first chorus (the baseline): mean cosine similarity."""
    sections = {(name, a): _chroma(vocal[round(a * STEM_RATE):round(b * STEM_RATE)])
                for name, a, b in spans if name in ("chorus", "verse")}
    top = max((float(rms.max()) for _, rms in sections.values()), default=0.0)
    floor = top * 10 ** (SOUNDING_DB / 20)
    chorus_keys = [k for k in sections if k[0] == "chorus"]
    if not chorus_keys:
        return {"later_vs_first": [], "verses_vs_first": []}
    first = sections[chorus_keys[0]]

    def against_first(name: str, skip: int) -> list[float | None]:
        return [sq.rounded(_similarity(sections[k], first, floor)[0], 3)
                for k in [k for k in sections if k[0] == name][skip:]]

    return {"later_vs_first": against_first("chorus", 1),
            "verses_vs_first": against_first("verse", 0)}


def second_voice(harmony: np.ndarray, harmony_notes: sm.Notes, lead: sm.Notes,
                 key: Key) -> dict[str, Any]:
    """The harmony stem's voiced Praat frames (after Opus) within 50 cents of a pitch class
    of `key`, and its notes' intervals above the lead note each overlaps most."""
    x = sq.received(harmony)
    _, f0 = sm.praat_pitch(x, STEM_RATE, *sm.pitch_range_hz(harmony_notes))
    midi = sm.hz_to_midi(f0[f0 > 0])
    classes = np.array(sorted(key.scale_pitch_classes()))
    offset = (midi[:, None] - classes[None, :]) % 12.0
    cents = 100.0 * np.min(np.minimum(offset, 12.0 - offset), axis=1)
    overlap = (np.minimum(harmony_notes.end_s[:, None], lead.end_s[None, :]) -
               np.maximum(harmony_notes.start_s[:, None], lead.start_s[None, :]))
    partner = np.argmax(overlap, axis=1)
    intervals = np.where(overlap[np.arange(len(partner)), partner] > 0,
                         harmony_notes.midi - lead.midi[partner], np.nan)
    values, counts = np.unique(intervals[np.isfinite(intervals)], return_counts=True)
    return {"key": key.name,
            "in_key_frames": len(cents),
            "in_key": sq.rounded(np.mean(cents <= sm.WITHIN_CENTS), 4, len(cents)),
            "notes": len(intervals),
            "third_above_lead": round(float(np.mean(np.isin(intervals, (3, 4)))), 4),
            "intervals_above_lead": {f"{v:g}": int(c) for v, c in zip(values, counts,
                                                                       strict=True)},
            "pooled": {"in_key_cents": cents, "intervals": intervals}}


def decoded_levels(ogg: bytes, mp3: bytes) -> dict[str, float]:
    """Integrated loudness of the decoded OGG; true peak of the decoded OGG and MP3."""
    song = audio.decode(ogg, sample_rate=SONG_RATE, max_duration_s=sq.MAX_DECODE_S).samples
    song_mp3 = audio.decode(mp3, sample_rate=SONG_RATE, max_duration_s=sq.MAX_DECODE_S).samples
    return {"loudness_ogg_lufs": round(sm.loudness_lufs(song, SONG_RATE), 2),
            "true_peak_ogg_dbtp": round(sm.true_peak_dbtp(song, SONG_RATE), 2),
            "true_peak_mp3_dbtp": round(sm.true_peak_dbtp(song_mp3, SONG_RATE), 2)}


def digits_task(paths: Sequence[Path]) -> dict[str, Any]:
    """How many of the spoken digits the full form sings (the rest are refused)."""
    sung = []
    for path in paths:
        try:
            Piece(path.stem, path=path).sing("ogg", extras=False)
        except audio.BadAudio:
            continue
        sung.append(path.name)
    return {"clips": len(paths), "sung": len(sung), "refused": len(paths) - len(sung),
            "sung_clips": sung}


# --- Speed ----------------------------------------------------------------------------------

def speed_worker(clips: Sequence[Path]) -> dict[str, Any]:
    """In this process: models loaded and one full song with stems and one lyrics song
    sung, then each clip with each of SPEED_SEEDS in both forms (interleaved, so both meet
    the same load), each beside the ffmpeg floor; then this process's peak memory."""
    from engine import arrange
    from engine.melody.model import load_model
    from engine.pipeline import lyrics, sing

    started = time.perf_counter()
    peak_mb: dict[str, float] = {"imports": _peak_rss_mb()}
    load_model()
    peak_mb["models"] = _peak_rss_mb()
    sing(clips[0].read_bytes(), seed=0, style=STYLE, form="full", extras=True)
    peak_mb["full_song_with_stems"] = _peak_rss_mb()
    lyrics(LYRICS[0][1], seed=0, style=STYLE, form="full")
    peak_mb["lyrics"] = _peak_rss_mb()
    warm_s = time.perf_counter() - started
    runs: dict[str, dict[str, list[float]]] = {
        form: {"song": [], "floor": [], "voice_s": []} for form in ("full", "short")}
    stages: dict[str, dict[str, list[float]]] = {form: {} for form in runs}
    for clip in clips:
        data = clip.read_bytes()
        for seed in SPEED_SEEDS:
            for form, run in runs.items():
                start = time.perf_counter()
                song = sing(data, seed=seed, style=STYLE, form=form, extras=False)
                run["song"].append(time.perf_counter() - start)
                for stage, seconds in song.timings_s.items():
                    stages[form].setdefault(stage, []).append(seconds)
                start = time.perf_counter()
                audio.decode(data, sample_rate=sq.VOICE_RATE)
                ffmpeg_opus(song.samples, arrange.SAMPLE_RATE)
                run["floor"].append(time.perf_counter() - start)
                run["voice_s"].append(song.summary["input_duration_s"])
    result: dict[str, Any] = {"warm_up_s": round(warm_s, 2)}
    for form, run in runs.items():
        per_15_s = 15.0 / np.array(run["voice_s"])
        song_s, floor_s = np.array(run["song"]) * per_15_s, np.array(run["floor"]) * per_15_s
        result[form] = {"runs": len(song_s),
                        "s_per_15_s_of_voice": _percentiles(song_s),
                        "floor_s_per_15_s_of_voice": _percentiles(floor_s),
                        "stage_median_s": {k: round(float(np.median(v)), 3)
                                           for k, v in stages[form].items()}}
    result["peak_rss_mb"] = _peak_rss_mb()
    result["peak_rss_mb_after"] = peak_mb
    return result


def _peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _percentiles(values: np.ndarray) -> dict[str, float]:
    return {"p50": round(float(np.median(values)), 3),
            "p95": round(float(np.percentile(values, 95)), 3)}


def speed() -> dict[str, Any]:
    """speed_worker in a fresh process (so its peak memory is its own)."""
    result = subprocess.run([sys.executable, "-m", "benchmarks.song_form", "--speed-worker"],
                            capture_output=True, text=True, check=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    figures: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    figures["load_average_before"] = [round(v, 2) for v in os.getloadavg()]
    return figures


# --- Aggregates and targets -------------------------------------------------------------------

def aggregate(songs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The songs' figures together: extremes, counts, and pooled frames and notes."""
    if not songs:
        return {}
    values = list(songs.values())

    def pooled(part: str, key: str) -> np.ndarray:
        arrays = [s[part]["pooled"][key] for s in values if part in s]
        return np.concatenate(arrays) if arrays else np.zeros(0)

    def voice(part: str) -> dict[str, Any]:
        with_part = [s for s in values if part in s]
        if not with_part:
            return {}
        keys = with_part[0][part]["pooled"]
        figures = sq.vocal_figures({k: pooled(part, k) for k in keys
                                     if k in ("deviation_cents", "movement_cents", "vibrato",
                                              "roughness", "hnr_db")})
        return {"songs": len(with_part), **figures,
                "clicks_total": sum(s[part]["clicks"] for s in with_part)}

    def measured(song: dict[str, Any], key: str) -> list[float]:
        return [v for v in song["chorus_chroma"][key] if v is not None]

    later = [v for s in values for v in measured(s, "later_vs_first")]
    verses = [v for s in values for v in measured(s, "verses_vs_first")]
    margins = [min(measured(s, "later_vs_first")) - max(measured(s, "verses_vs_first"))
               for s in values if measured(s, "later_vs_first") and
               measured(s, "verses_vs_first")]
    in_key, intervals = pooled("harmony", "in_key_cents"), pooled("harmony", "intervals")
    counted = [s for s in values if s["chorus_notes"]["later"]]
    harmony_counted = [s for s in values if s.get("harmony_notes_recur", {}).get("later")]
    chorus_counts: dict[str, int] = {}
    for s in values:
        chorus_counts[str(s["choruses"])] = chorus_counts.get(str(s["choruses"]), 0) + 1
    language = [s["language"] for s in values if "language" in s]
    in_range = [s["duration_s"] for s in values
                if NOTE_RANGE_S[0] <= s["input_duration_s"] <= NOTE_RANGE_S[1]]
    return {
        "songs": len(values),
        "duration_s": sq.extremes([s["duration_s"] for s in values], 2),
        "duration_s_of_4_to_20_s_notes": sq.extremes(in_range, 2),
        "input_duration_s": sq.extremes([s["input_duration_s"] for s in values], 2),
        "song_to_note_length": sq.extremes([s["song_to_note_length"] for s in values], 3),
        "first_chorus_s": sq.extremes([s["first_chorus_s"] for s in values
                                        if s["first_chorus_s"] is not None], 2),
        "songs_without_chorus": [n for n, s in songs.items() if not s["choruses"]],
        "songs_by_chorus_count": dict(sorted(chorus_counts.items())),
        "later_choruses_with_first_chorus_notes": {
            "lead": f"{sum(s['chorus_notes']['identical'] for s in counted)} of "
                    f"{sum(s['chorus_notes']['later'] for s in counted)}",
            "harmony": f"{sum(s['harmony_notes_recur']['identical'] for s in harmony_counted)}"
                       f" of {sum(s['harmony_notes_recur']['later'] for s in harmony_counted)}"},
        "chroma_later_chorus_vs_first": sq.extremes(later, 3),
        "chroma_verse_vs_first_chorus": sq.extremes(verses, 3),
        "chroma_margin_min_later_minus_max_verse": sq.extremes(margins, 3),
        "harmony_in_key": sq.rounded(np.mean(in_key <= sm.WITHIN_CENTS), 4, len(in_key)),
        "harmony_in_key_of_songs": sq.extremes([s["harmony"]["in_key"] for s in values
                                                 if "harmony" in s], 4),
        "harmony_third_above_lead": sq.rounded(np.mean(np.isin(intervals, (3, 4))), 4,
                                              len(intervals)),
        "harmony_notes": len(intervals),
        "lead": voice("lead"),
        "harmony": voice("harmony"),
        "loudness_ogg_lufs": sq.extremes([s["loudness_ogg_lufs"] for s in values], 2),
        "true_peak_ogg_dbtp_max": max(s["true_peak_ogg_dbtp"] for s in values),
        "true_peak_mp3_dbtp_max": max(s["true_peak_mp3_dbtp"] for s in values),
        "language_right": f"{sum(x['text'] == x['reported']['code'] for x in language)} of "
                          f"{len(language)}",
        "language_wrong": [f"{n}: {s['language']['reported']['code']}"
                           for n, s in songs.items() if "language" in s and
                           s["language"]["text"] != s["language"]["reported"]["code"]],
    }


def targets(figures: dict[str, Any], speed_figures: dict[str, Any] | None) -> dict[str, Any]:
    """Each target with its figure and whether it is met (None where it was not measured).
    `source`: the brief that asked for this benchmark, sing_quality.py's targets, or this
    benchmark's own reading of "the chorus recurs" and "a third above"."""

    def check(target: str, value: Any, met: Callable[[Any], bool],
              source: str = "brief") -> dict[str, Any]:
        missing = value is None or (isinstance(value, list) and None in value)
        return {"target": target, "value": value, "met": None if missing else bool(met(value)),
                "source": source}

    def extreme(key: str, end: str) -> Any:
        return (figures.get(key) or {}).get(end)

    lead, harmony = figures.get("lead", {}), figures.get("harmony", {})
    def counted(text: str | None) -> str | None:  # "3 of 4", or None for "0 of 0"
        return None if text is None or text.endswith(" of 0") else text

    def all_of(text: str) -> bool:
        same, of = text.split(" of ")
        return same == of

    lead_notes = counted(figures.get("later_choruses_with_first_chorus_notes", {}).get("lead"))
    speed_figures = speed_figures or {}

    def p50(form: str) -> Any:
        return speed_figures.get(form, {}).get("s_per_15_s_of_voice", {}).get("p50")

    result = {
        "song_length": check("25-60 s for a 4-20 s voice note", [
            extreme("duration_s_of_4_to_20_s_notes", "min"),
            extreme("duration_s_of_4_to_20_s_notes", "max")],
            lambda v: SONG_RANGE_S[0] <= v[0] and v[1] <= SONG_RANGE_S[1]),
        "never_over_90_s": check("every song at most 90 s", extreme("duration_s", "max"),
                                 lambda v: v <= MAX_SONG_S),
        "first_chorus": check("a chorus in every song, the first within 20 s", [
            extreme("first_chorus_s", "max"), len(figures.get("songs_without_chorus", []))],
            lambda v: v[0] <= FIRST_CHORUS_BY_S and v[1] == 0),
        "chorus_notes_recur": check("every later chorus sings the first one's lead notes",
                                    lead_notes, all_of,
                                    "this benchmark"),
        "chorus_sound_recurs": check(
            "in every song, each later chorus's chroma nearer the first than any verse's",
            extreme("chroma_margin_min_later_minus_max_verse", "min"), lambda v: v > 0,
            "this benchmark"),
        "harmony_third": check("every harmony note a diatonic third above the lead",
                               figures.get("harmony_third_above_lead"), lambda v: v == 1.0,
                               "this benchmark"),
        "loudness": check("-14 LUFS (within 1 LU) in every decoded OGG", [
            extreme("loudness_ogg_lufs", "min"), extreme("loudness_ogg_lufs", "max")],
            lambda v: abs(v[0] - TARGET_LUFS) <= LUFS_TOLERANCE and
            abs(v[1] - TARGET_LUFS) <= LUFS_TOLERANCE),
        "true_peak": check("<= -1 dBTP, decoded OGG and MP3", [
            figures.get("true_peak_ogg_dbtp_max"), figures.get("true_peak_mp3_dbtp_max")],
            lambda v: max(v) <= PEAK_DBTP),
        "language": check("the lyrics' language reported",
                          counted(figures.get("language_right")), all_of),
        "full_speed": check("full form p50 <= 1.2 s per 15 s of voice", p50("full"),
                            lambda v: v <= FULL_P50_S),
        "short_speed": check("short form p50 <= 0.9 s per 15 s of voice", p50("short"),
                             lambda v: v <= SHORT_P50_S),
        "peak_rss": check("worker peak RSS <= 500 MB", speed_figures.get("peak_rss_mb"),
                          lambda v: v <= PEAK_RSS_MB),
    }
    for part, voice in (("lead", lead), ("harmony", harmony)):
        movement = voice.get("movement_cents_per_10ms", {})
        result.update({
            f"{part}_within_50_cents": check("88-97 % of voiced frames in notes", voice.get(
                "within_50_cents"), lambda v: 0.88 <= v <= 0.97, "sing_quality"),
            f"{part}_median_abs_cents": check("6-15 cents", voice.get("median_abs_cents"),
                                              lambda v: 6 <= v <= 15, "sing_quality"),
            f"{part}_movement": check("median 3-5 cents per 10 ms", movement.get("median"),
                                      lambda v: 3 <= v <= 5, "sing_quality"),
            f"{part}_clicks": check("0 discontinuities", voice.get("clicks_total"),
                                    lambda v: v == 0, "sing_quality"),
        })
    return result


# --- Running ------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--clips", nargs="*", metavar="PREFIX", help="only the items whose "
                        "name starts with one of these (198-209, cmu_arctic, lyrics, "
                        "lyrics-de, fsdd, speed)")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument("--speed-worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.speed_worker:
        print(json.dumps(speed_worker(sorted(SPEECH.glob("*.ogg")))))
        return
    started = time.monotonic()

    def wanted(name: str) -> bool:
        return args.clips is None or any(name.startswith(p) for p in args.clips)

    chosen = [p for p in pieces() if wanted(p.name)]
    songs, digits = run_songs(chosen, wanted("fsdd"), args.jobs)
    speed_figures = speed() if wanted("speed") else None
    sung = {name: s for name, s in songs.items() if "chorus_chroma" in s}
    figures = aggregate(sung)
    for song in songs.values():
        for part in ("lead", "harmony"):
            song.get(part, {}).pop("pooled", None)
    print(json.dumps({
        "seed": SEED, "style": STYLE, "form": FORM, "clips": [p.name for p in chosen],
        "targets": targets(figures, speed_figures),
        "aggregate": {**figures, "not_sung": [n for n in songs if n not in sung]},
        "digits": digits, "speed": speed_figures,
        "wall_s": round(time.monotonic() - started, 1),
        "per_clip": songs,
    }, indent=1))


def run_songs(chosen: Sequence[Piece], digits: bool, jobs: int
              ) -> tuple[dict[str, dict[str, Any]], dict[str, Any] | None]:
    """song_task on every piece (and digits_task) in a pool of `jobs` processes."""
    with ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn"),
                             initializer=sq.one_thread_each) as pool:
        futures: dict[str, Future[dict[str, Any]]] = {}
        # Longest first, so that the workers finish at about the same time.
        for piece in sorted(chosen, key=lambda p: (p.path is None or "cmu" in p.name, p.name)):
            futures[piece.name] = pool.submit(song_task, piece)
        if digits:
            futures["fsdd"] = pool.submit(digits_task, sorted((SPEECH / "fsdd").glob("*.wav")))
        done = {name: sq.future_outcome(future) for name, future in futures.items()}
    return ({n: s for n, s in done.items() if n != "fsdd"}, done.get("fsdd"))


if __name__ == "__main__":
    main()
