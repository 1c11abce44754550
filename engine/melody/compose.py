"""Sample a melody from the model under the grammar of the tokens and a few musical rules.

Rules, each kept as light as it can be: notes stay in the requested range; one pitch is never
repeated more than MAX_REPEATS times running (and gently discouraged past SOFT_REPEATS); a
melody ends on the tonic and each phrase comes to rest on a degree of the tonic triad,
picking the stable pitch the model itself likes best there.

`compose` writes a free melody (phrases of four bars, any rhythm the model likes, 16th-note
onsets held back to POP909's share); `compose_phrases` writes a tune for words sung in given
phrases, on the 8th-note grid, each phrase ending on a long note and followed by a breath.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Literal, Protocol

import numpy as np

from engine.errors import InvalidRequest
from engine.melody.model import LstmState, MelodyLstm, load_model
from engine.melody.pop909 import normalising_shift
from engine.melody.tokens import (
    BAR,
    BOS_MAJOR,
    BOS_MINOR,
    CHORD_END,
    CHORD_NONE,
    DUR_BASE,
    MAX_DUR_STEPS,
    PITCH_BASE,
    PITCH_MAX,
    PITCH_MIN,
    POS_BASE,
    STEPS_PER_BAR,
    STEPS_PER_BEAT,
    Chord,
    GridNote,
    token_chord,
)
from engine.theory import Key

MAX_REPEATS = 8
SOFT_REPEATS = 4
REPEAT_PENALTY = 1.0  # logit units per repeat beyond SOFT_REPEATS
PHRASE_BARS = 4
MODEL_CENTRE_PITCH = 74  # the median of POP909's melodies once key-normalised (D5)
LANDING_POSITIONS = (0, 4, 8)  # where a final note may land in the last bar: beats 1-3
MAJOR_SHARE = 0.57  # POP909: 630 major and 477 minor key spans
# Logit units taken from the 16th-note (odd) onset positions in compose(): sampled freely the
# model writes more of them than POP909's songs hold. Calibrated on songs 001-809 (README).
ODD_POSITION_BIAS = 0.5

# compose_phrases: the rhythm of sung phrases, in 16th steps.
PHRASE_STARTS = (0, 10, 12, 14)  # on the downbeat, or a pickup of 3, 2 or 1 8ths before it
MIN_BREATH_STEPS = 2  # rest between phrases: at least an 8th
# A verse moves in 8ths (the model, left to itself under these rules, writes many quarters
# and the song drags): logit units added to an inner note's 8th.
SUNG_EIGHTH_BIAS = 0.7
EIGHTH_STEPS = 2
MAX_PHRASE_WAIT_STEPS = 8  # a phrase starts within half a bar of the first place it may
MAX_INNER_REST_STEPS = 2  # inside a phrase: at most an 8th
MIN_INNER_NOTE_STEPS, MAX_INNER_NOTE_STEPS = 2, 6  # an 8th to a dotted quarter
MIN_PHRASE_END_STEPS, MAX_PHRASE_END_STEPS = 8, 12  # a phrase's last note: half to dotted half
MIN_SUNG_NOTE_S = 0.15  # the voice needs this long for a syllable: 16ths only when slow
MAX_SIXTEENTH_SHARE = 0.05  # of the notes, on odd steps (dotted 8th + 16th, 16th pickups)

MIN_TEMPO_BPM, MAX_TEMPO_BPM = 40.0, 240.0
MAX_BARS = 64
MAX_NOTES = 512

PitchRule = Literal["free", "stable", "tonic"]


@dataclass(frozen=True)
class MelodyNote:
    """A note of the finished melody, in the real key."""

    pitch: int  # MIDI note number
    start_s: float
    end_s: float
    velocity: int
    start_step: int  # onset in 16ths from the start
    dur_steps: int


@dataclass(frozen=True)
class ChordSpan:
    root: int  # pitch class in the real key
    quality: str
    start_s: float
    end_s: float


@dataclass(frozen=True)
class Melody:
    notes: tuple[MelodyNote, ...]
    chords: tuple[ChordSpan, ...]
    key: Key
    tempo_bpm: float
    n_bars: int
    seed: int
    phrase_ends: tuple[int, ...] = ()  # index of each phrase's last note (compose_phrases)

    @property
    def step_s(self) -> float:
        return 60.0 / self.tempo_bpm / STEPS_PER_BEAT

    @property
    def duration_s(self) -> float:
        return self.n_bars * STEPS_PER_BAR * self.step_s

    def at_tempo(self, tempo_bpm: float) -> Melody:
        """The same melody played at another tempo."""
        scale = self.tempo_bpm / tempo_bpm
        notes = tuple(replace(n, start_s=n.start_s * scale, end_s=n.end_s * scale)
                      for n in self.notes)
        chords = tuple(replace(c, start_s=c.start_s * scale, end_s=c.end_s * scale)
                       for c in self.chords)
        return replace(self, notes=notes, chords=chords, tempo_bpm=tempo_bpm)


@dataclass
class _Draft:
    """What the sampler has produced so far, in key-normalised grid terms."""

    notes: list[GridNote]
    chords: list[Chord]
    pitch_probs: list[np.ndarray]  # the distribution each note's pitch was drawn from
    bar: int = -1


def validate(bars: int | None, n_notes: int | None, tempo_bpm: float,
             pitch_range: tuple[int, int], temperature: float, top_p: float) -> None:
    """Raise InvalidRequest, with one sentence, for options the composer cannot honour.

    Parameters
    ----------
    bars : int in 1..MAX_BARS (64) or None
        Length in 4/4 bars.
    n_notes : int in 1..MAX_NOTES (512) or None
        Length in notes; one of bars and n_notes must be given.
    tempo_bpm : float in MIN_TEMPO_BPM..MAX_TEMPO_BPM (40..240)
        Quarter notes per minute.
    pitch_range : (int, int)
        Lowest and highest MIDI note number, within 0..127 and at least 7 semitones apart.
    temperature : float in 0.05..3
        Sampling temperature.
    top_p : float in 0.05..1
        Nucleus sampling's share of probability.

    Raises
    ------
    InvalidRequest
        For the first option out of its range, or when neither bars nor n_notes is given.
    """
    if n_notes is None and bars is None:
        raise InvalidRequest("give a length: a number of bars or of notes")
    if bars is not None and not 1 <= bars <= MAX_BARS:
        raise InvalidRequest(f"bars must be between 1 and {MAX_BARS} (got {bars})")
    if n_notes is not None and not 1 <= n_notes <= MAX_NOTES:
        raise InvalidRequest(f"the number of notes must be between 1 and {MAX_NOTES} "
                             f"(got {n_notes})")
    if not MIN_TEMPO_BPM <= tempo_bpm <= MAX_TEMPO_BPM:
        raise InvalidRequest(f"tempo must be between {MIN_TEMPO_BPM:.0f} and "
                             f"{MAX_TEMPO_BPM:.0f} BPM (got {tempo_bpm:g})")
    low, high = pitch_range
    if not (low >= 0 and high <= 127 and high - low >= 7):
        raise InvalidRequest(f"the pitch range must span at least 7 semitones within MIDI "
                             f"0-127 (got {low}-{high})")
    if not 0.05 <= temperature <= 3.0:
        raise InvalidRequest(f"temperature must be between 0.05 and 3 (got {temperature:g})")
    if not 0.05 <= top_p <= 1.0:
        raise InvalidRequest(f"top_p must be between 0.05 and 1 (got {top_p:g})")


def validate_phrases(phrase_lengths: Sequence[int]) -> None:
    """Raise InvalidRequest, with one sentence, for phrase lengths that cannot be sung.

    Parameters
    ----------
    phrase_lengths : sequence of int >= 1
        Notes per phrase.

    Raises
    ------
    InvalidRequest
        When there is no phrase, or a phrase has fewer than one note.
    """
    if not phrase_lengths:
        raise InvalidRequest("give at least one phrase to sing (phrase_lengths is empty)")
    for number, length in enumerate(phrase_lengths, start=1):
        if length < 1:
            raise InvalidRequest(f"every phrase needs at least one note "
                                 f"(phrase {number} has {length})")


def compose(
    *,
    seed: int = 0,
    key: Key | None = None,
    bars: int | None = 8,
    n_notes: int | None = None,
    tempo_bpm: float = 110.0,
    pitch_range: tuple[int, int] = (60, 86),
    temperature: float = 1.0,
    top_p: float = 0.95,
    model: MelodyLstm | None = None,
) -> Melody:
    """A new melody (phrases of four bars, any rhythm the model likes).

    Parameters
    ----------
    seed : int
        Same seed and options, same melody.
    key : Key or None
        None picks one from the seed.
    bars : int in 1..MAX_BARS (64) or None
        Length in 4/4 bars; ignored when n_notes is given.
    n_notes : int in 1..MAX_NOTES (512) or None
        Exactly that many notes.
    tempo_bpm : float in 40..240
        Quarter notes per minute.
    pitch_range : (int, int)
        Lowest and highest MIDI note number (inclusive), within 0..127, at least 7 semitones
        apart.
    temperature : float in 0.05..3
        How adventurous the sampling is.
    top_p : float in 0.05..1
        Nucleus sampling's share of probability.
    model : MelodyLstm or None
        None loads the shipped model (load_model).

    Returns
    -------
    melody : Melody
        Notes and chords in s and MIDI note numbers, in `key`.

    Raises
    ------
    InvalidRequest
        For options out of range (see validate).
    """
    validate(bars, n_notes, tempo_bpm, pitch_range, temperature, top_p)
    model, rng, key, shift, normal_range = _start(seed, key, pitch_range, model)
    rhythm = _FreeRhythm(bars=None if n_notes is not None else bars, n_notes=n_notes)
    draft = _sample(model, rng, key, rhythm, normal_range, temperature, top_p)
    _settle_phrase_ends(draft, key, n_notes is not None)
    return realise(draft.notes, draft.chords, draft.bar + 1, key, shift, tempo_bpm, seed)


def compose_phrases(
    *,
    seed: int,
    phrase_lengths: Sequence[int],
    pitch_range: tuple[int, int],
    tempo_bpm: float,
    key: Key | None = None,
    temperature: float = 1.0,
    top_p: float = 0.95,
    model: MelodyLstm | None = None,
) -> Melody:
    """A melody to sing words on: phrase i is phrase_lengths[i] consecutive notes.

    Phrases are sung as songs are written: onsets on the 8th-note grid, mostly 8ths and
    quarters; each phrase starts on a downbeat or as a pickup of 1-3 8ths, ends on a note
    of the tonic triad held at least a half note, and is followed by at least an 8th of
    rest. The melody ends on the tonic over the tonic chord, held to the end of its bar.
    At tempi where a 16th lasts MIN_SUNG_NOTE_S or more (tempo_bpm <= 100) a few notes
    (MAX_SIXTEENTH_SHARE) may take a 16th: a dotted 8th and 16th on a beat, or two 16ths
    as a pickup.

    Parameters
    ----------
    seed : int
        Same seed and options, same melody.
    phrase_lengths : sequence of int >= 1
        Notes per phrase; MAX_NOTES (512) in all at most.
    pitch_range : (int, int)
        Lowest and highest MIDI note number (inclusive), within 0..127, at least 7 semitones
        apart.
    tempo_bpm : float in 40..240
        Quarter notes per minute.
    key : Key or None
        None picks one from the seed.
    temperature : float in 0.05..3
        Nucleus sampling's temperature.
    top_p : float in 0.05..1
        Nucleus sampling's share of probability.
    model : MelodyLstm or None
        None loads the shipped model (load_model).

    Returns
    -------
    melody : Melody
        Its phrase_ends holds the index of each phrase's last note.

    Raises
    ------
    InvalidRequest
        For lengths or options the composer cannot honour (validate_phrases, validate).
    """
    validate_phrases(phrase_lengths)
    lengths = tuple(int(n) for n in phrase_lengths)
    validate(None, sum(lengths), tempo_bpm, pitch_range, temperature, top_p)
    model, rng, key, shift, normal_range = _start(seed, key, pitch_range, model)
    step_s = 60.0 / tempo_bpm / STEPS_PER_BEAT
    rhythm = _PhraseRhythm(lengths, sixteenths=step_s >= MIN_SUNG_NOTE_S - 1e-9)
    draft = _sample(model, rng, key, rhythm, normal_range, temperature, top_p)
    final = draft.notes[-1]
    end_step = -(-(final.onset + final.dur) // STEPS_PER_BAR) * STEPS_PER_BAR
    n_bars = end_step // STEPS_PER_BAR
    _come_home(draft, key, end_step, n_bars)
    return realise(draft.notes, draft.chords, n_bars, key, shift, tempo_bpm, seed,
                   phrase_ends=rhythm.phrase_ends)


def _start(seed: int, key: Key | None, pitch_range: tuple[int, int],
           model: MelodyLstm | None) -> tuple[MelodyLstm, np.random.Generator, Key, int,
                                               tuple[int, int]]:
    """What both composers start from: the model, the seeded generator, the key (drawn
    from the seed when None), the shift from the model's key-normalised pitches to the
    output, and the pitch range in the model's terms."""
    rng = np.random.default_rng(seed)
    key = key if key is not None else _seeded_key(rng)
    shift = _output_shift(key, pitch_range)
    return (model or load_model(), rng, key, shift,
            (pitch_range[0] - shift, pitch_range[1] - shift))


