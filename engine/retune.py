"""Put a voice onto a melody, in pitch and in time.

Each syllable's vowel onset lands on its note's onset; its voiced nucleus is stretched or
squeezed to fill the note, while the consonants and pauses around it keep their own length
where the rhythm leaves room; its pitch is moved onto the note. Praat's PSOLA overlap-add
resynthesis does the work in one pass and keeps the voice's own timbre.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import parselmouth
from parselmouth.praat import call, run
from scipy.signal import bilinear, butter, lfilter

from engine.notes import Syllable
from engine.pitch import HOP_S, midi_to_hz

Tuning = Literal["natural", "robot"]

LEAD_IN_S = 0.3  # sound kept before the first vowel onset (its consonant, a breath)
MAX_STRETCH = 40.0  # a vowel is never made longer than this (WORLD holds it: voice.py)
REST_SHARE = 0.45  # consonants and pauses take at most this share of a note's span
GLIDE_KEEP_S = 0.04  # at each end of a lengthened vowel, this much keeps its spoken speed
FINAL_REST_S = 0.2  # the last note is held to its end: only a final consonant after it
CONTOUR_STEP_S = 0.005
GLIDE_S = 0.03  # a held note gives way this long before the next one starts
# A singer's pitch (Saitou et al. 2007, with depths and rates of pop singing):
OVERSHOOT_HZ, OVERSHOOT_DAMPING = 5.5, 0.6  # about 9 % overshoot, settled in ~0.2 s
PREPARATION_HZ, PREPARATION_DAMPING = 9.0, 0.7
PREPARATION_SHARE = 0.25  # how much of a note change is anticipated
TRANSITION_LEAD_S = 0.04  # after a rest, a note is approached up to this far ahead
VIBRATO_MIN_NOTE_S = 0.25
VIBRATO_AFTER_S = 0.15
VIBRATO_FULL_S = 0.45
VIBRATO_DEEPEST_NOTE_S = 0.9  # notes this long or longer get the full depth
VIBRATO_HZ = 5.5
VIBRATO_RATE_SPREAD = 0.08
VIBRATO_CENTS = 34.0
DRIFT_HZ, DRIFT_CENTS = 1.0, 8.0
FLUTTER_HZ, FLUTTER_CENTS = 8.0, 3.0
EPSILON_S = 0.001
PRAAT_SEED = 909
# Praat's overlap-add writes into a buffer three times as long as its source: a part sung
# more than three times slower than it was spoken would lose its end. The source is padded
# with silence (at its own speed) until the buffer holds the whole part.
PRAAT_MAX_STRETCH = 3.0
PAD_MARGIN_S = 0.05


@dataclass(frozen=True)
class SungNote:
    """A note as the voice sings it, in output time: exactly what the voice was put on."""

    pitch: int
    start_s: float
    end_s: float


@dataclass(frozen=True)
class TimeMap:
    """A monotonic piecewise-linear map from input time to output time."""

    input_s: np.ndarray
    output_s: np.ndarray

    def to_output(self, t: np.ndarray | float) -> np.ndarray:
        return np.asarray(np.interp(t, self.input_s, self.output_s))

    def to_input(self, t: np.ndarray | float) -> np.ndarray:
        return np.asarray(np.interp(t, self.output_s, self.input_s))


@dataclass(frozen=True)
class Alignment:
    time_map: TimeMap
    sung: tuple[SungNote, ...]


@dataclass(frozen=True)
class RetunedVoice:
    samples: np.ndarray
    sample_rate: int
    start_s: float  # where the samples begin on the song's time line


def align(syllables: Sequence[Syllable], pitches: Sequence[int], onsets_s: Sequence[float],
          last_end_s: float, voiced_s: np.ndarray | None = None) -> Alignment:
    """Map each syllable onto its note: vowel onset -> note onset, nucleus -> the note.

    Consonants and pauses keep their spoken length where the rhythm leaves room (at most
    REST_SHARE of a note's span, FINAL_REST_S after the last); a vowel is stretched at most
    MAX_STRETCH times, its first and last GLIDE_KEEP_S (40 ms) at their spoken speed; up to
    LEAD_IN_S (0.3 s) before the first onset is kept.

    Parameters
    ----------
    syllables : sequence of Syllable, non-empty, in time order
        The syllables to sing (times in s on the input).
    pitches : sequence of int
        One MIDI note number per syllable.
    onsets_s : sequence of float
        The notes' onsets on the output time line (s), one per syllable, increasing.
    last_end_s : float
        Where the last note ends on the output time line (s).
    voiced_s : np.ndarray [shape=(k,)], float or None
        The input's voiced frame times (s), when known: a voice that goes on sounding after its
        nucleus (a voiced consonant, a held vowel) keeps its note's pitch, so the note lasts
        until that voicing ends (short of the next note's glide, GLIDE_S before it).

    Returns
    -------
    alignment : Alignment
        The input -> output time map (s -> s) and the notes as sung (s, MIDI note numbers).

    Raises
    ------
    AssertionError
        When there are no syllables, or syllables, pitches and onsets_s differ in length.
    """
    assert len(syllables) == len(onsets_s) == len(pitches) and syllables
    first = syllables[0]
    lead = min(LEAD_IN_S, first.onset_s, onsets_s[0])
    points_in = [first.onset_s - lead]
    points_out = [onsets_s[0] - lead]
    sung = []
    for i, syllable in enumerate(syllables):
        last = i + 1 == len(syllables)
        next_in = _next_onset_in(syllables, i)
        next_out = last_end_s if last else onsets_s[i + 1]
        span_out = max(next_out - onsets_s[i], 2 * EPSILON_S)
        voiced_end = min(syllable.voiced_end_s, next_in)
        voiced_in = max(voiced_end - syllable.onset_s, EPSILON_S)
        rest_in = max(next_in - voiced_end, 0.0)
        rest_out = min(rest_in, REST_SHARE * span_out, FINAL_REST_S if last else np.inf)
        voiced_out = span_out - rest_out
        if voiced_out > MAX_STRETCH * voiced_in:
            voiced_out = MAX_STRETCH * voiced_in
            rest_out = span_out - voiced_out
        points_in.append(syllable.onset_s)
        points_out.append(onsets_s[i])
        if voiced_out > voiced_in:
            # A singer lengthens the vowel itself: the glides into it and out of it (into a
            # nasal, a liquid, the next consonant) keep their spoken speed.
            glide = min(GLIDE_KEEP_S, voiced_in / 4)
            points_in += [syllable.onset_s + glide, syllable.onset_s + voiced_in - glide]
            points_out += [onsets_s[i] + glide, onsets_s[i] + voiced_out - glide]
        points_in.append(syllable.onset_s + voiced_in)
        points_out.append(onsets_s[i] + voiced_out)
        if rest_in > EPSILON_S:
            points_in.append(next_in)
            points_out.append(onsets_s[i] + span_out)
        sung.append(SungNote(int(pitches[i]), float(onsets_s[i]),
                             float(onsets_s[i] + voiced_out)))
    input_s, output_s = _strictly_increasing(np.array(points_in), np.array(points_out))
    time_map = TimeMap(input_s, output_s)
    if voiced_s is not None and voiced_s.size:
        sung = _held_to_voicing(sung, syllables, time_map, voiced_s)
    return Alignment(time_map, tuple(sung))


def _held_to_voicing(sung: list[SungNote], syllables: Sequence[Syllable], time_map: TimeMap,
                     voiced_s: np.ndarray) -> list[SungNote]:
    held = []
    for i, (note, syllable) in enumerate(zip(sung, syllables, strict=True)):
        next_in = _next_onset_in(syllables, i)
        after = voiced_s[(voiced_s >= syllable.voiced_end_s) & (voiced_s < next_in)]
        end = note.end_s
        if after.size:
            end = max(end, float(time_map.to_output(after.max() + HOP_S)))
        if i + 1 < len(sung):
            end = min(end, max(note.end_s, sung[i + 1].start_s - GLIDE_S))
        held.append(SungNote(note.pitch, note.start_s, end))
    return held


def _next_onset_in(syllables: Sequence[Syllable], i: int) -> float:
    """Where syllable i's span ends in the input: the next vowel onset, or its own end."""
    return syllables[i + 1].onset_s if i + 1 < len(syllables) else syllables[i].end_s


def _strictly_increasing(xs: np.ndarray, ys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    keep = np.concatenate([[True], np.diff(xs) > EPSILON_S / 2])
    return xs[keep], np.maximum.accumulate(ys[keep])


def sung_contour(sung: Sequence[SungNote], tuning: Tuning, seed: int = 0,
                 step_s: float = CONTOUR_STEP_S) -> tuple[np.ndarray, np.ndarray]:
    """How a singer's pitch moves through the notes: (times in output seconds, MIDI pitch).

    After Saitou et al. (2007): the notes as steps, passed through a damped second-order
    system so the voice overshoots a new note a little and settles (and, run backwards,
    prepares for it with a small dip the other way); vibrato from VIBRATO_AFTER_S into a
    note, deeper on longer notes; a slow drift and a fine fluctuation of a few cents (seeded
    noise). Between two notes the voice stays on the earlier one; a note after a rest is
    approached up to TRANSITION_LEAD_S (at most half the rest) ahead of its onset.
    'robot' steps hard onto each note and holds it, with nothing of the above.

    Parameters
    ----------
    sung : sequence of SungNote, non-empty, in time order
        The notes as sung (s on the output time line, MIDI note numbers).
    tuning : {"natural", "robot"}
        How the voice moves between notes.
    seed : int
        Seeds the vibrato rates, drift and flutter: same seed, same contour.
    step_s : float > 0
        Spacing of the contour's points (s); CONTOUR_STEP_S (5 ms) by default.

    Returns
    -------
    times_s : np.ndarray [shape=(m,)], float
        From the first note's start to past the last one's end, every `step_s` (s).
    midi : np.ndarray [shape=(m,)], float
        Pitch as fractional MIDI note numbers (semitones).
    """
    first, last = sung[0].start_s, sung[-1].end_s
    times = np.arange(first, last + step_s, step_s)
    starts = np.array([n.start_s for n in sung])
    pitches = np.array([n.pitch for n in sung], dtype=np.float64)
    if tuning == "robot":
        index = np.clip(np.searchsorted(starts, times, side="right") - 1, 0, None)
        return times, pitches[index]
    ends = np.array([n.end_s for n in sung])
    gaps = np.concatenate([[0.0], starts[1:] - ends[:-1]])
    switches = starts - np.clip(gaps / 2, 0.0, TRANSITION_LEAD_S)
    index = np.clip(np.searchsorted(switches, times, side="right") - 1, 0, None)
    steps = pitches[index]
    rate = 1.0 / step_s
    forward = _second_order(steps, OVERSHOOT_HZ, OVERSHOOT_DAMPING, rate)
    backward = _second_order(steps[::-1], PREPARATION_HZ, PREPARATION_DAMPING, rate)[::-1]
    moving = (1 - PREPARATION_SHARE) * forward + PREPARATION_SHARE * backward
    rng = np.random.default_rng(seed)
    wander = (_smooth_noise(rng, len(times), rate, DRIFT_HZ, DRIFT_CENTS) +
              _smooth_noise(rng, len(times), rate, FLUTTER_HZ, FLUTTER_CENTS)) / 100
    return times, moving + _vibrato(times, sung, rng) + wander


def _second_order(steps: np.ndarray, natural_hz: float, damping: float,
                  rate: float) -> np.ndarray:
    """A step sequence through w^2 / (s^2 + 2 z w s + w^2), discretised (bilinear), starting
    at rest on the first value."""
    omega = 2 * np.pi * natural_hz
    b, a = bilinear([omega**2], [1.0, 2 * damping * omega, omega**2], fs=rate)
    response: np.ndarray = lfilter(b, a, steps - steps[0], zi=np.zeros(2))[0] + steps[0]
    return response


def _smooth_noise(rng: np.random.Generator, length: int, rate: float, cutoff_hz: float,
                  cents: float) -> np.ndarray:
    """Seeded noise low-passed at `cutoff_hz`, scaled to a standard deviation of `cents`."""
    b, a = butter(2, cutoff_hz, fs=rate)
    noise: np.ndarray = lfilter(b, a, rng.standard_normal(length + round(rate)))[round(rate):]
    spread = float(noise.std())
    return noise * (cents / spread) if spread > 0 else noise


def _vibrato(times: np.ndarray, sung: Sequence[SungNote], rng: np.random.Generator) -> np.ndarray:
    """Vibrato in semitones: on each note longer than VIBRATO_MIN_NOTE_S, fading in from
    VIBRATO_AFTER_S to VIBRATO_FULL_S after its onset, at a depth that grows with the note's
    length to VIBRATO_CENTS, at a rate a little different on each note."""
    out = np.zeros_like(times)
    for note in sung:
        length = note.end_s - note.start_s
        if length < VIBRATO_MIN_NOTE_S:
            continue
        inside = (times >= note.start_s) & (times < note.end_s)
        since = times[inside] - note.start_s
        ramp = np.clip((since - VIBRATO_AFTER_S) / (VIBRATO_FULL_S - VIBRATO_AFTER_S), 0, 1)
        depth = VIBRATO_CENTS * min(1.0, length / VIBRATO_DEEPEST_NOTE_S)
        rate_hz = VIBRATO_HZ * (1 + VIBRATO_RATE_SPREAD * rng.uniform(-1, 1))
        phase = 2 * np.pi * rate_hz * np.maximum(since - VIBRATO_AFTER_S, 0.0)
        out[inside] = ramp * depth / 100 * np.sin(phase)
    return out


def pitch_contour(alignment: Alignment, contour: tuple[np.ndarray, np.ndarray]
                  ) -> tuple[np.ndarray, np.ndarray]:
    """A sung contour (output times in s, MIDI pitch) as target f0 (Hz) at input times (s)."""
    return alignment.time_map.to_input(contour[0]), np.asarray(midi_to_hz(contour[1]))


class Analyses:
    """Praat's analysis ("To Manipulation": pitch and pulses) of each stretch of one voice,
    made once: the parts of a song sung from the same stretch (the chorus's two halves and the
    second voice above each) each get a copy of it, which is the same as analysing again.

    Keep one for one voice and one song (it holds the analyses until it goes).
    """

    def __init__(self) -> None:
        self._made: dict[tuple[int, int, int, int, float, float],
                         tuple[parselmouth.Data, float]] = {}

    def manipulation(self, samples: np.ndarray, sample_rate: int, span: tuple[int, int, int],
                     pitch_floor_hz: float, pitch_ceiling_hz: float
                     ) -> tuple[parselmouth.Data, float]:
        """A fresh Manipulation of samples[first:last] followed by `pad` zeros, and the
        analysed clip's duration (s); `span` is (first, last, pad) in samples."""
        key = (*span, sample_rate, pitch_floor_hz, pitch_ceiling_hz)
        made = self._made.get(key)
        if made is None:
            made = self._made[key] = _manipulation(samples, sample_rate, span, pitch_floor_hz,
                                                   pitch_ceiling_hz)
        manipulation, duration_s = made
        return manipulation.copy(), duration_s

    def __len__(self) -> int:
        """How many stretches have been analysed."""
        return len(self._made)


def _manipulation(samples: np.ndarray, sample_rate: int, span: tuple[int, int, int],
                  pitch_floor_hz: float, pitch_ceiling_hz: float
                  ) -> tuple[parselmouth.Data, float]:
    first, last, pad = span
    clip = samples[first:last].astype(np.float64)
    if pad:
        clip = np.concatenate([clip, np.zeros(pad)])
    sound = parselmouth.Sound(clip, sampling_frequency=sample_rate)
    manipulation: parselmouth.Data = call(sound, "To Manipulation", 0.01, pitch_floor_hz,
                                          pitch_ceiling_hz)
    return manipulation, float(sound.duration)


def retune(samples: np.ndarray, sample_rate: int, alignment: Alignment,
           contour: tuple[np.ndarray, np.ndarray], pitch_floor_hz: float = 60.0,
           pitch_ceiling_hz: float = 600.0, analyses: Analyses | None = None) -> RetunedVoice:
    """Resynthesise the voice along the alignment's time map and a sung pitch contour.

    Praat's PSOLA overlap-add (seeded, so one input gives one voice). A part sung more than
    PRAAT_MAX_STRETCH (3) times slower than spoken has its source padded with silence so its
    end is not lost.

    Parameters
    ----------
    samples : np.ndarray [shape=(n,)], float in -1..1
        The mono input voice.
    sample_rate : int > 0
        Its rate (Hz).
    alignment : Alignment
        Input -> output time map (align); only the input between its first and last points is
        used.
    contour : (np.ndarray, np.ndarray)
        Output times (s) and MIDI pitch (fractional semitones); `sung_contour` makes one.
    pitch_floor_hz : float > 0
        Lowest f0 Praat's analysis looks for (Hz).
    pitch_ceiling_hz : float > pitch_floor_hz
        Highest f0 Praat's analysis looks for (Hz).
    analyses : Analyses or None
        Where the analysis of this stretch of `samples` is kept and taken from, for parts
        sung from the same stretch; None analyses it here.

    Returns
    -------
    voice : RetunedVoice
        float32 samples at `sample_rate`, as long as the map's output span, starting at its
        first output time (s on the song's time line).
    """
    time_map = alignment.time_map
    start_in, end_in = float(time_map.input_s[0]), float(time_map.input_s[-1])
    first, last = int(start_in * sample_rate), int(np.ceil(end_in * sample_rate))
    sung_s = float(time_map.output_s[-1] - time_map.output_s[0])
    clip_s = len(samples[first:last]) / sample_rate
    pad_s = max(0.0, (sung_s - PRAAT_MAX_STRETCH * clip_s) / (PRAAT_MAX_STRETCH - 1.0))
    pad = round((pad_s + PAD_MARGIN_S) * sample_rate) if pad_s > 0.0 else 0
    span = (first, last, pad)
    manipulation, duration_s = (
        _manipulation(samples, sample_rate, span, pitch_floor_hz, pitch_ceiling_hz)
        if analyses is None else
        analyses.manipulation(samples, sample_rate, span, pitch_floor_hz, pitch_ceiling_hz))
    contour_in, contour_hz = pitch_contour(alignment, contour)
    duration_in, factors = _duration_points(time_map)
    # The padding goes at its own speed (a tier holds its last value beyond its last point).
    duration_in = np.append(duration_in, end_in + EPSILON_S)
    factors = np.append(factors, 1.0)
    with tempfile.TemporaryDirectory(prefix="singsong-retune-") as folder:
        pitch_tier = _read_tier(Path(folder, "p.PitchTier"), "PitchTier", duration_s,
                                contour_in - start_in, contour_hz)
        duration_tier = _read_tier(Path(folder, "d.DurationTier"), "DurationTier",
                                   duration_s, duration_in - start_in, factors)
    call([pitch_tier, manipulation], "Replace pitch tier")
    call([duration_tier, manipulation], "Replace duration tier")
    # Overlap-add picks random stretches of unvoiced sound to repeat; a fixed seed for
    # Praat's generator makes the same input give the same voice.
    run(f"random_initializeWithSeedUnsafelyButPredictably ({PRAAT_SEED})")
    result = call(manipulation, "Get resynthesis (overlap-add)")
    out = np.asarray(result.values[0], dtype=np.float32)[:round(sung_s * sample_rate)]
    return RetunedVoice(out, sample_rate, float(time_map.output_s[0]))


def _duration_points(time_map: TimeMap) -> tuple[np.ndarray, np.ndarray]:
    """A DurationTier that is constant on each segment of the map (ramps of 2 ms between)."""
    xs, ys = time_map.input_s, time_map.output_s
    factors = np.diff(ys) / np.diff(xs)
    times, values = [], []
    for a, b, factor in zip(xs[:-1], xs[1:], factors, strict=True):
        pad = min(EPSILON_S, (b - a) / 4)
        times += [a + pad, b - pad]
        values += [factor, factor]
    return np.array(times), np.array(values)


def _read_tier(path: Path, kind: str, duration_s: float, times: np.ndarray,
               values: np.ndarray) -> parselmouth.Data:
    """Build a Praat tier from a text file: far faster than adding points one call at a time."""
    order = np.argsort(times, kind="stable")
    times, values = np.clip(times[order], 0.0, duration_s), values[order]
    keep = np.concatenate([[True], np.diff(times) > 1e-6])
    lines = [f'File type = "ooTextFile"\nObject class = "{kind}"\n\n0\n{duration_s!r}\n'
             f"{int(keep.sum())}\n"]
    lines += [f"{t:.6f}\n{v:.6f}\n" for t, v in zip(times[keep], values[keep], strict=True)]
    path.write_text("".join(lines))
    return parselmouth.read(str(path))
