"""Read POP909 songs (MIDI + beat, chord and key annotations) into key-normalised scores.

Songs 001-809 train and validate; 810-909 are the test set (see the data README).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pretty_midi

from engine.melody.tokens import STEPS_PER_BAR, Chord, GridNote, Score, quantize_notes
from engine.theory import CHORD_QUALITIES, Key, Mode, parse_key

TRAIN_SONGS = range(1, 810)
TEST_SONGS = range(810, 910)
TICKS_PER_STEP = 120  # POP909 is written at 480 ticks per beat
MAX_EMPTY_BARS = 2


@dataclass
class Pop909Song:
    number: int
    score: Score  # key-normalised (see tokens.py), leading and trailing empty bars trimmed
    bar_modes: list[Mode]  # the mode in force at each bar


def song_dir(root: Path, number: int) -> Path:
    """The folder of POP909 song `number` (1..909) under the data set's `root`, e.g. root/007."""
    return root / f"{number:03d}"


def _chord_from_label(label: str, shift: int) -> Chord:
    """'C#:min7/b3' -> (root, 'min'), transposed by shift; 'N' -> None."""
    if label == "N" or ":" not in label:
        return None
    root_name, quality_text = label.split(":", 1)
    root = parse_key(root_name).tonic
    quality_text = quality_text.split("/")[0]
    if quality_text.startswith(("min", "hdim")) and not quality_text.startswith("minmaj"):
        quality = "min" if quality_text.startswith("min") else "dim"
    elif quality_text.startswith("dim"):
        quality = "dim"
    elif quality_text.startswith("aug"):
        quality = "aug"
    else:
        quality = "maj"  # maj, 7, sus2, sus4, maj6, minmaj7 heard as major-ish
    assert quality in CHORD_QUALITIES
    return (root + shift) % 12, quality


def normalising_shift(key: Key) -> int:
    """Semitones that move a key's relative major tonic to C, in -5..6, smallest move.

    Parameters
    ----------
    key : Key
        The key to normalise.

    Returns
    -------
    shift : int in -5..6
        Semitones to add to every pitch.
    """
    shift = (-key.relative_major_tonic) % 12
    return shift - 12 if shift > 6 else shift


def _keys_at(times_s: np.ndarray, key_rows: list[tuple[float, float, Key]]) -> list[Key]:
    starts = np.array([row[0] for row in key_rows])
    index = np.clip(np.searchsorted(starts, times_s, side="right") - 1, 0, len(key_rows) - 1)
    return [key_rows[i][2] for i in index]


def _read_rows(path: Path) -> list[list[str]]:
    return [line.split() for line in path.read_text().splitlines() if line.strip()]