def _seeded_key(rng: np.random.Generator) -> Key:
    return Key(int(rng.integers(12)), "major" if rng.random() < MAJOR_SHARE else "minor")


def _output_shift(key: Key, pitch_range: tuple[int, int]) -> int:
    """Semitones from the model's key-normalised pitches to the output: key plus octaves."""
    key_shift = -normalising_shift(key)
    centre = (pitch_range[0] + pitch_range[1]) / 2
    octaves = round((centre - key_shift - MODEL_CENTRE_PITCH) / 12)
    return key_shift + 12 * octaves


class _Rhythm(Protocol):
    """Where notes may start and how long they may last, and what each pitch must do."""

    position_bias: np.ndarray  # logits added to the 16 POS tokens
    eighth_bias: float  # logits added to an 8th's DUR token where longer notes may follow

    def positions(self, draft: _Draft) -> tuple[np.ndarray, bool]:
        """Onset positions (16 booleans) allowed next in the current bar; whether a BAR may
        come next instead."""

    def stops_at_bar(self, draft: _Draft) -> bool:
        """Whether a BAR drawn now ends the melody."""

    def pitch_rule(self, draft: _Draft) -> PitchRule:
        """For the note about to be placed: any pitch, a stable one, or the tonic."""

    def lengths(self, draft: _Draft, onset: int) -> tuple[int, int]:
        """Shortest and longest length in steps (inclusive) of a note about to start at
        onset (steps from the start)."""

    def complete(self, draft: _Draft) -> bool:
        """Whether the melody has all its notes."""


