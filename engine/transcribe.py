"""A hummed or sung line as piano notes: the singer's own tuning followed through the clip,
notes found by a Viterbi path over semitones and glides, split only where the voice
re-articulates, and no shorter than the notes people sing."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import scipy.fft
from scipy.ndimage import gaussian_filter1d, median_filter, uniform_filter1d
from scipy.signal import find_peaks

from engine.notes import frame_levels_db
from engine.pitch import HOP_S, PitchTrack

# The 2nd percentile of the sung melody's note lengths in POP909's training songs (001-809,
# 276 185 notes; `python -m benchmarks.transcription --priors` prints it): shorter pieces are
# glides, consonants or tracking errors, and are folded into a neighbour.
MIN_NOTE_S = 0.09
DROPOUT_S = 0.03  # voicing gaps this short, with the loudness holding, are the tracker's
# In noise the tracker loses a held note for longer: a gap up to this long is bridged when
# the pitch on both sides is one note (within MIN_STEP) and the loudness holds. Chosen on the
# tuning sets (the synthetic songs with kitchen noise at 10 dB SNR from a stretch of the
# recording the reported variant does not use: 0.82 -> 0.86; 0.08 s cost the clean songs).
SAME_NOTE_DROPOUT_S = 0.06
# A held note masked by a noise at least as loud as the voice (a clatter in a kitchen) for
# up to MASKED_S is one note, and voiced blips shorter than ISLAND_S inside the masking are
# the tracker reading the noise. Chosen on the tuning sets (the synthetic songs with the
# tuning stretch of kitchen noise at 10 dB SNR 0.858 -> 0.870, at 5 dB 0.783 -> 0.810; the
# WORLD resynthesis 0.870 -> 0.866, the rest unchanged). Requiring the gap 3 dB louder than
# the voice gained only at 5 dB (0.803); MASKED_S 0.2 s gained less (0.797 at 5 dB).
MASKED_S = 0.25
ISLAND_S = 0.05
MASK_SIDE_S = 0.05  # the voice's loudness beside a gap is its median over this
DROPOUT_DIP_DB = 6.0  # a gap whose loudness falls more than this is a consonant, not a dropout
OCTAVE_JUMP = 9.0  # semitones from the stretch's median: the tracker took an octave
TUNING_WINDOW_S = 3.0  # sigma of the sliding window (voiced time) that follows the tuning
VIBRATO_S = 0.15  # the pitch is averaged over about a vibrato cycle before notes are found
TREND_S = 0.08  # half the span over which the pitch's trend is taken (a vibrato cycle in all)
# A note not much longer than a vibrato cycle is all transition once averaged over one: its
# pitch looks as if it moves and the path glides through it (a scale at five notes a second
# lost every other note). So a frame may also be held on the pitch averaged over QUICK_S
# with its trend over 2 * QUICK_TREND_S, whichever costs less. Chosen on the tuning sets
# (`benchmarks.transcription`'s quick-notes phrases: 0.59 -> 0.67 clean, 0.62 -> 0.66
# noisy, 0.60 -> 0.68 in a room; the synthetic songs, their unsteady copies and variants
# unchanged or better). QUICK_S 0.05 did more for quick notes and cost the unsteady songs
# 0.02 (their +-60-cent vibrato reads as notes); 0.1 did less. QUICK_TREND_S 0.04 scored
# as 0.05, 0.06 less.
QUICK_S = 0.07
QUICK_TREND_S = 0.05
STABLE_SIGMA = 0.4  # semitones a held note may wander (vibrato, intonation) at little cost
STABLE_CAP = 4.5  # the most one frame far from a semitone costs: one stray frame is no note
STEADY_SLOPE = 3.0  # semitones per second of trend a held note has at most, at little cost
GLIDE_COST = 3.0  # a frame between notes (scoop, glide, wide waver), in the same units
SWITCH_COST = 6.0  # entering a note from another note or a glide
MIN_STEP = 0.6  # semitones between two held pitches that make them two notes
DIP_DB = 7.0  # a loudness dip this deep inside a voiced stretch is a re-articulation
# A note shorter than this takes its pitch from its own frames (their median), not from the
# VIBRATO_S average, which pulls a 100-ms note a third of the way to its neighbours. Chosen
# on the tuning sets (quick-notes phrases clean / noisy / in a room 0.67 / 0.66 / 0.68 ->
# 0.77 / 0.75 / 0.70; the synthetic songs and their variants unchanged; 0.25 s and longer
# cost the unsteady songs, whose +-60-cent vibrato the median does not average out).
SHORT_NOTE_S = 0.2
AMBIGUOUS = 0.15  # semitones from half way within which the singer's tuning decides
DIP_SPAN_S = 0.12  # the louder sound on each side of a dip is looked for this far away
# Re-articulations are found on the level of the voice's first HARMONICS harmonics (in a
# HARMONIC_WINDOW_S window), not on the broadband level, and a rise of RISE_DB within RISE_S
# is one too. Chosen on the tuning sets (synthetic songs 0.883 -> 0.914, their WORLD
# resynthesis 0.866 -> 0.891, -35 cents 0.828 -> 0.844, drifting 0.765 -> 0.787, kitchen
# noise at 10 dB 0.870 -> 0.902 and at 5 dB 0.810 -> 0.843, room 0.790 -> 0.802, unsteady
# 0.727 -> 0.761; quick-note phrases in a room 0.704 -> 0.696). 5 harmonics gained nothing,
# 6 half as much, 10 as 8; RISE_DB 5-8 alike. The rise alone on the broadband level lost
# 0.05 at 5 dB SNR (a clatter rises as fast as a syllable).
HARMONICS = 8
HARMONIC_WINDOW_S = 0.046
RISE_DB = 6.0
RISE_S = 0.06
ONSETS_APART = 5  # frames
# ... and only where the broadband level dips by this much too: a noise as loud as the voice
# that masks its harmonics keeps the loudness up, a consonant does not (the tuning sets
# alike at 1.5-4.5 dB; a held note masked by a clatter stays one note).
BROADBAND_DIP_DB = 3.0


@dataclass(frozen=True)
class HeardNote:
    """A note heard in a voice: the semitone the singer meant, on their own tuning."""

    pitch: int
    start_s: float
    end_s: float
    velocity: int


@dataclass(frozen=True)
class Tuning:
    """Where the singer sits against equal temperament (A = 440 Hz), frame by frame, in
    semitones: the reference their notes are heard against."""

    times_s: np.ndarray  # the voiced frames'
    offset: np.ndarray  # semitones; its median is within -0.5..0.5
    drift_cents: float  # how far it moved from the first note to the last (negative: flat)

    @property
    def cents(self) -> float:
        """The singer's typical offset, in cents."""
        return float(100 * np.median(self.offset)) if self.offset.size else 0.0


