"""Song form: an intro, the verse (the whole voice note), a chorus made of the person's own
words, and an ending.

The chorus is a hook: a phrase of HOOK_SYLLABLES that sings well (clearly voiced, with a
strong stress, ending at a natural pause), set to a short motif sung twice, first ending
open on the dominant and then closed on the tonic, so the second time answers the first.
How often the chorus comes, and whether the verse comes back between choruses, follows the
length of the voice note so that a song stays within its lengths (MAX_SONG_S at most).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from engine.errors import InvalidRequest
from engine.melody.compose import ChordSpan, Melody, MelodyNote
from engine.melody.tokens import STEPS_PER_BAR
from engine.theory import Key

if TYPE_CHECKING:  # the chat side reads FORMS and the limits here without the voice's tools
    from engine.notes import Syllable

FORMS = ("full", "short")
DEFAULT_FORM = "full"
HOOK_SYLLABLES = (3, 8)  # a hook is this many syllables, fewest and most
HOOK_BEST = 5  # the length a hook is best at
NATURAL_END_S = 0.2  # a pause after the hook's last syllable this long makes a natural end
SHORT_NOTE_S = 8.0  # a voice note shorter than this gets its verse again between choruses
VERSE_MAX_S = 16.0  # a longer verse is split, with a chorus between (it comes early)
FIRST_CHORUS_BY_S = 20.0  # the first chorus starts by then
TARGET_SONG_S = 60.0  # a short note's verse comes back while the song stays this short
LONGER_BY_S = 5.0  # middle choruses are left out of a song longer than the target by this
MAX_SONG_S = 90.0  # never longer: a Telegram voice reply stays under 1 MB
HARMONY_STEPS = 2  # the second voice sings this many scale steps above the lead: a third


def check_form(form: str) -> str:
    """The form's name, or InvalidRequest with the choices.

    Parameters
    ----------
    form : str
        "full" or "short" (FORMS).

    Returns
    -------
    form : str
        The same name.

    Raises
    ------
    InvalidRequest
        For any other name.
    """
    if form not in FORMS:
        raise InvalidRequest(f"unknown form {form!r}: choose {' or '.join(FORMS)}")
    return form


@dataclass(frozen=True)
class Hook:
    """The syllables the chorus sings: syllables[first : first + count] of the voice note."""

    first: int
    count: int

    @property
    def indices(self) -> range:
        return range(self.first, self.first + self.count)


def choose_hook(syllables: Sequence[Syllable], phrase_lengths: Sequence[int],
                samples: np.ndarray, sample_rate: int) -> Hook:
    """The stretch of a phrase that sings best as a hook (see scored_hook).

    When every phrase is shorter than a hook, the whole note as far as a hook goes (its first
    HOOK_SYLLABLES[1], 8, syllables at most).

    Parameters
    ----------
    syllables : sequence of Syllable, in time order
        The voice note's syllables (times in s).
    phrase_lengths : sequence of int >= 0
        Syllables per phrase, in order; they add up to len(syllables).
    samples : np.ndarray [shape=(n,)], float in -1..1
        The voice note, mono.
    sample_rate : int > 0
        Its rate (Hz).

    Returns
    -------
    hook : Hook
        Indices into `syllables`.
    """
    found = scored_hook(syllables, phrase_lengths, samples, sample_rate)
    if found is None:
        return Hook(0, min(len(syllables), HOOK_SYLLABLES[1]))
    return found[1]


def scored_hook(syllables: Sequence[Syllable], phrase_lengths: Sequence[int],
                samples: np.ndarray, sample_rate: int,
                count: int | None = None) -> tuple[float, Hook] | None:
    """The stretch of a phrase that sings best as a hook, and its score; None when no phrase
    holds one.

    Candidates are whole phrases of HOOK_SYLLABLES (3..8 syllables), and the last (or first)
    syllables of longer phrases. Each is scored on what makes words easy to sing and remember:
    how much of it is voiced (vowels to hold), how strong its loudest stress stands out from
    the voice note (dB above its median, counted up to 10 dB), a natural end (a pause of
    NATURAL_END_S, 0.2 s, after it), and a length near HOOK_BEST. Every part of the score is
    against the note itself, so the scores of different notes compare.

    Parameters
    ----------
    syllables : sequence of Syllable, in time order
        The voice note's syllables (times in s).
    phrase_lengths : sequence of int >= 0
        Syllables per phrase, in order; they add up to len(syllables).
    samples : np.ndarray [shape=(n,)], float in -1..1
        The voice note, mono.
    sample_rate : int > 0
        Its rate (Hz).
    count : int > 0 or None
        Only stretches of exactly this many syllables (a whole phrase of that length, or the
        last or first `count` syllables of a longer one).

    Returns
    -------
    scored : (float, Hook) or None
        The score (higher is better; about 0..4) and the hook; the earliest wins a tie.
    """
    stress = _stress_db(syllables, samples, sample_rate)
    best: tuple[float, Hook] | None = None
    start = 0
    for length in phrase_lengths:
        for hook in _candidates(start, length, count):
            score = _score(hook, syllables, stress)
            if best is None or score > best[0] + 1e-12:
                best = (score, hook)
        start += length
    return best


def hook_from_lines(syllables: Sequence[Syllable], lines: Sequence[str],
                    line_spans_s: Sequence[tuple[float, float]]) -> Hook | None:
    """For lyrics: the line that is repeated (its first occurrence) or else the last line, as
    the syllables spoken inside its span.

    A line longer than a hook gives its last syllables (its natural end), HOOK_SYLLABLES[1]
    (8) at most. Lines are compared ignoring case and spacing.

    Parameters
    ----------
    syllables : sequence of Syllable, in time order
        The spoken lyrics' syllables (times in s).
    lines : sequence of str
        The lyrics' lines.
    line_spans_s : sequence of (float, float)
        Each line's (start, end) in the speech (s); a syllable belongs to the line its vowel
        onset falls in.

    Returns
    -------
    hook : Hook or None
        None when there are no lines or the line has fewer than HOOK_SYLLABLES[0] (3)
        syllables.
    """
    if not lines:
        return None
    seen: dict[str, int] = {}
    chosen = len(lines) - 1
    for index, line in enumerate(lines):
        key = " ".join(line.lower().split())
        if key in seen:
            chosen = seen[key]
            break
        seen[key] = index
    start_s, end_s = line_spans_s[chosen]
    inside = [i for i, s in enumerate(syllables) if start_s <= s.onset_s < end_s]
    if len(inside) < HOOK_SYLLABLES[0]:
        return None
    count = min(len(inside), HOOK_SYLLABLES[1])
    return Hook(inside[-1] - count + 1, count)


def _candidates(start: int, length: int, count: int | None = None) -> list[Hook]:
    if count is not None:
        if length < count:
            return []
        return [Hook(start + length - count, count)] + (
            [Hook(start, count)] if length > count else [])
    low, high = HOOK_SYLLABLES
    if length < low:
        return []
    if length <= high:
        return [Hook(start, length)]
    return [Hook(start + length - count, count) for count in range(low + 1, high + 1)] + [
        Hook(start, count) for count in range(low + 1, high + 1)]


def _stress_db(syllables: Sequence[Syllable], samples: np.ndarray,
               sample_rate: int) -> np.ndarray:
    """Each syllable's loudness at its vowel (dB), against the voice note's median."""
    from engine.notes import frame_levels_db

    times = np.array([(s.onset_s + s.voiced_end_s) / 2 for s in syllables])
    levels = frame_levels_db(samples, sample_rate, times)
    stress: np.ndarray = levels - float(np.median(levels))
    return stress


def _score(hook: Hook, syllables: Sequence[Syllable], stress: np.ndarray) -> float:
    chosen = [syllables[i] for i in hook.indices]
    span_s = max(chosen[-1].voiced_end_s - chosen[0].start_s, 1e-3)
    voiced = sum(s.voiced_s for s in chosen) / span_s
    peak = float(np.max(stress[hook.first: hook.first + hook.count]))
    after = hook.first + hook.count
    pause_s = (syllables[after].onset_s - chosen[-1].voiced_end_s if after < len(syllables)
               else np.inf)
    natural_end = 1.0 if pause_s >= NATURAL_END_S else 0.0
    fit = 1.0 - abs(hook.count - HOOK_BEST) / HOOK_BEST
    return float(voiced + 0.1 * np.clip(peak, 0.0, 10.0) + natural_end + fit)


# --- The chorus's music --------------------------------------------------------------------


def answer_phrase(motif: Melody, pitch_range: tuple[int, int]) -> tuple[Melody, Melody]:
    """The motif twice: first open, then closed, so the second answers the first.

    The open one's last note moves to the dominant, over the dominant chord (major in a major
    key, minor in a minor one); the closed one ends on the tonic over the tonic chord, with the
    dominant on the chord just before. Each last note moves to the nearest pitch of its class
    within `pitch_range` (it stays where it is when there is none).

    Parameters
    ----------
    motif : Melody
        The chorus's motif.
    pitch_range : (int, int)
        Lowest and highest MIDI note number (inclusive) the last notes may take.

    Returns
    -------
    opened, closed : Melody
    """
    key = motif.key
    last = motif.notes[-1]
    open_pitch = _nearest_in_range((key.tonic + 7) % 12, last.pitch, pitch_range)
    dominant = ((key.tonic + 7) % 12, "maj" if key.mode == "major" else "min")
    opened = _with_last_note(motif, open_pitch, dominant)
    closed_pitch = _nearest_in_range(key.tonic, last.pitch, pitch_range)
    closed = _with_last_note(motif, closed_pitch, key.tonic_chord)
    chords = list(closed.chords)
    before = [i for i, c in enumerate(chords) if c.end_s <= last.start_s + 1e-6]
    if before:  # a cadence: the dominant leads home
        index = before[-1]
        chords[index] = replace(chords[index], root=dominant[0], quality=dominant[1])
    return opened, replace(closed, chords=tuple(chords))


def _with_last_note(motif: Melody, pitch: int, chord: tuple[int, str]) -> Melody:
    last = motif.notes[-1]
    notes = (*motif.notes[:-1], replace(last, pitch=pitch))
    chords = tuple(replace(c, root=chord[0], quality=chord[1]) if c.end_s > last.start_s + 1e-6
                   else c for c in motif.chords)
    return replace(motif, notes=notes, chords=chords)


def _nearest_in_range(pitch_class: int, near: int, pitch_range: tuple[int, int]) -> int:
    low, high = pitch_range
    options = [p for p in range(low, high + 1) if p % 12 == pitch_class]
    if not options:
        return near
    return min(options, key=lambda p: (abs(p - near), p))


def harmony_pitch(pitch: int, key: Key, steps: int = HARMONY_STEPS) -> int:
    """The pitch `steps` scale steps above `pitch` in `key` (a diatonic third for 2).

    Counted from the nearest scale tone at or below it, so it is always in the key.

    Parameters
    ----------
    pitch : int
        MIDI note number of the lead.
    key : Key
        The song's key.
    steps : int >= 0
        Scale steps up (HARMONY_STEPS, 2: a third).

    Returns
    -------
    pitch : int
        MIDI note number.
    """
    tones = sorted(key.scale_pitch_classes())
    base = pitch
    while base % 12 not in tones:
        base -= 1
    degree = tones.index(base % 12) + steps
    octave, index = divmod(degree, len(tones))
    return base - base % 12 + 12 * octave + tones[index]


# --- Laying the song out -------------------------------------------------------------------


@dataclass(frozen=True)
class Section:
    """A part of the song: name ('intro', 'verse', 'chorus', 'ending') and where it starts on
    the song's time line (s)."""

    name: str
    start_s: float


