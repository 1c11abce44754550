"""Sample a melody from the model under the grammar of the tokens and a few musical rules.

Rules, each kept as light as it can be: notes stay in the requested range; one pitch is never
repeated more than MAX_REPEATS times running (and gently discouraged past SOFT_REPEATS); a
melody ends on the tonic and each four-bar phrase comes to rest on a degree of the tonic
triad, picking the stable pitch the model itself likes best there.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

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

MIN_TEMPO_BPM, MAX_TEMPO_BPM = 40.0, 240.0
MAX_BARS = 64
MAX_NOTES = 512


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
    """Raise InvalidRequest, with one sentence, for options the composer cannot honour."""
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
    """A new melody.

    seed: same seed and options, same melody. key: None picks one from the seed.
    bars: length in 4/4 bars, or n_notes: exactly that many notes (then bars is ignored).
    tempo_bpm: quarter notes per minute. pitch_range: lowest and highest MIDI pitch (inclusive).
    temperature, top_p: how adventurous the sampling is (nucleus sampling).
    """
    validate(bars, n_notes, tempo_bpm, pitch_range, temperature, top_p)
    model = model or load_model()
    rng = np.random.default_rng(seed)
    if key is None:
        key = Key(int(rng.integers(12)), "major" if rng.random() < MAJOR_SHARE else "minor")
    shift = _output_shift(key, pitch_range)
    low, high = pitch_range[0] - shift, pitch_range[1] - shift
    target_bars = None if n_notes is not None else bars
    draft = _sample(model, rng, key, target_bars, n_notes, (low, high), temperature, top_p)
    _settle_phrase_ends(draft, key, n_notes is not None)
    return realise(draft.notes, draft.chords, draft.bar + 1, key, shift, tempo_bpm, seed)


def _output_shift(key: Key, pitch_range: tuple[int, int]) -> int:
    """Semitones from the model's key-normalised pitches to the output: key plus octaves."""
    key_shift = -normalising_shift(key)
    centre = (pitch_range[0] + pitch_range[1]) / 2
    octaves = round((centre - key_shift - MODEL_CENTRE_PITCH) / 12)
    return key_shift + 12 * octaves


def _sample(model: MelodyLstm, rng: np.random.Generator, key: Key, bars: int | None,
            n_notes: int | None, pitch_range: tuple[int, int], temperature: float,
            top_p: float) -> _Draft:
    state = model.initial_state()
    draft = _Draft(notes=[], chords=[], pitch_probs=[])
    tonic_pc = key.on_white_keys().tonic
    vocab = model.vocab_size
    pitches = np.arange(PITCH_MIN, PITCH_MAX + 1)
    in_range = (pitches >= pitch_range[0]) & (pitches <= pitch_range[1])

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
        bar_start = draft.bar * STEPS_PER_BAR
        earliest = bar_start
        if draft.notes:
            earliest = max(earliest, draft.notes[-1].onset + draft.notes[-1].dur)
        first_pos = earliest - bar_start
        bar_has_note = bool(draft.notes) and draft.notes[-1].bar == draft.bar
        allowed = np.zeros(vocab, bool)
        if first_pos < STEPS_PER_BAR:
            allowed[POS_BASE + first_pos: POS_BASE + STEPS_PER_BAR] = True
        if bar_has_note or first_pos >= STEPS_PER_BAR:
            allowed[BAR] = True
        token = _draw(logits, allowed, rng, temperature, top_p)
        new_bar = token == BAR
        if new_bar:
            if bars is not None and draft.bar + 1 >= bars:
                break
            continue
        pos = token - POS_BASE
        logits = _feed(model, state, token)

        pitch_allowed = np.zeros(vocab, bool)
        pitch_allowed[PITCH_BASE: PITCH_BASE + len(pitches)] = in_range
        last_pitch, run = _current_run(draft.notes)
        if run >= MAX_REPEATS:
            pitch_allowed[PITCH_BASE + last_pitch - PITCH_MIN] = False
        elif run >= SOFT_REPEATS:
            logits = logits.copy()
            logits[PITCH_BASE + last_pitch - PITCH_MIN] -= REPEAT_PENALTY * (run - SOFT_REPEATS + 1)
        probs = _distribution(logits, pitch_allowed, temperature)
        final = n_notes is not None and len(draft.notes) + 1 == n_notes
        if final and (tonic_mask := _tonic_only(pitch_allowed, pitches, tonic_pc)).any():
            token = _draw(logits, tonic_mask, rng, temperature, top_p)  # the last note
        else:
            token = _nucleus(probs, rng, top_p)
        pitch = token - PITCH_BASE + PITCH_MIN
        logits = _feed(model, state, token)

        onset = bar_start + pos
        max_dur = MAX_DUR_STEPS
        if bars is not None:
            max_dur = min(max_dur, bars * STEPS_PER_BAR - onset)
        token = _draw(logits, _span(vocab, DUR_BASE, DUR_BASE + max_dur), rng, temperature,
                      top_p)
        draft.notes.append(GridNote(draft.bar, pos, pitch, token - DUR_BASE + 1))
        draft.pitch_probs.append(probs[PITCH_BASE: PITCH_BASE + len(pitches)])
        if final:
            break
        logits = _feed(model, state, token)
    return draft


def _tonic_only(allowed: np.ndarray, pitches: np.ndarray, tonic_pc: int) -> np.ndarray:
    mask = allowed.copy()
    mask[PITCH_BASE: PITCH_BASE + len(pitches)] &= (pitches - tonic_pc) % 12 == 0
    return mask


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
    normal_tonic = normal_key.tonic
    pitches = np.arange(PITCH_MIN, PITCH_MAX + 1)
    last = len(draft.notes) - 1
    targets: dict[int, frozenset[int]] = {last: frozenset({normal_tonic})}
    for end_bar in range(PHRASE_BARS - 1, draft.notes[-1].bar, PHRASE_BARS):
        in_phrase = [i for i, n in enumerate(draft.notes) if n.bar <= end_bar]
        if in_phrase and draft.notes[in_phrase[-1]].bar > end_bar - PHRASE_BARS:
            targets.setdefault(in_phrase[-1], normal_key.stable_pitch_classes())
    for index, classes in targets.items():
        note = draft.notes[index]
        if note.pitch % 12 in classes:
            continue
        probs = np.where(np.isin(pitches % 12, list(classes)), draft.pitch_probs[index], 0.0)
        if probs.max() > 0:
            draft.notes[index] = GridNote(note.bar, note.pos, int(pitches[probs.argmax()]),
                                          note.dur)
    final = draft.notes[last]
    bar_end = (final.bar + 1) * STEPS_PER_BAR
    held = max(final.dur, min(MAX_DUR_STEPS, bar_end - final.onset))
    draft.notes[last] = GridNote(final.bar, final.pos, final.pitch, held)
    # The harmony comes home with the melody: the tonic chord under the final note.
    tonic_chord = normal_key.tonic_chord
    first_half = final.onset // (STEPS_PER_BAR // 2)
    for half in range(first_half, min(len(draft.chords), 2 * (final.bar + 1))):
        draft.chords[half] = tonic_chord
    if exact_count:
        draft.bar = final.bar


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
            tempo_bpm: float, seed: int) -> Melody:
    """Grid notes and half-bar chords (key-normalised) -> a Melody in seconds, in `key`,
    with pitches moved by `shift` semitones."""
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
                  n_bars=n_bars, seed=seed)