@dataclass(frozen=True)
class Transcript:
    notes: list[HeardNote]
    tuning: Tuning


def transcribe(samples: np.ndarray, sample_rate: int, track: PitchTrack) -> Transcript:
    """The notes of a monophonic voice.

    Each note's pitch is the semitone nearest to what was sung, heard against the singer's
    tuning around it (`local_tuning`), so a singer who drifts keeps the melody's intervals.
    Notes end where the voicing breaks (a consonant, a breath), where the pitch settles on
    another semitone (even briefly: a quick run keeps its notes), or where the voice
    re-articulates inside a held sound: its harmonics dip by DIP_DB (7 dB) or rise by RISE_DB
    (6 dB) within RISE_S (60 ms), the loudness dipping too; no note is shorter than
    MIN_NOTE_S (0.09 s). A held note a noise masks for up to MASKED_S (0.25 s) stays one
    note.

    Parameters
    ----------
    samples : np.ndarray [shape=(n,)], float in -1..1
        Mono voice.
    sample_rate : int > 0
        Its rate (Hz).
    track : PitchTrack
        Its pitch track (pitch.track of the same samples, HOP_S frames).

    Returns
    -------
    transcript : Transcript
        Notes in time order (MIDI note numbers; start and end in s; velocity 40..110 from
        loudness, 110 for the loudest, 40 for 30 dB below it) and the singer's tuning. No notes
        and an empty tuning when the track has no voiced frame.
    """
    if track.f0_hz.size == 0 or not track.voiced.any():
        return Transcript([], Tuning(np.zeros(0), np.zeros(0), 0.0))
    level = frame_levels_db(samples, sample_rate, track.times_s)
    cleaned = _bridge_dropouts(_fold_octave_errors(track.midi()), level)
    midi = _steady(cleaned, VIBRATO_S)
    tuning = local_tuning(track.times_s, midi)
    offset = np.interp(track.times_s, tuning.times_s, tuning.offset)
    pitch, quick = midi - offset, _steady(cleaned, QUICK_S) - offset
    harmonic = _harmonic_levels(samples, sample_rate, track.times_s, midi)
    loudest = float(np.nanmax(np.where(np.isnan(midi), np.nan, level)))
    notes: list[HeardNote] = []
    for first, stop in _voiced_stretches(midi):
        if (stop - first) * HOP_S < MIN_NOTE_S:
            continue
        for start, end, centre in _notes_in_stretch(pitch[first:stop], quick[first:stop],
                                                    harmonic[first:stop], level[first:stop]):
            if (end - start) * HOP_S < SHORT_NOTE_S:
                centre = _sung_centre(cleaned[first + start:first + end]
                                      - offset[first + start:first + end], centre)
            loudness = float(np.median(level[first + start:first + end])) - loudest
            notes.append(HeardNote(
                pitch=_written_pitch(centre, float(np.median(offset[first + start:first + end]))),
                start_s=float(track.times_s[first + start]),
                end_s=float(track.times_s[first + end - 1] + HOP_S),
                velocity=_velocity(loudness),
            ))
    return Transcript(notes, tuning)