@dataclass(frozen=True)
class Layout:
    """The song's parts in order (('verse', i) for verse i, ('chorus', 0)), their sections
    on the time line, and the whole song's melody (what the lead sings and the chords the
    band plays) without the intro."""

    parts: tuple[tuple[str, int], ...]
    part_starts_s: tuple[float, ...]  # where each part starts on the time line
    sections: tuple[Section, ...]  # as a listener hears them: verses back to back are one
    melody: Melody
    chorus_bars: frozenset[int]  # bars of `melody` that are chorus (the band lifts there)


def split_verses(whole: Melody, phrase_lengths: Sequence[int], form: str,
                 budget_s: float) -> list[list[int]]:
    """The verse's phrases in verses.

    All of them in one for the short form; for the full form, in verses of at most
    VERSE_MAX_S (16 s) each so that a chorus comes early and often (a verse holds at least one
    phrase).

    Parameters
    ----------
    whole : Melody
        The melody of every phrase in one verse (with phrase_ends), which tells how long each
        phrase sings.
    phrase_lengths : sequence of int
        Notes per phrase, one per phrase of `whole`.
    form : {"full", "short"}
    budget_s : float
        Phrases that end past this time of `whole` (s) are left out (a very long voice note);
        the first phrase is always kept.

    Returns
    -------
    verses : list of list of int
        Each verse's phrase lengths, in order.
    """
    bar_s = STEPS_PER_BAR * whole.step_s
    ends = [whole.notes[i].end_s for i in whole.phrase_ends]
    kept = [n for n, end in zip(phrase_lengths, ends, strict=True) if end <= budget_s]
    kept = kept or list(phrase_lengths[:1])
    if form == "short":
        return [kept]
    groups: list[list[int]] = [[]]
    verse_start = 0.0
    for length, end in zip(kept, ends, strict=False):
        if groups[-1] and end - verse_start > VERSE_MAX_S:
            groups.append([])
            verse_start = ends[sum(len(g) for g in groups[:-1]) - 1] + bar_s / 2
        groups[-1].append(length)
    return groups