def read_song(root: Path, number: int) -> Pop909Song | None:
    """One song as a key-normalised score, or None when it is not in 4/4.

    Each note is moved by the normalising_shift of the key in force at its onset, and each half
    bar's chord by that of the key at that time; empty bars at both ends are dropped and longer
    silences inside shortened to MAX_EMPTY_BARS.

    Parameters
    ----------
    root : Path
        The POP909 folder (holding 001/, 002/, ...).
    number : int in 1..909
        The song's number.

    Returns
    -------
    song : Pop909Song or None
        None when the song has fewer than 8 gaps between downbeats, their median is not
        16 16ths (4/4), or no melody note lands on the grid.

    Raises
    ------
    FileNotFoundError
        When the song's MIDI file, beat_midi.txt, key_audio.txt or chord_midi.txt is missing.
    StopIteration
        When the MIDI file has no track named MELODY.
    """
    folder = song_dir(root, number)
    midi = pretty_midi.PrettyMIDI(str(folder / f"{number:03d}.mid"))
    melody = next(inst for inst in midi.instruments if inst.name.upper() == "MELODY")
    beats = np.array([[float(x) for x in row] for row in _read_rows(folder / "beat_midi.txt")])
    downbeat_ticks = np.array([midi.time_to_tick(t) for t in beats[beats[:, 2] == 1, 0]])
    gaps_steps = np.rint(np.diff(downbeat_ticks) / TICKS_PER_STEP)
    if len(gaps_steps) < 8 or np.median(gaps_steps) != STEPS_PER_BAR:
        return None
    key_rows = [(float(a), float(b), parse_key(k)) for a, b, k in
                _read_rows(folder / "key_audio.txt")]

    # Bars: one at each downbeat, plus 4/4 bars filling any longer gap and the pickup.
    first = downbeat_ticks[0] / TICKS_PER_STEP
    note_on_steps = np.array([midi.time_to_tick(n.start) for n in melody.notes]) / TICKS_PER_STEP
    bar_starts: list[float] = []
    lead = first
    while note_on_steps.size and lead > note_on_steps.min() - 0.5:
        lead -= STEPS_PER_BAR
        bar_starts.insert(0, lead)
    # After the last annotated downbeat, 4/4 bars run on past the last note.
    downbeats = list(downbeat_ticks / TICKS_PER_STEP)
    downbeats.append(max(downbeats[-1], note_on_steps.max(initial=0.0)) + STEPS_PER_BAR)
    for start, nxt in itertools.pairwise(downbeats):
        step = start
        while step < nxt - 0.5:
            bar_starts.append(step)
            step += STEPS_PER_BAR

    notes_s = [(n.start, n.end, n.pitch) for n in melody.notes]
    keys = _keys_at(np.array([n[0] for n in notes_s]), key_rows)
    shifts = np.array([normalising_shift(k) for k in keys])
    onsets = note_on_steps
    offsets = np.array([midi.time_to_tick(n[1]) for n in notes_s]) / TICKS_PER_STEP
    pitches = np.array([n[2] for n in notes_s]) + shifts
    grid = quantize_notes(onsets, offsets, pitches, np.array(bar_starts))
    if not grid:
        return None

    bar_times = np.array([midi.tick_to_time(int(s * TICKS_PER_STEP)) for s in bar_starts])
    half_times = np.repeat(bar_times, 2) + 1e-3
    half_times[1::2] += np.diff(np.append(bar_times, bar_times[-1] + 4.0)) / 2
    chord_rows = _read_rows(folder / "chord_midi.txt")
    chord_starts = np.array([float(r[0]) for r in chord_rows])
    chord_keys = _keys_at(half_times, key_rows)
    chords: list[Chord] = []
    for t, key in zip(half_times, chord_keys, strict=True):
        i = int(np.searchsorted(chord_starts, t, side="right")) - 1
        label = chord_rows[i][2] if i >= 0 and t < float(chord_rows[i][1]) else "N"
        chords.append(_chord_from_label(label, normalising_shift(key)))
    bar_modes: list[Mode] = [k.mode for k in _keys_at(bar_times, key_rows)]
    score = Score(mode=bar_modes[grid[0].bar], n_bars=len(bar_starts), notes=grid, chords=chords)
    return Pop909Song(number, *_squeeze_empty_bars(score, bar_modes))


def _squeeze_empty_bars(score: Score, bar_modes: list[Mode]) -> tuple[Score, list[Mode]]:
    """Drop empty bars at both ends and shorten long silences inside to MAX_EMPTY_BARS."""
    used = {n.bar for n in score.notes}
    keep: list[int] = []
    empty_run = 0
    for bar in range(min(used), max(used) + 1):
        empty_run = 0 if bar in used else empty_run + 1
        if empty_run <= MAX_EMPTY_BARS:
            keep.append(bar)
    keep_set = set(keep)
    new_index = {bar: i for i, bar in enumerate(keep)}
    notes = [GridNote(new_index[n.bar], n.pos, n.pitch, n.dur) for n in score.notes
             if n.bar in keep_set]
    chords = [c for b in keep for c in score.chords[2 * b: 2 * b + 2]]
    modes = [bar_modes[b] for b in keep]
    return Score(mode=modes[0], n_bars=len(keep), notes=notes, chords=chords), modes


def read_songs(root: Path, numbers: Iterable[int]) -> list[Pop909Song]:
    """The songs of `numbers` read with read_song, skipping those it returns None for.

    Parameters
    ----------
    root : Path
        The POP909 folder (holding 001/, 002/, ...).
    numbers : iterable of int in 1..909
        Song numbers, read in this order.

    Returns
    -------
    songs : list of Pop909Song
    """
    songs = []
    for number in numbers:
        song = read_song(root, number)
        if song is not None:
            songs.append(song)
    return songs