@dataclass
class _FreeRhythm:
    """compose(): any onset in the bar, every bar holds a note; stop after `bars` bars or
    after exactly `n_notes` notes."""

    bars: int | None
    n_notes: int | None
    position_bias: np.ndarray = field(init=False)
    eighth_bias: float = 0.0

    def __post_init__(self) -> None:
        self.position_bias = np.where(np.arange(STEPS_PER_BAR) % 2 == 1, -ODD_POSITION_BIAS,
                                      0.0)

    def positions(self, draft: _Draft) -> tuple[np.ndarray, bool]:
        bar_start = draft.bar * STEPS_PER_BAR
        first_pos = max(bar_start, _end_step(draft)) - bar_start
        allowed = np.arange(STEPS_PER_BAR) >= first_pos
        bar_has_note = bool(draft.notes) and draft.notes[-1].bar == draft.bar
        return allowed, bar_has_note or first_pos >= STEPS_PER_BAR

    def stops_at_bar(self, draft: _Draft) -> bool:
        return self.bars is not None and draft.bar + 1 >= self.bars

    def pitch_rule(self, draft: _Draft) -> PitchRule:
        final = self.n_notes is not None and len(draft.notes) + 1 == self.n_notes
        return "tonic" if final else "free"

    def lengths(self, draft: _Draft, onset: int) -> tuple[int, int]:
        longest = MAX_DUR_STEPS
        if self.bars is not None:
            longest = min(longest, self.bars * STEPS_PER_BAR - onset)
        return 1, longest

    def complete(self, draft: _Draft) -> bool:
        return self.n_notes is not None and len(draft.notes) == self.n_notes