def _sung_centre(sung: np.ndarray, held_centre: float) -> float:
    """The pitch a note shorter than SHORT_NOTE_S was sung at (semitones on the singer's
    tuning): the median of its own frames (`sung`, a 5-frame median taken first), not the
    VIBRATO_S average, which reaches into the neighbours; `held_centre` where no frame of it
    is voiced."""
    if len(sung) >= 5:
        sung = median_filter(sung, size=5, mode="nearest")
    sung = sung[~np.isnan(sung)]
    return float(np.median(sung)) if sung.size else held_centre


def _harmonic_levels(samples: np.ndarray, sample_rate: int, times_s: np.ndarray,
                     midi: np.ndarray) -> np.ndarray:
    """The level (dB) of the voice's first HARMONICS harmonics in a HARMONIC_WINDOW_S window
    centred on each frame: the power in the three bins nearest each harmonic of the frame's
    pitch (`midi`, fractional MIDI), summed; -100 dB where `midi` is NaN. Broadband noise
    adds little to it, and a consonant takes the voice's harmonics away even where it keeps
    the broadband level up."""
    n_fft = 1 << max(4, round(np.log2(HARMONIC_WINDOW_S * sample_rate)))
    levels = np.full(len(times_s), -100.0)
    voiced = np.flatnonzero(~np.isnan(midi))
    if voiced.size == 0:
        return levels
    padded = np.pad(samples.astype(np.float32), n_fft // 2)
    starts = np.clip(np.rint(times_s[voiced] * sample_rate).astype(int), 0, len(samples))
    frames = padded[starts[:, None] + np.arange(n_fft)[None, :]] * np.hanning(n_fft).astype(
        np.float32)
    power = np.abs(scipy.fft.rfft(frames, axis=1)) ** 2
    f0 = 440.0 * 2.0 ** ((midi[voiced] - 69.0) / 12.0)
    nearest = np.rint(f0[:, None] * np.arange(1, HARMONICS + 1) * n_fft / sample_rate)
    rows = np.arange(voiced.size)[:, None]
    energy = sum(power[rows, np.clip(nearest.astype(int) + k, 0, n_fft // 2)]
                 for k in (-1, 0, 1)).sum(axis=1)
    levels[voiced] = 10 * np.log10(energy / n_fft**2 + 1e-10)
    return levels


def _written_pitch(centre: float, offset: float) -> int:
    """The MIDI note to write for a note sung at `centre` semitones on the singer's tuning,
    which sits `offset` semitones from A = 440 Hz there: the semitone nearest to what was
    sung, as a listener (and an annotator) hears it. A note sung within AMBIGUOUS of half
    way between two is written where the singer's own tuning puts it, when both the note
    on that tuning and the tuning itself are clear of half way (a singer sitting half a
    semitone off says nothing about which way to round)."""
    heard = centre + offset
    if _near_half_way(heard) and not (_near_half_way(centre) or _near_half_way(offset)):
        return round(centre) + round(offset)
    return round(heard)


def _near_half_way(pitch: float) -> bool:
    return abs(pitch - round(pitch)) > 0.5 - AMBIGUOUS


def local_tuning(times_s: np.ndarray, midi: np.ndarray) -> Tuning:
    """The singer's offset from equal temperament (semitones) at each voiced frame.

    The circular mean of the frames' distances to their nearest semitone in a Gaussian window
    of TUNING_WINDOW_S (3 s) of voiced time, frames that glide counting less; unwrapped through
    the clip, so a slow drift is followed past half a semitone, and shifted by whole semitones
    so its median sits within half a semitone of A = 440 Hz. The drift is the change, from the
    first voiced frame to the last, of a straight line fitted to each steady frame's own
    offset (its distance to the semitone nearest it on that reference).

    Parameters
    ----------
    times_s : np.ndarray [shape=(n,)], float
        Frame times (s), HOP_S apart.
    midi : np.ndarray [shape=(n,)], float
        Fractional MIDI pitch (semitones), NaN where unvoiced.

    Returns
    -------
    tuning : Tuning
        The voiced frames' times (s), their offsets (semitones) and the drift (cents); all
        empty (drift 0) when no frame is voiced.
    """
    voiced = ~np.isnan(midi)
    pitch = midi[voiced]
    if pitch.size == 0:
        return Tuning(np.zeros(0), np.zeros(0), 0.0)
    steadiness = np.exp(-0.5 * (_trend(pitch) / STEADY_SLOPE) ** 2)
    phasor = steadiness * np.exp(2j * np.pi * pitch)
    sigma = TUNING_WINDOW_S / HOP_S
    smooth = (gaussian_filter1d(phasor.real, sigma, mode="constant")
              + 1j * gaussian_filter1d(phasor.imag, sigma, mode="constant"))
    offset = np.unwrap(np.angle(smooth)) / (2 * np.pi)
    offset -= np.round(np.median(offset))
    times = times_s[voiced]
    return Tuning(times, offset, _drift_cents(times, pitch, offset, steadiness))


def _drift_cents(times_s: np.ndarray, pitch: np.ndarray, offset: np.ndarray,
                 weights: np.ndarray) -> float:
    """The change in cents over the voiced time of a weighted straight-line fit to each
    frame's own tuning offset."""
    if times_s[-1] - times_s[0] < MIN_NOTE_S or weights.sum() <= 0:
        return 0.0
    away = pitch - offset
    own = offset + away - np.round(away)
    slope = np.polyfit(times_s, own, 1, w=np.sqrt(weights))[0]
    return float(100 * slope * (times_s[-1] - times_s[0]))


def _fold_octave_errors(midi: np.ndarray) -> np.ndarray:
    """Frames an octave away from the rest of their voiced stretch are moved back by the
    octave (the tracker took a subharmonic or a harmonic)."""
    midi = midi.copy()
    for first, stop in _voiced_stretches(midi):
        stretch = midi[first:stop]
        away = stretch - np.median(stretch)
        octaves = np.where(np.abs(away) > OCTAVE_JUMP, np.round(away / 12), 0)
        midi[first:stop] = stretch - 12 * octaves
    return midi


def _bridge_masked(midi: np.ndarray, level: np.ndarray) -> np.ndarray:
    """Gaps of at most MASKED_S between two voiced stretches on one note (within MIN_STEP),
    as loud over their median as the voice on either side (its median over MASK_SIDE_S)
    or louder, filled with the pitch on either side: a noise as loud as the voice masked
    it (a clatter), the singer held on. Voiced stretches shorter than ISLAND_S inside such a
    gap are the tracker reading the noise and are filled over."""
    midi = midi.copy()
    longest, side = round(MASKED_S / HOP_S), round(MASK_SIDE_S / HOP_S)
    held = [(a, b) for a, b in _voiced_stretches(midi) if (b - a) * HOP_S >= ISLAND_S]
    for (_, stop), (first, _) in itertools.pairwise(held):
        if (first - stop <= longest and abs(midi[stop - 1] - midi[first]) <= MIN_STEP
                and np.median(level[stop:first]) >= max(
                    np.median(level[max(0, stop - side):stop]),
                    np.median(level[first:first + side]))):
            midi[stop:first] = np.interp(np.arange(stop, first), [stop - 1, first],
                                         [midi[stop - 1], midi[first]])
    return midi


def _bridge_dropouts(midi: np.ndarray, level: np.ndarray) -> np.ndarray:
    """Unvoiced gaps of at most DROPOUT_S (SAME_NOTE_DROPOUT_S where the pitch on both
    sides is one note) inside a sound that keeps its loudness are filled with the pitch on
    either side: the tracker lost the voice, the singer did not stop. Longer gaps where a
    noise masked a held note are filled first (`_bridge_masked`)."""
    midi = _bridge_masked(midi, level)
    longest, same_note = round(DROPOUT_S / HOP_S), round(SAME_NOTE_DROPOUT_S / HOP_S)
    unvoiced = np.isnan(midi)
    edges = np.flatnonzero(np.diff(np.concatenate([[0], unvoiced.astype(int), [0]])))
    for first, stop in zip(edges[::2], edges[1::2], strict=True):
        if first == 0 or stop == len(midi):
            continue
        one_note = abs(midi[first - 1] - midi[stop]) <= MIN_STEP
        if stop - first > (same_note if one_note else longest):
            continue
        around = min(level[first - 1], level[stop])
        if level[first:stop].min() < around - DROPOUT_DIP_DB:
            continue
        midi[first:stop] = np.interp(np.arange(first, stop), [first - 1, stop],
                                     [midi[first - 1], midi[stop]])
    return midi


def _steady(midi: np.ndarray, average_s: float) -> np.ndarray:
    """The pitch of each voiced stretch with tracking blips taken out (a median of 5
    frames) and averaged over `average_s`: over VIBRATO_S, vibrato averages away (a vibrato
    wider than +-0.4 semitone would otherwise pull the tuning's circular mean half a
    semitone away); over QUICK_S, short notes keep their own pitch."""
    steady = midi.copy()
    size = max(1, round(average_s / HOP_S))
    for first, stop in _voiced_stretches(midi):
        stretch = median_filter(midi[first:stop], size=5, mode="nearest")
        steady[first:stop] = uniform_filter1d(stretch, size, mode="nearest")
    return steady


def _voiced_stretches(midi: np.ndarray) -> list[tuple[int, int]]:
    """(first, stop) frame ranges where the pitch is defined."""
    voiced = (~np.isnan(midi)).astype(int)
    edges = np.flatnonzero(np.diff(np.concatenate([[0], voiced, [0]])))
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2], strict=True)]


