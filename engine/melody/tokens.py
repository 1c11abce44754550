"""The melody model's vocabulary: a melody on a 16th-note grid as a sequence of tokens.

A score is key-normalised: pitches are transposed so that the relative major's tonic is C
(A minor and C major share one set of notes). Per bar the sequence holds

    BAR, CHORD(first half), CHORD(second half), then for each note: POS, PITCH, DUR

after a first token that carries the mode (BOS_MAJOR or BOS_MINOR). POS is the onset in
16ths within the bar (0..15); DUR the length in 16ths (1..32); rests are the gaps.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from engine.theory import CHORD_QUALITIES, Mode

STEPS_PER_BAR = 16
STEPS_PER_BEAT = 4
PITCH_MIN = 36
PITCH_MAX = 96
MAX_DUR_STEPS = 32

PAD = 0
BOS_MAJOR = 1
BOS_MINOR = 2
BAR = 3
CHORD_NONE = 4
CHORD_BASE = 5
CHORD_END = CHORD_BASE + 12 * len(CHORD_QUALITIES)
POS_BASE = CHORD_END
PITCH_BASE = POS_BASE + STEPS_PER_BAR
DUR_BASE = PITCH_BASE + (PITCH_MAX - PITCH_MIN + 1)
VOCAB_SIZE = DUR_BASE + MAX_DUR_STEPS

Chord = tuple[int, str] | None
"""A chord as (root pitch class, quality in CHORD_QUALITIES), or None for no chord."""


@dataclass(frozen=True)
class GridNote:
    """One melody note on the grid: bar index, onset step in the bar, pitch, length in steps."""

    bar: int
    pos: int
    pitch: int
    dur: int

    @property
    def onset(self) -> int:
        """Onset in steps from the start of bar 0."""
        return self.bar * STEPS_PER_BAR + self.pos


@dataclass
class Score:
    """A key-normalised melody with one chord per half bar."""

    mode: Mode
    n_bars: int
    notes: list[GridNote] = field(default_factory=list)
    chords: list[Chord] = field(default_factory=list)  # 2 per bar

    def __post_init__(self) -> None:
        if not self.chords:
            self.chords = [None] * (2 * self.n_bars)


def chord_token(chord: Chord) -> int:
    """Token of a chord: (root pitch class, taken mod 12; quality in CHORD_QUALITIES) or None."""
    if chord is None:
        return CHORD_NONE
    root, quality = chord
    return CHORD_BASE + (root % 12) * len(CHORD_QUALITIES) + CHORD_QUALITIES.index(quality)


def token_chord(token: int) -> Chord:
    """Chord of a chord token, (root pitch class 0..11, quality), or None for CHORD_NONE."""
    if token == CHORD_NONE:
        return None
    index = token - CHORD_BASE
    return index // len(CHORD_QUALITIES), CHORD_QUALITIES[index % len(CHORD_QUALITIES)]


def pitch_token(pitch: int) -> int:
    """Token of a MIDI note number, clipped to PITCH_MIN..PITCH_MAX (36..96)."""
    return PITCH_BASE + int(np.clip(pitch, PITCH_MIN, PITCH_MAX)) - PITCH_MIN


def is_pitch(token: int) -> bool:
    """Whether a token (an int in 0..VOCAB_SIZE - 1) is a PITCH token."""
    return PITCH_BASE <= token < DUR_BASE


def is_chord(token: int) -> bool:
    """Whether a token (an int in 0..VOCAB_SIZE - 1) is a CHORD token (CHORD_NONE included)."""
    return CHORD_NONE <= token < POS_BASE


def is_pos(token: int) -> bool:
    """Whether a token (an int in 0..VOCAB_SIZE - 1) is a POS token (an onset step in the bar)."""
    return POS_BASE <= token < PITCH_BASE


def is_dur(token: int) -> bool:
    """Whether a token (an int in 0..VOCAB_SIZE - 1) is a DUR token (a length in 16th steps)."""
    return DUR_BASE <= token < VOCAB_SIZE


def encode(score: Score) -> list[int]:
    """Score -> tokens, starting with the mode token (BOS_MAJOR or BOS_MINOR).

    Parameters
    ----------
    score : Score
        A key-normalised melody; notes may come in any order (they are sorted by onset).

    Returns
    -------
    tokens : list of int in 0..VOCAB_SIZE - 1
        Per bar BAR and its two half-bar CHORD tokens, then POS, PITCH, DUR per note; pitches are
        clipped to PITCH_MIN..PITCH_MAX (MIDI 36..96) and lengths to 1..MAX_DUR_STEPS (16ths).
    """
    tokens = [BOS_MINOR if score.mode == "minor" else BOS_MAJOR]
    notes_by_bar: dict[int, list[GridNote]] = {}
    for note in sorted(score.notes, key=lambda n: n.onset):
        notes_by_bar.setdefault(note.bar, []).append(note)
    for bar in range(score.n_bars):
        tokens += [BAR, chord_token(score.chords[2 * bar]), chord_token(score.chords[2 * bar + 1])]
        for note in notes_by_bar.get(bar, []):
            dur = int(np.clip(note.dur, 1, MAX_DUR_STEPS))
            tokens += [POS_BASE + note.pos, pitch_token(note.pitch), DUR_BASE + dur - 1]
    return tokens


def decode(tokens: list[int]) -> Score:
    """Tokens -> Score; tolerant of a sequence cut anywhere (an unfinished note is dropped).

    Parameters
    ----------
    tokens : list of int in 0..VOCAB_SIZE - 1
        A sequence as encode makes it; tokens out of place (a note before the first BAR, a third
        chord in a bar, a PITCH without a POS) are skipped.

    Returns
    -------
    score : Score
        Mode minor when the first token is BOS_MINOR, else major; as many bars as BAR tokens, and
        missing chords filled with None.
    """
    mode: Mode = "minor" if tokens and tokens[0] == BOS_MINOR else "major"
    bar = -1
    chords: list[Chord] = []
    notes: list[GridNote] = []
    pos: int | None = None
    pitch: int | None = None
    for token in tokens:
        if token == BAR:
            bar += 1
            pos = pitch = None
        elif is_chord(token) and bar >= 0:
            if len(chords) < 2 * (bar + 1):
                chords.append(token_chord(token))
        elif is_pos(token):
            pos, pitch = token - POS_BASE, None
        elif is_pitch(token) and pos is not None:
            pitch = token - PITCH_BASE + PITCH_MIN
        elif is_dur(token) and pos is not None and pitch is not None and bar >= 0:
            notes.append(GridNote(bar, pos, pitch, token - DUR_BASE + 1))
            pos = pitch = None
    n_bars = bar + 1
    chords += [None] * (2 * n_bars - len(chords))
    return Score(mode=mode, n_bars=n_bars, notes=notes, chords=chords)


def quantize_notes(
    onsets: np.ndarray,
    offsets: np.ndarray,
    pitches: np.ndarray,
    bar_starts: np.ndarray,
) -> list[GridNote]:
    """Put a monophonic line on the grid.

    Notes that start on the same step keep the highest; overlaps are cut at the next onset; a
    note is at least one step and at most MAX_DUR_STEPS long.

    Parameters
    ----------
    onsets : np.ndarray [shape=(n,)], float
        Note starts, in (fractional) 16th steps on one time line; rounded to whole steps.
    offsets : np.ndarray [shape=(n,)], float
        Note ends, in 16th steps on the same time line.
    pitches : np.ndarray [shape=(n,)], int
        MIDI note numbers (kept as they are, not clipped).
    bar_starts : np.ndarray [shape=(m,)], float, increasing
        Where each bar starts, in 16th steps on the same time line.

    Returns
    -------
    notes : list of GridNote, in onset order
        Notes before the first bar, or 16 or more steps into their bar, are dropped.
    """
    on_all = np.rint(np.asarray(onsets, dtype=float)).astype(int)
    order = np.lexsort((-np.asarray(pitches), on_all))
    on_q = on_all[order]
    off_q = np.rint(np.asarray(offsets, dtype=float)[order]).astype(int)
    pitch_sorted = np.asarray(pitches)[order]
    starts = np.rint(np.asarray(bar_starts, dtype=float)).astype(int)
    kept: list[tuple[int, int, int]] = []
    for onset, offset, pitch in zip(on_q, off_q, pitch_sorted, strict=True):
        if kept and kept[-1][0] == onset:
            continue  # same onset: the highest pitch came first
        kept.append((int(onset), int(max(offset, onset + 1)), int(pitch)))
    notes = []
    for i, (onset, offset, pitch) in enumerate(kept):
        if i + 1 < len(kept):
            offset = min(offset, kept[i + 1][0])
        bar = int(np.searchsorted(starts, onset, side="right")) - 1
        if bar < 0:
            continue
        pos = onset - int(starts[bar])
        if pos >= STEPS_PER_BAR:
            continue  # only in a bar longer than 4/4, which the reader splits beforehand
        dur = int(np.clip(offset - onset, 1, MAX_DUR_STEPS))
        notes.append(GridNote(bar=bar, pos=pos, pitch=pitch, dur=dur))
    return notes


def pitch_run_lengths(pitches: list[int]) -> list[int]:
    """Lengths of the runs of one repeated pitch (MIDI note numbers), in order (each >= 1)."""
    runs: list[int] = []
    for i, pitch in enumerate(pitches):
        if i and pitch == pitches[i - 1]:
            runs[-1] += 1
        else:
            runs.append(1)
    return runs