def lay_out(verses: Sequence[Melody], chorus: Sequence[Melody], form: str, speech_s: float,
            intro_bars: int) -> Layout:
    """The order of the song's parts, and its melody for the band.

    'short': the verse alone. 'full': a chorus after the first verse and after the last (one
    only when two would pass MAX_SONG_S, 90 s), and after those between while the song stays
    within TARGET_SONG_S + LONGER_BY_S (65 s); a single verse of a voice note under
    SHORT_NOTE_S (8 s) comes back for a second chorus while the song stays within
    TARGET_SONG_S (60 s).

    Parameters
    ----------
    verses : sequence of Melody, non-empty
        The verses, at one tempo (the first's bar length is used).
    chorus : sequence of Melody
        The chorus's pieces, sung one after another.
    form : {"full", "short"}
    speech_s : float >= 0
        Length of the voice note (s).
    intro_bars : int >= 0
        Bars of band before the first verse; one bar of ending is counted after the last part.

    Returns
    -------
    layout : Layout
    """
    bar_s = STEPS_PER_BAR * verses[0].step_s
    chorus_n = sum(c.n_bars for c in chorus)
    parts: list[tuple[str, int]] = [("verse", i) for i in range(len(verses))]
    if form == "full":
        fixed = intro_bars + 1  # the intro and the ending
        verse_bars = sum(v.n_bars for v in verses)
        # A chorus after the first verse (it comes early) and after the last, then between
        # the others while the song stays about TARGET_SONG_S long.
        order = list(dict.fromkeys([0, len(verses) - 1, *range(1, len(verses) - 1)]))
        choruses = len(verses)
        while choruses > 1 and (fixed + verse_bars + choruses * chorus_n) * bar_s > (
                TARGET_SONG_S + LONGER_BY_S if choruses > 2 else MAX_SONG_S):
            choruses -= 1
        with_chorus = set(order[:choruses])
        parts = [p for i in range(len(verses))
                 for p in ([("verse", i), ("chorus", 0)] if i in with_chorus
                           else [("verse", i)])]
        if (len(verses) == 1 and speech_s < SHORT_NOTE_S and
                (fixed + 2 * (verse_bars + chorus_n)) * bar_s <= TARGET_SONG_S):
            parts += [("verse", 0), ("chorus", 0)]
    return place_parts(parts, verses, chorus, intro_bars)