def _trend(pitch: np.ndarray, half_span_s: float = TREND_S) -> np.ndarray:
    """The pitch's slope in semitones per second over 2 * half_span_s (by default about one
    vibrato cycle, so vibrato averages out and scoops and glides remain)."""
    reach = max(1, round(half_span_s / HOP_S))
    padded = np.pad(pitch, reach, mode="edge")
    slope: np.ndarray = (padded[2 * reach:] - padded[:-2 * reach]) / (2 * reach * HOP_S)
    return slope


def _notes_in_stretch(pitch: np.ndarray, quick: np.ndarray, level: np.ndarray,
                      broadband: np.ndarray) -> list[tuple[int, int, float]]:
    """(start frame, end frame, pitch) of the notes in one voiced stretch: `pitch` is on the
    singer's tuning (fractional semitones, averaged over VIBRATO_S) and so is each note's,
    the mean of its held frames; `quick` is the same averaged over QUICK_S; `level` is the
    level of the voice's harmonics (dB) at each frame, `broadband` its loudness (dB)."""
    dips = _dips(level, broadband)
    held = _held_notes(pitch, _viterbi_states(pitch, quick), dips)
    if not held:  # a glide from end to end: one note where it mostly was
        return [(0, len(pitch), float(np.median(pitch)))]
    bounds = [0, *(_boundary(pitch, a, b, dips) for a, b in itertools.pairwise(held)),
              len(pitch)]
    pieces = []
    for (start, end), note in zip(itertools.pairwise(bounds), held, strict=True):
        cuts = [start, *(d for d in dips if start < d < end), end]
        pieces += [_Piece(a, b, note.centre, attacked=a != start or a == 0)
                   for a, b in itertools.pairwise(cuts)]
    return [(p.start, p.end, p.centre) for p in _fold_short(pieces)]