class _PhraseRhythm:
    """compose_phrases(): the rhythm of sung phrases (see there), note by note."""

    def __init__(self, phrase_lengths: Sequence[int], sixteenths: bool) -> None:
        ends = np.cumsum(phrase_lengths) - 1
        self.phrase_ends = tuple(int(i) for i in ends)
        self.total = int(ends[-1]) + 1
        # For every note: its phrase's first and last note.
        self._first = np.repeat(ends - np.asarray(phrase_lengths) + 1, phrase_lengths)
        self._last = np.repeat(ends, phrase_lengths)
        self._max_odd = int(MAX_SIXTEENTH_SHARE * self.total) if sixteenths else 0
        self.position_bias = np.zeros(STEPS_PER_BAR)
        self.eighth_bias = SUNG_EIGHTH_BIAS

    def positions(self, draft: _Draft) -> tuple[np.ndarray, bool]:
        bar_start = draft.bar * STEPS_PER_BAR
        allowed = np.zeros(STEPS_PER_BAR, bool)
        later = False
        for onset in self._next_onsets(draft):
            if onset >= bar_start + STEPS_PER_BAR:
                later = True
            elif onset >= bar_start:
                allowed[onset - bar_start] = True
        return allowed, later

    def stops_at_bar(self, draft: _Draft) -> bool:
        return False

    def pitch_rule(self, draft: _Draft) -> PitchRule:
        index = len(draft.notes)
        if index == self.total - 1:
            return "tonic"
        return "stable" if index == self._last[index] else "free"

    def lengths(self, draft: _Draft, onset: int) -> tuple[int, int]:
        index = len(draft.notes)
        left = int(self._last[index]) - index  # notes of the phrase after this one
        if onset % 2:
            return 1, 1  # the 16th of a dotted 8th or of a pickup
        if left == 0:
            return MIN_PHRASE_END_STEPS, MAX_PHRASE_END_STEPS
        downbeat = self._pickup_downbeat(draft, index, onset)
        if downbeat is None:
            return MIN_INNER_NOTE_STEPS, MAX_INNER_NOTE_STEPS
        # A pickup leads to a note on the downbeat; the phrase's last note is not in it.
        shortest = MIN_INNER_NOTE_STEPS
        if left == 1:
            shortest = max(shortest, downbeat - MAX_INNER_REST_STEPS - onset)
        elif (index == self._first[index] and downbeat - onset == 2
              and self._sixteenth_left(draft)):
            shortest = 1  # two 16ths as a pickup
        return shortest, downbeat - onset

    def complete(self, draft: _Draft) -> bool:
        return len(draft.notes) == self.total

    def _next_onsets(self, draft: _Draft) -> list[int]:
        """Onsets (steps from the start) allowed for the next note."""
        index = len(draft.notes)
        if index == 0:
            return self._phrase_starts(0, self._last[0] + 1)
        prev = draft.notes[-1]
        end = prev.onset + prev.dur
        if index == self._first[index]:
            return self._phrase_starts(end + MIN_BREATH_STEPS,
                                       self._last[index] - index + 1)
        if prev.onset % 2 or prev.dur == 1:
            return [end]  # a 16th goes on to the beat, the first of two 16ths to the second
        left = int(self._last[index]) - index + 1  # notes of the phrase from the next on
        if prev.dur == 3 and prev.onset % STEPS_PER_BEAT == 0 and left >= 2 and (
                self._sixteenth_left(draft)):
            onsets = [end, end + 1]  # a dotted 8th and a 16th, or a 16th's rest
        else:
            onsets = list(range(end + end % 2, end + MAX_INNER_REST_STEPS + 1, 2))
        downbeat = self._pickup_downbeat(draft, index - 1, prev.onset)
        if downbeat is not None:
            onsets = [o for o in onsets if o == downbeat or (o < downbeat and left >= 2)]
        return onsets

    def _phrase_starts(self, earliest: int, length: int) -> list[int]:
        """The first place a phrase of `length` notes may start at or after `earliest`,
        and every other within MAX_PHRASE_WAIT_STEPS of it."""
        starts = PHRASE_STARTS if length > 1 else (0,)
        onsets = [o for o in range(earliest, earliest + 2 * STEPS_PER_BAR)
                  if o % STEPS_PER_BAR in starts]
        return [o for o in onsets if o < onsets[0] + MAX_PHRASE_WAIT_STEPS]

    def _pickup_downbeat(self, draft: _Draft, index: int, onset: int) -> int | None:
        """The downbeat a pickup leads to, while note `index` (at onset) is part of it."""
        first = int(self._first[index])
        start = onset if first == index else draft.notes[first].onset
        if start % STEPS_PER_BAR == 0:
            return None
        downbeat = (start // STEPS_PER_BAR + 1) * STEPS_PER_BAR
        return downbeat if onset < downbeat else None

    def _sixteenth_left(self, draft: _Draft) -> bool:
        return sum(n.onset % 2 for n in draft.notes) < self._max_odd


def _end_step(draft: _Draft) -> int:
    return draft.notes[-1].onset + draft.notes[-1].dur if draft.notes else 0


def _sample(model: MelodyLstm, rng: np.random.Generator, key: Key, rhythm: _Rhythm,
            pitch_range: tuple[int, int], temperature: float, top_p: float) -> _Draft:
    state = model.initial_state()
    draft = _Draft(notes=[], chords=[], pitch_probs=[])
    vocab = model.vocab_size
    pitches = np.arange(PITCH_MIN, PITCH_MAX + 1)
    in_range = (pitches >= pitch_range[0]) & (pitches <= pitch_range[1])
    biased = bool(rhythm.position_bias.any())

    logits = _feed(model, state, BOS_MINOR if key.mode == "minor" else BOS_MAJOR)
    new_bar = True  # every piece starts with a bar
    while True:
        if new_bar:
            logits = _feed(model, state, BAR)
            draft.bar += 1
            for _half in range(2):
                chord_token = _draw(logits, _span(vocab, CHORD_NONE, CHORD_END), rng,
                                    temperature, top_p)
                draft.chords.append(token_chord(chord_token))
                logits = _feed(model, state, chord_token)
        # Between notes: the next onset in this bar, or the next bar (or the end).
        positions, bar_next = rhythm.positions(draft)
        allowed = np.zeros(vocab, bool)
        allowed[POS_BASE: POS_BASE + STEPS_PER_BAR] = positions
        allowed[BAR] = bar_next
        if biased:
            logits = logits.copy()
            logits[POS_BASE: POS_BASE + STEPS_PER_BAR] += rhythm.position_bias
        token = _draw(logits, allowed, rng, temperature, top_p)
        new_bar = token == BAR
        if new_bar:
            if rhythm.stops_at_bar(draft):
                break
            continue
        pos = token - POS_BASE
        logits = _feed(model, state, token)

        token, probs = _choose_pitch(logits, rhythm.pitch_rule(draft), draft.notes, in_range,
                                     key, rng, temperature, top_p)
        pitch = token - PITCH_BASE + PITCH_MIN
        logits = _feed(model, state, token)

        shortest, longest = rhythm.lengths(draft, draft.bar * STEPS_PER_BAR + pos)
        if shortest <= EIGHTH_STEPS < longest and rhythm.eighth_bias:
            logits = logits.copy()
            logits[DUR_BASE + EIGHTH_STEPS - 1] += rhythm.eighth_bias
        token = _draw(logits, _span(vocab, DUR_BASE + shortest - 1, DUR_BASE + longest), rng,
                      temperature, top_p)
        draft.notes.append(GridNote(draft.bar, pos, pitch, token - DUR_BASE + 1))
        draft.pitch_probs.append(probs[PITCH_BASE: PITCH_BASE + len(pitches)])
        if rhythm.complete(draft):
            break
        logits = _feed(model, state, token)
    return draft


def _choose_pitch(logits: np.ndarray, rule: PitchRule, notes: list[GridNote],
                  in_range: np.ndarray, key: Key, rng: np.random.Generator,
                  temperature: float, top_p: float) -> tuple[int, np.ndarray]:
    """A pitch token under the range and repeat rules and `rule`, and the distribution of
    the free choice (over the vocabulary)."""
    pitches = np.arange(PITCH_MIN, PITCH_MAX + 1)
    pitch_allowed = np.zeros(len(logits), bool)
    pitch_allowed[PITCH_BASE: PITCH_BASE + len(pitches)] = in_range
    last_pitch, run = _current_run(notes)
    if run >= MAX_REPEATS:
        pitch_allowed[PITCH_BASE + last_pitch - PITCH_MIN] = False
    elif run >= SOFT_REPEATS:
        logits = logits.copy()
        logits[PITCH_BASE + last_pitch - PITCH_MIN] -= REPEAT_PENALTY * (run - SOFT_REPEATS + 1)
    probs = _distribution(logits, pitch_allowed, temperature)
    normal_key = key.on_white_keys()
    if rule == "tonic":
        tonic_mask = pitch_allowed.copy()
        tonic_mask[PITCH_BASE: PITCH_BASE + len(pitches)] &= (
            (pitches - normal_key.tonic) % 12 == 0)
        if tonic_mask.any():
            return _draw(logits, tonic_mask, rng, temperature, top_p), probs
    elif rule == "stable":
        best = _likeliest_of(probs[PITCH_BASE: PITCH_BASE + len(pitches)],
                             normal_key.stable_pitch_classes())
        if best is not None:
            return PITCH_BASE + best - PITCH_MIN, probs
    return _nucleus(probs, rng, top_p), probs


def _likeliest_of(pitch_probs: np.ndarray, classes: frozenset[int]) -> int | None:
    """The pitch of one of these pitch classes that pitch_probs (PITCH_MIN..PITCH_MAX) rates
    highest, or None where it rates them all 0."""
    pitches = np.arange(PITCH_MIN, PITCH_MAX + 1)
    probs = np.where(np.isin(pitches % 12, list(classes)), pitch_probs, 0.0)
    return int(pitches[probs.argmax()]) if probs.max() > 0 else None


def _feed(model: MelodyLstm, state: LstmState, token: int) -> np.ndarray:
    logits: np.ndarray = model.step(np.array([token]), state)[0]
    return logits


def _span(vocab: int, start: int, stop: int) -> np.ndarray:
    mask = np.zeros(vocab, bool)
    mask[start:stop] = True
    return mask


def _distribution(logits: np.ndarray, allowed: np.ndarray, temperature: float) -> np.ndarray:
    scaled = np.where(allowed, logits.astype(np.float64) / temperature, -np.inf)
    scaled -= scaled.max()
    probs = np.exp(scaled)
    probs /= probs.sum()
    return probs


def _draw(logits: np.ndarray, allowed: np.ndarray, rng: np.random.Generator,
          temperature: float, top_p: float) -> int:
    """Nucleus sampling among the allowed tokens."""
    return _nucleus(_distribution(logits, allowed, temperature), rng, top_p)


def _nucleus(probs: np.ndarray, rng: np.random.Generator, top_p: float) -> int:
    """Draw from the smallest set of most likely tokens whose probability reaches top_p."""
    order = np.argsort(-probs, kind="stable")
    cumulative = np.cumsum(probs[order])
    keep = order[: int(np.searchsorted(cumulative, top_p)) + 1]
    kept = probs[keep] / probs[keep].sum()
    return int(keep[min(int(np.searchsorted(np.cumsum(kept), rng.random())), len(keep) - 1)])


def _current_run(notes: list[GridNote]) -> tuple[int, int]:
    if not notes:
        return -1, 0
    last = notes[-1].pitch
    run = 0
    for note in reversed(notes):
        if note.pitch != last:
            break
        run += 1
    return last, run


def _settle_phrase_ends(draft: _Draft, key: Key, exact_count: bool) -> None:
    """End the melody on the tonic, held to the end of its bar, and each 4-bar phrase on a
    degree of the tonic triad: for each such note, the stable pitch the model rated highest.

    With a length in bars, the melody lands on the last note of the final bar that starts on
    beat 1, 2 or 3, and what the model wrote after it is let go.
    """
    if not draft.notes:
        return
    if not exact_count:
        final_bar = draft.notes[-1].bar
        landings = [i for i, n in enumerate(draft.notes)
                    if n.bar == final_bar and n.pos in LANDING_POSITIONS]
        if landings:
            del draft.notes[landings[-1] + 1:]
            del draft.pitch_probs[landings[-1] + 1:]
    normal_key = key.on_white_keys()
    last = len(draft.notes) - 1
    targets: dict[int, frozenset[int]] = {last: frozenset({normal_key.tonic})}
    for end_bar in range(PHRASE_BARS - 1, draft.notes[-1].bar, PHRASE_BARS):
        in_phrase = [i for i, n in enumerate(draft.notes) if n.bar <= end_bar]
        if in_phrase and draft.notes[in_phrase[-1]].bar > end_bar - PHRASE_BARS:
            targets.setdefault(in_phrase[-1], normal_key.stable_pitch_classes())
    for index, classes in targets.items():
        note = draft.notes[index]
        best = _likeliest_of(draft.pitch_probs[index], classes)
        if note.pitch % 12 not in classes and best is not None:
            draft.notes[index] = GridNote(note.bar, note.pos, best, note.dur)
    final = draft.notes[last]
    bar_end = (final.bar + 1) * STEPS_PER_BAR
    held = max(final.dur, min(MAX_DUR_STEPS, bar_end - final.onset))
    _come_home(draft, key, final.onset + held, final.bar + 1)
    if exact_count:
        draft.bar = final.bar


def _come_home(draft: _Draft, key: Key, end_step: int, n_bars: int) -> None:
    """Hold the final note until end_step, over the tonic chord from its half bar to the end
    of bar n_bars - 1: the harmony comes home with the melody."""
    final = draft.notes[-1]
    draft.notes[-1] = GridNote(final.bar, final.pos, final.pitch, end_step - final.onset)
    draft.chords += [None] * (2 * n_bars - len(draft.chords))
    for half in range(final.onset // (STEPS_PER_BAR // 2), 2 * n_bars):
        draft.chords[half] = key.on_white_keys().tonic_chord


def _velocity(pos: int) -> int:
    """Accent by place in the bar: downbeat, half bar, beats, off-beats."""
    if pos == 0:
        return 100
    if pos == STEPS_PER_BAR // 2:
        return 92
    if pos % STEPS_PER_BEAT == 0:
        return 86
    return 80 if pos % 2 == 0 else 74


def realise(notes: list[GridNote], chords: list[Chord], n_bars: int, key: Key, shift: int,
            tempo_bpm: float, seed: int, phrase_ends: tuple[int, ...] = ()) -> Melody:
    """Grid notes and half-bar chords (key-normalised) -> a Melody in seconds, in `key`.

    Velocities follow the onset's place in the bar (100 on the downbeat down to 74 on 16ths);
    neighbouring half bars with one chord become one ChordSpan.

    Parameters
    ----------
    notes : list of GridNote
        Key-normalised notes (16th steps, MIDI note numbers).
    chords : list of Chord
        Two per bar, key-normalised; None halves have no span. Only the first 2 * n_bars count.
    n_bars : int >= 0
        Bars of 4/4.
    key : Key
        The melody's real key.
    shift : int
        Semitones added to every pitch and chord root.
    tempo_bpm : float > 0
        Quarter notes per minute: a 16th step lasts 15 / tempo_bpm s.
    seed : int
        Recorded in the result.
    phrase_ends : tuple of int
        Index of each phrase's last note (empty for a free melody).

    Returns
    -------
    melody : Melody
    """
    step_s = 60.0 / tempo_bpm / STEPS_PER_BEAT
    melody_notes = tuple(
        MelodyNote(
            pitch=n.pitch + shift,
            start_s=n.onset * step_s,
            end_s=(n.onset + n.dur) * step_s,
            velocity=_velocity(n.pos),
            start_step=n.onset,
            dur_steps=n.dur,
        )
        for n in notes
    )
    half_s = STEPS_PER_BAR // 2 * step_s
    spans: list[ChordSpan] = []
    for half, chord in enumerate(chords[: 2 * n_bars]):
        if chord is None:
            continue
        root = (chord[0] + shift) % 12
        if spans and spans[-1].end_s == half * half_s and (spans[-1].root, spans[-1].quality) == (
            root, chord[1]
        ):
            spans[-1] = ChordSpan(root, chord[1], spans[-1].start_s, (half + 1) * half_s)
        else:
            spans.append(ChordSpan(root, chord[1], half * half_s, (half + 1) * half_s))
    return Melody(notes=melody_notes, chords=tuple(spans), key=key, tempo_bpm=tempo_bpm,
                  n_bars=n_bars, seed=seed, phrase_ends=phrase_ends)