def place_parts(parts: Sequence[tuple[str, int]], verses: Sequence[Melody],
                chorus: Sequence[Melody], intro_bars: int) -> Layout:
    """The parts one after another after `intro_bars` of band, each from the bar after the last.

    Parameters
    ----------
    parts : sequence of (str, int)
        ('verse', i) for verses[i], ('chorus', 0) for the chorus pieces.
    verses : sequence of Melody, non-empty
        At one tempo (the first's bar length is used).
    chorus : sequence of Melody
        The chorus's pieces.
    intro_bars : int >= 0
        Bars of band before the first part.

    Returns
    -------
    layout : Layout
        Where each part starts (s), the sections (verses back to back are one; an intro when
        intro_bars > 0; the ending after the last part), the song's melody without the intro,
        and the bars of it where the band lifts (the choruses').
    """
    bar_s = STEPS_PER_BAR * verses[0].step_s
    chorus_n = sum(c.n_bars for c in chorus)
    pieces: list[Melody] = []
    for kind, index in parts:
        pieces += [verses[index]] if kind == "verse" else list(chorus)
    chorus_bars: set[int] = set()
    sections = [Section("intro", 0.0)] if intro_bars else []
    starts = []
    bar = 0
    for kind, index in parts:
        bars = verses[index].n_bars if kind == "verse" else chorus_n
        starts.append((intro_bars + bar) * bar_s)
        if not (sections and sections[-1].name == kind == "verse"):  # one verse goes on
            sections.append(Section(kind, starts[-1]))
        if kind == "chorus":
            chorus_bars.update(range(bar, bar + bars))
        bar += bars
    sections.append(Section("ending", (intro_bars + bar) * bar_s))
    return Layout(tuple(parts), tuple(starts), tuple(sections), concatenate(pieces),
                  frozenset(chorus_bars))