@dataclass
class _Held:
    """Where a note's pitch is held (frames first..stop), and its mean there (semitones on
    the singer's tuning) over `frames` frames."""

    first: int
    stop: int
    centre: float
    frames: int

    def absorb(self, later: _Held) -> None:
        total = self.frames + later.frames
        self.centre = (self.centre * self.frames + later.centre * later.frames) / total
        self.stop, self.frames = later.stop, total


@dataclass
class _Piece:
    """Part of a voiced stretch sung on one note (`centre`, semitones on the singer's
    tuning); `attacked` when it begins with a new sound (the stretch's start or a
    re-articulation), so it is never joined to the one before."""

    start: int
    end: int
    centre: float
    attacked: bool


def _viterbi_states(pitch: np.ndarray, quick: np.ndarray) -> np.ndarray:
    """The cheapest path through one state per semitone near the stretch (a held note) and
    one for glides: the semitone of each frame, or -1 where it glides. A frame costs what it
    costs held on the vibrato-averaged pitch or on the quick one, whichever is less.
    Entering a note costs SWITCH_COST; leaving one for a glide is free."""
    lowest, highest = min(pitch.min(), quick.min()), max(pitch.max(), quick.max())
    semitones = np.arange(np.floor(lowest) - 1, np.ceil(highest) + 2).astype(int)
    held = np.minimum(_held_cost(pitch, semitones, TREND_S),
                      _held_cost(quick, semitones, QUICK_TREND_S))
    cost = np.column_stack([held, np.full(len(pitch), GLIDE_COST)])
    glide = cost.shape[1] - 1
    notes = np.arange(glide)
    total = cost[0].copy()
    back = np.zeros(cost.shape, dtype=np.int64)
    for i in range(1, len(pitch)):
        best = int(total.argmin())
        switch = total[best] + SWITCH_COST
        back[i, :glide] = np.where(total[:glide] <= switch, notes, best)
        back[i, glide] = best
        total[glide] = total[best]
        np.minimum(total[:glide], switch, out=total[:glide])
        total += cost[i]
    path = np.empty(len(pitch), dtype=np.int64)
    path[-1] = int(total.argmin())
    for i in range(len(pitch) - 1, 0, -1):
        path[i - 1] = back[i, path[i]]
    return np.asarray(np.where(path == glide, -1, semitones[np.minimum(path, glide - 1)]))


