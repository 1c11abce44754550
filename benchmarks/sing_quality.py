"""How well the voice sings, side by side with the engine before, a plain WORLD re-pitch and
a person. Prints one JSON object.

Systems, each on the same clips (seed 1, style pop):
- new: the engine in this checkout (`engine.pipeline.sing` and `lyrics`), in the short form
  (the verse alone: one pass of the words, as the old engine sings; the song form's
  chorus and harmony are measured by benchmarks/song_form.py);
- old: the engine at `--old-ref`, from a temporary git worktree, through its CLI;
- world: a plain WORLD re-pitch on the new engine's time map: the whole clip analysed
  (dio + stonemask, cheaptrick, d4c, 5 ms), resynthesised every 5 ms over the sung span
  with the envelope and aperiodicity of the mapped input instant and the f0 of the note
  sung there (of the previous note between notes; 0 where the input is unvoiced), placed on
  the song's time line and brought to the new vocal stem's loudness;
- human: vocadito clip 1 (a person singing) judged against its annotation A1.

Clips: the 3 LibriSpeech clips and the 6 CMU ARCTIC sentences, 3 short English lyrics (via
`lyrics`), and the LibriSpeech clips with kitchen noise mixed in at 10 and 5 dB SNR (RMS of
the whole clip against RMS of the noise). The 60 spoken digits and the WORLD vowels are
only counted: sung or refused.

Each vocal is judged as a person receives it: Opus-encoded and decoded by the engine's own
`engine.audio.encode` / `decode`. The measures (benchmarks/singing_measures.py says exactly
how each is taken): pitch by Praat against the notes sung, f0 movement, vibrato, roughness,
harmonicity, clicks, word error (pocketsphinx on the original speech as the reference, on
the vocal as the hypothesis), note lengths and rhythm, true peak and loudness of the decoded
songs, the voice against the band, and the vocal's level between notes. Aggregates pool the
frames (or notes) of every clip in a group; `per_clip` has each clip's figures.

    .venv/bin/python -m benchmarks.sing_quality [--clips NAME_PREFIX ...] [--old-ref 4961e81]
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
import pretty_midi
import pyworld
import soundfile as sf
from scipy.signal import resample_poly

from benchmarks import singing_measures as sm
from engine import audio

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
SPEECH = DATA / "speech"
NOISE = DATA / "noise" / "doing_the_dishes.wav"
HUMAN = DATA / "singing" / "vocadito" / "vocadito_1.wav"
HUMAN_NOTES = DATA / "singing" / "vocadito" / "vocadito_1_notesA1.csv"
OLD_REF = "4961e81"
SEED, STYLE = 1, "pop"
FORM = "short"  # the verse alone: the voice is judged here, the song form in song_form.py
LYRICS = (
    "The morning sun is shining on the river and the birds are singing.",
    "I will call you when I get home tonight, so please wait for me.",
    "Happy birthday to you, my friend, have a wonderful day.",
)
SNRS_DB = (10, 5)
VOICE_RATE = 22050  # the engine decodes its input at this rate
STEM_RATE = 32000  # the stems' rate, and the rate the vocals are judged at
SPEECH_RATE = 16000  # pocketsphinx's
SONG_RATE = 48000  # Opus's; the decoded songs are measured at it
WORLD_HOP_S = 0.005
MAX_DECODE_S = 600.0
CLI_TIMEOUT_S = 300.0


@dataclass(frozen=True)
class Item:
    """One voice note to sing: a clip on disk or lyrics; `reference` names the clean item
    whose speech is the word-error reference (the item itself, or the clip a noisy one was
    made from)."""

    name: str
    group: str  # "clean", "noisy_10db", "noisy_5db"
    path: Path | None = None
    text: str | None = None
    reference: str = ""

    @property
    def cli_args(self) -> list[str]:
        return ["lyrics", self.text or ""] if self.path is None else ["sing", str(self.path)]


# --- The systems ----------------------------------------------------------------------------

def new_task(item: Item) -> dict[str, Any]:
    """Sing the item with this checkout's engine (OGG with stems, and MP3), judge it, and
    make and judge the WORLD re-pitch on its time map."""
    from engine.pipeline import lyrics, sing

    started = time.perf_counter()

    def make(fmt: str, extras: bool) -> Any:
        if item.path is not None:
            return sing(item.path.read_bytes(), seed=SEED, style=STYLE, form=FORM,
                        audio_format=fmt, extras=extras)
        return lyrics(item.text or "", seed=SEED, style=STYLE, form=FORM, audio_format=fmt,
                      extras=extras)

    try:
        song = make("ogg", True)
    except audio.BadAudio as error:
        return {"new": {"refused": str(error)}}
    mp3 = make("mp3", False).audio
    notes = sm.Notes.of((n.pitch, n.start_s, n.end_s) for n in song.sung)
    vocal = wav_samples(song.stems["vocal"])
    new = _judge_song(song.audio, mp3, vocal, wav_samples(song.stems["backing"]), notes,
                      float(song.summary["tempo_bpm"]))
    new["vocal_sha256"] = hashlib.sha256(song.stems["vocal"]).hexdigest()[:16]
    new["seconds"] = round(time.perf_counter() - started, 2)
    started = time.perf_counter()
    voice = _speech(item, VOICE_RATE)
    sung = world_vocal(voice, song.time_map, notes, len(vocal),
                       sm.loudness_lufs(vocal, STEM_RATE))
    world = judge_vocal(sung, notes)
    world["seconds"] = round(time.perf_counter() - started, 2)
    new["input_clicks"] = len(sm.clicks(received(resample_poly(
        voice, STEM_RATE // 50, VOICE_RATE // 50)), STEM_RATE))
    return {"new": new, "world": world}


def old_task(item: Item, tree: Path) -> dict[str, Any]:
    """Sing the item with the engine in the worktree `tree`, through its CLI (OGG with stems
    and melody, then MP3), and judge it."""
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="singsong-old-song-") as name:
        folder = Path(name)
        ogg = _old_cli(tree, [*item.cli_args, "-o", str(folder / "song.ogg"), "--stems",
                              str(folder / "stems"), "--melody-out",
                              str(folder / "melody.mid"), "--json"])
        if ogg.returncode == 2:
            return {"old": {"refused": ogg.stderr.strip().splitlines()[-1]}}
        ogg.check_returncode()
        _old_cli(tree, [*item.cli_args, "-o", str(folder / "song.mp3")]).check_returncode()
        summary = json.loads(ogg.stdout.strip().splitlines()[-1])
        midi = pretty_midi.PrettyMIDI(str(folder / "melody.mid"))
        notes = sm.Notes.of((n.pitch, n.start, n.end)
                            for track in midi.instruments for n in track.notes)
        vocal_wav = (folder / "stems" / "vocal.wav").read_bytes()
        old = _judge_song((folder / "song.ogg").read_bytes(), (folder / "song.mp3").read_bytes(),
                          wav_samples(vocal_wav),
                          wav_samples((folder / "stems" / "backing.wav").read_bytes()),
                          notes, float(summary["tempo_bpm"]))
    old["vocal_sha256"] = hashlib.sha256(vocal_wav).hexdigest()[:16]
    old["seconds"] = round(time.perf_counter() - started, 2)
    return {"old": old}


def _old_cli(tree: Path, args: Sequence[str]) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "bot.cli", *args, "--seed", str(SEED), "--style", STYLE]
    return subprocess.run(command, cwd=tree, env={**os.environ, "PYTHONPATH": str(tree)},
                          capture_output=True, text=True, timeout=CLI_TIMEOUT_S, check=False)


def human_task() -> dict[str, Any]:
    """vocadito clip 1 against its annotation A1: the vocal measures and note lengths."""
    started = time.perf_counter()
    rows = np.loadtxt(HUMAN_NOTES, delimiter=",", ndmin=2)
    notes = sm.Notes(rows[:, 0], rows[:, 0] + rows[:, 2], sm.hz_to_midi(rows[:, 1]))
    voice = audio.decode(HUMAN.read_bytes(), sample_rate=STEM_RATE,
                         max_duration_s=MAX_DECODE_S).samples
    human = judge_vocal(voice, notes, words=False)  # no spoken reference to compare with
    human["notes"] = sm.note_lengths(notes)
    human["pooled"].update(_note_arrays(notes))
    human["seconds"] = round(time.perf_counter() - started, 2)
    return {"human": human}


def reference_task(item: Item) -> dict[str, Any]:
    """The original speech of a clean item: pocketsphinx's transcript (the word-error
    reference) and its length (s)."""
    samples = _speech(item, SPEECH_RATE)
    return {"transcript": sm.transcribe(samples), "speech_s": len(samples) / SPEECH_RATE}


def short_new_task(paths: Sequence[Path]) -> dict[str, Any]:
    """Which of the very short clips the new engine sings (the rest are refused)."""
    from engine.pipeline import sing

    sung = []
    for path in paths:
        try:
            sing(path.read_bytes(), seed=SEED, style=STYLE, form=FORM, extras=False)
        except audio.BadAudio:
            continue
        sung.append(path.name)
    return {"clips": len(paths), "sung": len(sung), "refused": len(paths) - len(sung),
            "sung_clips": sung}


def short_old_task(paths: Sequence[Path], tree: Path) -> dict[str, Any]:
    """The same with the old engine: its CLI's main() run in one process for all the clips
    (the same command line for each; 61 Python start-ups would cost a minute)."""
    script = ("import json, sys\nfrom bot.cli import main\n"
              "out, paths = sys.argv[1], sys.argv[2:]\n"
              f"codes = [main(['sing', p, '-o', out, '--seed', '{SEED}', '--style', "
              f"'{STYLE}']) for p in paths]\nprint(json.dumps(codes))\n")
    with tempfile.TemporaryDirectory(prefix="singsong-old-short-") as folder:
        result = subprocess.run([sys.executable, "-c", script, f"{folder}/song.ogg",
                                 *map(str, paths)], cwd=tree,
                                env={**os.environ, "PYTHONPATH": str(tree)},
                                capture_output=True, text=True, timeout=CLI_TIMEOUT_S,
                                check=True)
    codes = json.loads(result.stdout.strip().splitlines()[-1])
    sung = [p.name for p, code in zip(paths, codes, strict=True) if code == 0]
    return {"clips": len(paths), "sung": len(sung), "refused": codes.count(2),
            "failed": len(paths) - len(sung) - codes.count(2), "sung_clips": sung}


def world_vocal(voice: np.ndarray, time_map: Any, notes: sm.Notes, length: int,
                loudness_lufs: float) -> np.ndarray:
    """A plain WORLD re-pitch of `voice` (mono, VOICE_RATE) onto `notes` on the song's
    `time_map` (its `to_input` takes song time to input time, in s), as `length` samples at
    STEM_RATE on the song's time line at `loudness_lufs`. See the module's docstring."""
    x = voice.astype(np.float64)
    frame_ms = WORLD_HOP_S * 1000
    f0, times = pyworld.dio(x, VOICE_RATE, f0_floor=60.0, f0_ceil=700.0, frame_period=frame_ms)
    f0 = pyworld.stonemask(x, f0, times, VOICE_RATE)
    envelope = np.log(np.maximum(pyworld.cheaptrick(x, f0, times, VOICE_RATE), 1e-16))
    aperiodicity = pyworld.d4c(x, f0, times, VOICE_RATE)
    start_s, end_s = _sung_span(time_map, notes)
    t_out = np.arange(start_s, end_s, WORLD_HOP_S)
    position = np.clip(np.asarray(time_map.to_input(t_out)) / WORLD_HOP_S, 0, len(f0) - 1)
    low = np.floor(position).astype(int)
    high = np.minimum(low + 1, len(f0) - 1)
    weight = (position - low)[:, None]
    sp = np.exp((1 - weight) * envelope[low] + weight * envelope[high])
    ap = np.clip((1 - weight) * aperiodicity[low] + weight * aperiodicity[high], 0.0, 1.0)
    voiced = f0[np.round(position).astype(int)] > 0
    index = np.clip(np.searchsorted(notes.start_s, t_out, side="right") - 1, 0, None)
    f0_out = np.where(voiced, sm.midi_to_hz(notes.midi[index]), 0.0)
    sung = pyworld.synthesize(np.ascontiguousarray(f0_out), np.ascontiguousarray(sp),
                              np.ascontiguousarray(ap), VOICE_RATE, frame_ms)
    sung = resample_poly(sung, STEM_RATE // 50, VOICE_RATE // 50)
    out = np.zeros(length)
    at = round(start_s * STEM_RATE)
    piece = sung[:max(0, length - at)]
    out[at:at + len(piece)] = piece
    gain = 10 ** ((loudness_lufs - sm.loudness_lufs(out, STEM_RATE)) / 20)
    return np.asarray(np.clip(out * gain, -1.0, 1.0), dtype=np.float32)


def _sung_span(time_map: Any, notes: sm.Notes) -> tuple[float, float]:
    """The song time (s) the voice is sung over: the time map's output span where it says
    (today's TimeMap has its breakpoints in `output_s`), else from 0.3 s before the first
    note (the engine's lead-in) to the last note's end."""
    output_s = getattr(time_map, "output_s", None)
    if output_s is not None and len(output_s) > 1:
        return float(output_s[0]), float(output_s[-1])
    return max(0.0, float(notes.start_s[0]) - 0.3), float(notes.end_s[-1])


# --- Judging --------------------------------------------------------------------------------

def received(samples: np.ndarray, rate: int = STEM_RATE) -> np.ndarray:
    """The samples as a person receives them: through the engine's Opus encode and decode."""
    return audio.decode(audio.encode(samples, rate, "ogg"), sample_rate=rate,
                        max_duration_s=MAX_DECODE_S).samples


def judge_vocal(vocal: np.ndarray, notes: sm.Notes, words: bool = True) -> dict[str, Any]:
    """Every measure of a vocal (mono, STEM_RATE) against the notes it sings, after Opus
    (the words heard in it too, when `words`). The arrays that aggregates pool are under
    "pooled"."""
    received = audio.encode(vocal, STEM_RATE, "ogg")
    x = audio.decode(received, sample_rate=STEM_RATE, max_duration_s=MAX_DECODE_S).samples
    x16 = audio.decode(received, sample_rate=SPEECH_RATE, max_duration_s=MAX_DECODE_S).samples
    floor_hz, ceiling_hz = sm.pitch_range_hz(notes)
    times, f0 = sm.praat_pitch(x, STEM_RATE, floor_hz, ceiling_hz)
    # Harmonicity at 16 kHz: the same figures within 0.1 dB, in a third of the time.
    hnr_times, hnr = sm.praat_hnr(x16, SPEECH_RATE, floor_hz)
    pooled = {
        "deviation_cents": sm.deviation_cents(times, f0, notes),
        "movement_cents": sm.movement_cents(times, f0, notes),
        "vibrato": sm.note_vibratos(times, f0, notes),
        "roughness": sm.note_roughness(x, STEM_RATE, times, f0, notes),
        "hnr_db": sm.in_notes(hnr_times, hnr, notes),
    }
    inside_db, between_db = sm.level_between_notes_db(x, STEM_RATE, notes)
    figures = {**vocal_figures(pooled), "clicks": len(sm.clicks(x, STEM_RATE)),
               "level_in_notes_db": rounded(inside_db, 1),
               "level_between_notes_db": rounded(between_db, 1),
               "between_below_notes_db": rounded(inside_db - between_db, 1), "pooled": pooled}
    return {**figures, "transcript": sm.transcribe(x16)} if words else figures


def vocal_figures(pooled: dict[str, np.ndarray]) -> dict[str, Any]:
    """The vocal measures' summary figures from their pooled frames and notes."""
    deviation, movement = pooled["deviation_cents"], pooled["movement_cents"]
    vibrato, roughness, hnr = pooled["vibrato"], pooled["roughness"], pooled["hnr_db"]
    return {
        "judged_frames": len(deviation),
        "within_50_cents": rounded(np.mean(np.abs(deviation) <= sm.WITHIN_CENTS), 4,
                                  len(deviation)),
        "median_abs_cents": rounded(np.median(np.abs(deviation)), 1, len(deviation)),
        "movement_cents_per_10ms": {"median": rounded(np.median(movement), 2, len(movement)),
                                    "mean": rounded(np.mean(movement), 2, len(movement))},
        "vibrato": {"notes": len(vibrato),
                    "depth_cents_median": rounded(np.median(vibrato[:, 0]), 1, len(vibrato)),
                    "rate_hz_median": rounded(np.median(vibrato[:, 1]), 2, len(vibrato))},
        "roughness": {"notes": len(roughness),
                      "median": rounded(np.median(roughness), 4, len(roughness))},
        "hnr_db_median": rounded(np.median(hnr), 1, len(hnr)),
    }


def _judge_song(ogg: bytes, mp3: bytes, vocal: np.ndarray, backing: np.ndarray,
                notes: sm.Notes, tempo_bpm: float) -> dict[str, Any]:
    """The vocal's measures, and the song's: true peak and loudness of the decoded files,
    the voice against the band, the band before and after the voice, notes and rhythm."""
    judged = judge_vocal(vocal, notes)
    song = audio.decode(ogg, sample_rate=SONG_RATE, max_duration_s=MAX_DECODE_S).samples
    song_mp3 = audio.decode(mp3, sample_rate=SONG_RATE, max_duration_s=MAX_DECODE_S).samples
    voice_on, voice_off = sm.sound_span_s(vocal, STEM_RATE)
    band_on, band_off = sm.sound_span_s(backing, STEM_RATE)
    bar_s = 4 * 60.0 / tempo_bpm
    judged["pooled"].update(_note_arrays(notes))
    return {**judged,
            "notes": sm.note_lengths(notes),
            "tempo_bpm": tempo_bpm,
            "inter_onset_beats": sm.inter_onset_beats(notes, tempo_bpm),
            "true_peak_ogg_dbtp": round(sm.true_peak_dbtp(song, SONG_RATE), 2),
            "true_peak_mp3_dbtp": round(sm.true_peak_dbtp(song_mp3, SONG_RATE), 2),
            "loudness_ogg_lufs": round(sm.loudness_lufs(song, SONG_RATE), 2),
            "voice_above_band_lu": round(sm.loudness_lufs(vocal, STEM_RATE) -
                                         sm.loudness_lufs(backing, STEM_RATE), 2),
            "song_s": round(len(song) / SONG_RATE, 3),
            "band_before_voice_s": round(voice_on - band_on, 3),
            "band_before_voice_bars": round((voice_on - band_on) / bar_s, 3),
            "band_after_voice_s": round(band_off - voice_off, 3)}


def _note_arrays(notes: sm.Notes) -> dict[str, np.ndarray]:
    """The note lengths (s) that aggregates pool: all notes, and the phrase ends."""
    return {"note_s": notes.duration_s, "phrase_end_s": notes.duration_s[sm.phrase_ends(notes)]}


def rounded(value: Any, digits: int, count: int = 1) -> float | None:
    """A figure rounded for the report; None where nothing was measured (or nan)."""
    if count == 0 or value is None or not np.isfinite(value):
        return None
    return round(float(value), digits)


def wav_samples(data: bytes) -> np.ndarray:
    samples, rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    if rate != STEM_RATE:
        raise sm.MeasureError(f"the stems are at {rate} Hz, not {STEM_RATE}")
    return np.asarray(samples.mean(axis=1))


def _speech(item: Item, rate: int) -> np.ndarray:
    """The item's original speech (the clip, or the lyrics spoken by the engine's
    espeak-ng) at `rate`, as the engine decodes it."""
    if item.path is not None:
        data = item.path.read_bytes()
    else:
        from engine import singer

        data = singer.speak(item.text or "").audio
    return audio.decode(data, sample_rate=rate, max_duration_s=MAX_DECODE_S).samples


# --- The clips --------------------------------------------------------------------------------

def clean_items() -> list[Item]:
    """The clean clips and the lyrics: each its own word-error reference."""
    clips = [*sorted(SPEECH.glob("*.ogg")), *sorted((SPEECH / "cmu_arctic").glob("*.wav"))]
    return [*(Item(p.stem, "clean", path=p, reference=p.stem) for p in clips),
            *(Item(f"lyrics-{i + 1}", "clean", text=t, reference=f"lyrics-{i + 1}")
              for i, t in enumerate(LYRICS))]


def noisy_items(folder: Path, wanted: Callable[[str], bool]) -> list[Item]:
    """The LibriSpeech clips with kitchen noise at each of SNRS_DB, the wanted ones written
    into `folder` (the noise under the i-th clip starts at 20 i s)."""
    noise = audio.decode(NOISE.read_bytes(), sample_rate=VOICE_RATE,
                         max_duration_s=MAX_DECODE_S).samples
    items = []
    for snr_db in SNRS_DB:
        for i, clip in enumerate(sorted(SPEECH.glob("*.ogg"))):
            name = f"{clip.stem}+dishes{snr_db}dB"
            if wanted(name):
                path = folder / f"{name}.wav"
                path.write_bytes(noisy(clip, noise, snr_db, offset_s=20.0 * i))
                items.append(Item(name, f"noisy_{snr_db}db", path=path, reference=clip.stem))
    return items


def noisy(clip: Path, noise: np.ndarray, snr_db: float, offset_s: float) -> bytes:
    """The clip with `noise` (at VOICE_RATE, from `offset_s`) mixed in at `snr_db` (RMS of
    the whole clip against RMS of the noise under it), as a 16-bit WAV at VOICE_RATE."""
    speech = audio.decode(clip.read_bytes(), sample_rate=VOICE_RATE).samples.astype(np.float64)
    start = round(offset_s * VOICE_RATE)
    under = np.resize(noise[start:], len(speech)).astype(np.float64)
    gain = np.sqrt(np.mean(speech**2) / np.mean(under**2)) / 10 ** (snr_db / 20)
    mix = speech + gain * under
    mix *= min(1.0, 0.95 / float(np.max(np.abs(mix))))
    return audio.wav_bytes(mix.astype(np.float32), VOICE_RATE)


def short_clips() -> list[Path]:
    return [*sorted((SPEECH / "fsdd").glob("*.wav")), SPEECH / "vaiueo2d.wav"]


@contextmanager
def worktree(ref: str) -> Iterator[Path]:
    """A detached git worktree of `ref` in a temporary folder, removed afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="singsong-old-engine-"))
    tree = folder / "tree"
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree), ref],
                   check=True, capture_output=True, text=True)
    try:
        yield tree
    finally:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)],
                       check=False, capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


# --- Aggregates and targets -------------------------------------------------------------------

def aggregate(results: Sequence[dict[str, Any]], references: Sequence[str],
              speech_s: Sequence[float]) -> dict[str, Any]:
    """One system's figures over a group of clips: frames and notes pooled, WER over all
    words, extremes of the per-song figures."""
    if not results:
        return {}
    pooled = {key: np.concatenate([r["pooled"][key] for r in results])
              for key in results[0]["pooled"]}  # the same keys for every clip of a system
    figures = {"clips": len(results), **vocal_figures(pooled),
               "clicks_total": sum(r["clicks"] for r in results)}
    if "transcript" in results[0]:
        figures["wer"] = rounded(sm.word_error_rate(references,
                                                   [r["transcript"] for r in results]), 4)
    between = [r["between_below_notes_db"] for r in results
               if r["between_below_notes_db"] is not None]
    figures["between_below_notes_db"] = extremes(between, 1)
    if "input_clicks" in results[0]:
        figures["input_clicks_total"] = sum(r["input_clicks"] for r in results)
    if "note_s" in pooled:
        figures["notes"] = {**sm.note_length_figures(pooled["note_s"], pooled["phrase_end_s"]),
                            "median_s_of_clips": extremes(
                                [r["notes"]["median_s"] for r in results], 3)}
    if "tempo_bpm" not in results[0]:
        return figures
    histogram: dict[str, int] = {}
    for r in results:
        for key, count in r["inter_onset_beats"].items():
            histogram[key] = histogram.get(key, 0) + count
    ratios = [r["song_s"] / s for r, s in zip(results, speech_s, strict=True)]
    figures.update({
        "tempo_bpm": extremes([r["tempo_bpm"] for r in results], 1),
        "inter_onset_beats": dict(sorted(histogram.items(), key=lambda kv: _beats(kv[0]))),
        "true_peak_ogg_dbtp_max": max(r["true_peak_ogg_dbtp"] for r in results),
        "true_peak_mp3_dbtp_max": max(r["true_peak_mp3_dbtp"] for r in results),
        "loudness_ogg_lufs": extremes([r["loudness_ogg_lufs"] for r in results], 2),
        "voice_above_band_lu": extremes([r["voice_above_band_lu"] for r in results], 2),
        "song_to_speech_length": extremes(ratios, 3),
        "band_before_voice_s": extremes([r["band_before_voice_s"] for r in results], 3),
        "band_before_voice_bars_max": max(r["band_before_voice_bars"] for r in results),
        "band_after_voice_s": extremes([r["band_after_voice_s"] for r in results], 3),
    })
    return figures


def _beats(key: str) -> float:
    return float(key.lstrip(">")) + (0.001 if key.startswith(">") else 0.0)


def extremes(values: Sequence[float], digits: int) -> dict[str, float] | None:
    if not values:
        return None
    return {"min": round(float(np.min(values)), digits),
            "median": round(float(np.median(values)), digits),
            "max": round(float(np.max(values)), digits)}


def targets(clean: dict[str, dict[str, Any]], noisy_10db: dict[str, Any]) -> dict[str, Any]:
    """The targets for the new engine (clean clips and lyrics; one on the 10 dB noisy clips),
    each with its figure and whether it is met (None when it could not be measured)."""
    new, old, world = clean.get("new", {}), clean.get("old", {}), clean.get("world", {})

    def check(target: str, value: Any, met: Callable[[Any], bool]) -> dict[str, Any]:
        return {"target": target, "value": value,
                "met": None if value is None or (isinstance(value, list) and None in value)
                else bool(met(value))}

    notes = new.get("notes", {})
    vibe = new.get("movement_cents_per_10ms", {})
    above = new.get("voice_above_band_lu") or {}
    below = noisy_10db.get("between_below_notes_db") or {}
    return {
        "within_50_cents": check("88-97 % of voiced frames in notes", new.get(
            "within_50_cents"), lambda v: 0.88 <= v <= 0.97),
        "median_abs_cents": check("6-15 cents", new.get("median_abs_cents"),
                                  lambda v: 6 <= v <= 15),
        "movement": check("median 3-5 cents per 10 ms", vibe.get("median"),
                          lambda v: 3 <= v <= 5),
        "roughness": check("no rougher than world (median)", [
            (new.get("roughness") or {}).get("median"),
            (world.get("roughness") or {}).get("median")], lambda v: v[0] <= v[1]),
        "hnr": check("HNR no lower than world (median dB)", [
            new.get("hnr_db_median"), world.get("hnr_db_median")], lambda v: v[0] >= v[1]),
        "clicks": check("0 discontinuities", new.get("clicks_total"), lambda v: v == 0),
        "wer": check("no worse than old", [new.get("wer"), old.get("wer")],
                     lambda v: v[0] <= v[1]),
        "median_note": check("median sung note >= 0.30 s", notes.get("median_s"),
                             lambda v: v >= 0.30),
        "short_notes": check("<= 10 % of notes under 150 ms", notes.get("share_under_150_ms"),
                             lambda v: v <= 0.10),
        "phrase_ends": check("every phrase end >= 0.6 s", notes.get("phrase_end_min_s"),
                             lambda v: v >= 0.6),
        "true_peak": check("<= -1 dBTP, OGG and MP3", [new.get("true_peak_ogg_dbtp_max"),
                                                       new.get("true_peak_mp3_dbtp_max")],
                           lambda v: max(v) <= -1.0),
        "voice_above_band": check("3-6 LU in every song", [above.get("min"), above.get("max")],
                                  lambda v: v[0] >= 3 and v[1] <= 6),
        "band_before_voice": check("<= one bar", new.get("band_before_voice_bars_max"),
                                   lambda v: v <= 1.0),
        "noisy_10db_between_notes": check(
            "between notes >= 15 dB below notes in every 10 dB clip", below.get("min"),
            lambda v: v >= 15),
    }


# --- Running ------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--clips", nargs="*", metavar="PREFIX", help="only the items whose "
                        "name starts with one of these (198-209, cmu_arctic, lyrics, "
                        "3436-172162-0000+dishes10dB, human, short)")
    parser.add_argument("--old-ref", default=OLD_REF, help="the commit to compare with "
                        f"(default {OLD_REF}); '' to leave the old engine out")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes (default 2)")
    args = parser.parse_args(argv)
    started = time.monotonic()

    def wanted(name: str) -> bool:
        return args.clips is None or any(name.startswith(p) for p in args.clips)

    with tempfile.TemporaryDirectory(prefix="singsong-quality-") as name, \
            (worktree(args.old_ref) if args.old_ref else _no_tree()) as tree:
        clean = clean_items()
        items = [*(item for item in clean if wanted(item.name)),
                 *noisy_items(Path(name), wanted)]
        report = run_all(items, {item.name: item for item in clean}, tree, wanted("human"),
                         wanted("short"), args.jobs)
    report["wall_s"] = round(time.monotonic() - started, 1)
    print(json.dumps({"seed": SEED, "style": STYLE, "old_ref": args.old_ref, **report},
                     indent=1))


@contextmanager
def _no_tree() -> Iterator[None]:
    yield None


def run_all(items: Sequence[Item], clean: dict[str, Item], tree: Path | None,
            human: bool, short: bool, jobs: int) -> dict[str, Any]:
    """Run every system on every item in a process pool; gather per-clip figures, group
    aggregates, the short clips' counts and the targets."""
    with ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn"),
                             initializer=one_thread_each) as pool:
        futures: dict[tuple[str, str], Future[dict[str, Any]]] = {}
        # Longest first, so that the two workers finish at about the same time.
        for item in sorted(items, key=lambda i: (i.path is None or "cmu" in i.name, i.name)):
            if tree is not None:
                futures[(item.name, "old")] = pool.submit(old_task, item, tree)
            futures[(item.name, "new")] = pool.submit(new_task, item)
        for speech in sorted({item.reference for item in items}):
            futures[(speech, "reference")] = pool.submit(reference_task, clean[speech])
        if human:
            futures[(HUMAN.stem, "human")] = pool.submit(human_task)
        if short:
            futures[("short", "new")] = pool.submit(short_new_task, short_clips())
            if tree is not None:
                futures[("short", "old")] = pool.submit(short_old_task, short_clips(), tree)
        done = {key: future_outcome(future) for key, future in futures.items()}

    references = {name: r for (name, kind), r in done.items() if kind == "reference"}
    per_clip: dict[str, dict[str, Any]] = {}
    for (name, kind), outcome in done.items():
        if kind != "reference" and name != "short":
            per_clip.setdefault(name, {}).update({kind: outcome} if "error" in outcome
                                                 else outcome)
    # (clip, its word-error reference) by group; the person sings in the clean group.
    members = {group: [(i.name, i.reference) for i in items if i.group == group]
               for group in sorted({i.group for i in items})}
    groups: dict[str, dict[str, Any]] = {}
    for group, clips in members.items():
        groups[group] = {system: _group_figures(clips, system, per_clip, references)
                         for system in ("new", "old", "world")}
    if human:
        groups.setdefault("clean", {})["human"] = _group_figures(
            [(HUMAN.stem, "")], "human", per_clip, references)
    for name, outcome in per_clip.items():
        reference = references.get(next((i.reference for i in items if i.name == name), ""))
        for figures in outcome.values():
            _finish_clip_figures(figures, reference)
    same = [name for name, outcome in per_clip.items() if outcome.get("new", {}).get(
        "vocal_sha256", "new") == outcome.get("old", {}).get("vocal_sha256", "old")]
    return {
        "clips": [item.name for item in items],
        "targets_new": targets(groups.get("clean", {}),
                               groups.get("noisy_10db", {}).get("new", {})),
        "aggregate": groups,
        "short_clips": {system: done[("short", system)] for system in ("new", "old")
                        if ("short", system) in done},
        "vocal_stem_identical_new_old": f"{len(same)} of {len(items)}",
        "references": {name: r.get("transcript", r.get("error")) for name, r in
                       references.items()},
        "per_clip": per_clip,
    }


def _group_figures(clips: Sequence[tuple[str, str]], system: str,
                   per_clip: dict[str, dict[str, Any]],
                   references: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """aggregate() over the clips a system sang, and the names of those it did not."""
    sung, not_sung = [], []
    for name, reference in clips:
        figures = per_clip.get(name, {}).get(system)
        if figures and "pooled" in figures:
            sung.append((figures, references.get(reference, {})))
        elif figures:
            not_sung.append(name)
    result = aggregate([f for f, _ in sung], [r.get("transcript", "") for _, r in sung],
                       [r.get("speech_s", np.nan) for _, r in sung])
    return {**result, "not_sung": not_sung} if not_sung else result


def _finish_clip_figures(figures: dict[str, Any], reference: dict[str, Any] | None) -> None:
    """A clip's figures for the report: the pooled arrays dropped, its word error rate and
    its song's length against the speech added."""
    if "pooled" not in figures:
        return
    figures.pop("pooled")
    if reference and "transcript" in figures:
        figures["wer"] = rounded(sm.word_error_rate([reference["transcript"]],
                                                   [figures["transcript"]]), 4)
    if reference and "song_s" in figures:
        figures["song_to_speech_length"] = round(figures["song_s"] / reference["speech_s"], 3)


def future_outcome(future: Future[dict[str, Any]]) -> dict[str, Any]:
    """A task's result, or its error as text (one failing clip does not stop the rest)."""
    try:
        return future.result()
    except Exception as error:  # reported in the JSON; the other clips go on
        return {"error": f"{type(error).__name__}: {error}"}


def one_thread_each() -> None:
    # Two workers on two cores: one thread each for the numeric libraries.
    for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[variable] = "1"


if __name__ == "__main__":
    main()