def concatenate(pieces: Sequence[Melody]) -> Melody:
    """Melodies one after another, each starting on the bar after the last one's end.

    Parameters
    ----------
    pieces : sequence of Melody, non-empty
        At one tempo: every offset is taken with the first one's bar length.

    Returns
    -------
    melody : Melody
        One melody (notes, chords, phrase ends, start steps all moved) in the first one's key
        and tempo, as many bars as the pieces together.
    """
    first = pieces[0]
    bar_s = STEPS_PER_BAR * first.step_s
    notes: list[MelodyNote] = []
    chords: list[ChordSpan] = []
    phrase_ends: list[int] = []
    bars = 0
    for piece in pieces:
        offset_s, offset_steps = bars * bar_s, bars * STEPS_PER_BAR
        phrase_ends += [len(notes) + i for i in piece.phrase_ends]
        notes += [replace(n, start_s=n.start_s + offset_s, end_s=n.end_s + offset_s,
                          start_step=n.start_step + offset_steps) for n in piece.notes]
        chords += [replace(c, start_s=c.start_s + offset_s, end_s=c.end_s + offset_s)
                   for c in piece.chords]
        bars += piece.n_bars
    return replace(first, notes=tuple(notes), chords=tuple(chords), n_bars=bars,
                   phrase_ends=tuple(phrase_ends))