def _held_cost(pitch: np.ndarray, semitones: np.ndarray, half_span_s: float) -> np.ndarray:
    """Cost of each frame as part of a note held on each semitone: its distance from the
    semitone and how fast its pitch trend moves, over 2 * half_span_s or over
    2 * QUICK_TREND_S, whichever is flatter (frames x semitones)."""
    distance = (pitch[:, None] - semitones[None, :]) ** 2 / (2 * STABLE_SIGMA**2)
    trend = np.minimum(np.abs(_trend(pitch, half_span_s)), np.abs(_trend(pitch, QUICK_TREND_S)))
    moving = 0.5 * (trend / STEADY_SLOPE) ** 2
    return np.asarray(np.minimum(distance + moving[:, None], STABLE_CAP))


def _held_notes(pitch: np.ndarray, states: np.ndarray, dips: list[int]) -> list[_Held]:
    """The held runs of the path. Neighbouring runs whose mean pitches are less than
    MIN_STEP apart, with no re-articulation between them, are one note: a singer wandering
    across half way between two semitones, a scoop, a wide waver."""
    reach = round(DIP_SPAN_S / HOP_S)
    held: list[_Held] = []
    for state, run in itertools.groupby(enumerate(states.tolist()), key=lambda f: f[1]):
        frames = [f for f, _ in run]
        if state < 0:
            continue
        note = _Held(frames[0], frames[-1] + 1, float(pitch[frames].mean()), len(frames))
        last = held[-1] if held else None
        if (last is not None and abs(last.centre - note.centre) < MIN_STEP
                and not any(last.stop - reach <= d <= note.first + reach for d in dips)):
            last.absorb(note)
        else:
            held.append(note)
    return held


def _boundary(pitch: np.ndarray, before: _Held, after: _Held, dips: list[int]) -> int:
    """Where one note gives way to the next: at a re-articulation between them if there is
    one, else where the pitch crosses half way between the two semitones."""
    reach = round(DIP_SPAN_S / HOP_S)
    between = [d for d in dips if before.stop - reach <= d <= after.first + reach]
    if between:
        return min(between, key=lambda d: abs(d - (before.stop + after.first) / 2))
    if after.first <= before.stop:
        return after.first
    middle = (before.centre + after.centre) / 2
    rising = after.centre > before.centre
    gap = pitch[before.stop:after.first]
    crossed = np.flatnonzero(gap >= middle if rising else gap <= middle)
    return before.stop + int(crossed[0]) if crossed.size else after.first


def _dips(level: np.ndarray, broadband: np.ndarray) -> list[int]:
    """Frames where the voice starts again (a consonant or a new breath inside a voiced
    stretch), half way up from the low: after a dip of DIP_DB or more in `level` (dB per
    frame, the voice's harmonic level), or where it rises by RISE_DB within RISE_S from a
    low (in a room the previous note's tail fills the dip before a new syllable, not its
    sudden rise); in both, `broadband` (the loudness, dB per frame) dips by at least
    BROADBAND_DIP_DB at the low. Onsets closer than ONSETS_APART frames are one."""
    smooth = uniform_filter1d(level, 3, mode="nearest")
    broad = uniform_filter1d(broadband, 3, mode="nearest")
    span = round(DIP_SPAN_S / HOP_S)

    def dips_too(low: int) -> bool:
        around = min(broad[max(0, low - span):low + 1].max(), broad[low:low + span + 1].max())
        return bool(around - broad[max(0, low - 2):low + 3].min() >= BROADBAND_DIP_DB)

    lows, _ = find_peaks(-smooth, prominence=DIP_DB, wlen=2 * span + 1)
    onsets = []
    for low in lows.tolist():
        if not dips_too(low):
            continue
        after = smooth[low:low + span + 1]
        halfway = (smooth[low] + after.max()) / 2
        onsets.append(low + int(np.argmax(after >= halfway)))
    rise = max(1, round(RISE_S / HOP_S))
    lows, _ = find_peaks(-smooth, prominence=1.0)
    for low in lows.tolist():
        after = smooth[low:low + rise + 1]
        if after.max() - smooth[low] >= RISE_DB and dips_too(low):
            halfway = (smooth[low] + after.max()) / 2
            onsets.append(low + int(np.argmax(after >= halfway)))
    merged: list[int] = []
    for onset in sorted(set(onsets)):
        if not merged or onset - merged[-1] >= ONSETS_APART:
            merged.append(onset)
    return merged


def _fold_short(pieces: list[_Piece]) -> list[_Piece]:
    """Fold pieces shorter than MIN_NOTE_S into the neighbour nearest in pitch, then join
    neighbours left on one semitone unless the second starts with a new sound."""
    shortest = round(MIN_NOTE_S / HOP_S)
    while len(pieces) > 1:
        short = next((i for i, p in enumerate(pieces) if p.end - p.start < shortest), None)
        if short is None:
            break
        piece = pieces.pop(short)
        before = pieces[short - 1] if short > 0 else None
        after = pieces[short] if short < len(pieces) else None
        if after is None or (before is not None and abs(before.centre - piece.centre)
                             <= abs(after.centre - piece.centre)):
            assert before is not None
            before.end = piece.end
        else:
            after.start = piece.start
            after.attacked = after.attacked or piece.attacked
    joined: list[_Piece] = []
    for piece in pieces:
        if (joined and abs(joined[-1].centre - piece.centre) < MIN_STEP
                and not piece.attacked):
            joined[-1].end = piece.end
        else:
            joined.append(piece)
    return joined


def _velocity(db_below_loudest: float) -> int:
    """MIDI velocity from loudness: the loudest note 110, 30 dB quieter 40."""
    return int(np.clip(round(110 + db_below_loudest * 70 / 30), 40, 110))


def detect_beat(onsets_s: np.ndarray, min_bpm: float = 60.0,
                max_bpm: float = 180.0) -> tuple[float, float]:
    """The beat the onsets fit best: (tempo in BPM, a time in seconds on its eighth-note grid).

    For each candidate tempo the onsets are wrapped onto its eighth notes; the tempo whose
    wrapped onsets bunch up the most wins, with a gentle preference for tempos near 100 BPM
    (a tempo and its double fit the same onsets).

    Parameters
    ----------
    onsets_s : np.ndarray [shape=(n,)], float >= 0
        Note onsets (s).
    min_bpm : float > 0
        Slowest tempo tried (quarter notes per minute); candidates are 0.5 BPM apart.
    max_bpm : float >= min_bpm
        Fastest tempo tried (BPM).

    Returns
    -------
    tempo_bpm : float in min_bpm..max_bpm
        100.0 for fewer than two onsets.
    anchor_s : float
        A time on the tempo's eighth-note grid, in 0..30 / tempo_bpm (one eighth, s); for fewer
        than two onsets the onset itself, or 0.0 for none.
    """
    if len(onsets_s) < 2:
        return 100.0, float(onsets_s[0]) if len(onsets_s) else 0.0
    tempos = np.arange(min_bpm, max_bpm + 0.5, 0.5)
    eighths_s = 30.0 / tempos
    phases = np.exp(2j * np.pi * onsets_s[None, :] / eighths_s[:, None])
    strength = np.abs(phases.mean(axis=1)) - 0.05 * np.abs(np.log2(tempos / 100.0))
    best = int(np.argmax(strength))
    anchor = float(np.angle(phases[best].mean()) / (2 * np.pi) * eighths_s[best])
    return float(tempos[best]), anchor % eighths_s[best]


def quantize(notes: list[HeardNote], tempo_bpm: float, anchor_s: float,
             steps_per_beat: int = 4) -> list[HeardNote]:
    """Snap onsets and ends to the grid (16ths by default).

    Every note keeps at least a step, a note that would land on the previous one's onset is
    dropped, and one that overlaps the next is cut at its onset; onsets before 0 s move to 0.

    Parameters
    ----------
    notes : list of HeardNote, in time order
        Notes with times in s.
    tempo_bpm : float > 0
        Quarter notes per minute.
    anchor_s : float
        A time on the grid (s), as detect_beat gives it.
    steps_per_beat : int > 0
        Grid steps per quarter note (4: 16ths).

    Returns
    -------
    notes : list of HeardNote
        Pitch and velocity unchanged; start and end on the grid (s).
    """
    step = 60.0 / tempo_bpm / steps_per_beat
    snapped: list[HeardNote] = []
    for note in notes:
        start = anchor_s + round((note.start_s - anchor_s) / step) * step
        end = anchor_s + round((note.end_s - anchor_s) / step) * step
        start = max(start, 0.0)
        if snapped and start <= snapped[-1].start_s + 1e-9:
            continue
        if snapped and snapped[-1].end_s > start:
            last = snapped[-1]
            snapped[-1] = HeardNote(last.pitch, last.start_s, start, last.velocity)
        snapped.append(HeardNote(note.pitch, float(start), float(max(end, start + step)),
                                 note.velocity))
    return snapped
