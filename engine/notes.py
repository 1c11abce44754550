"""From a voice to units of singing: syllables, phrases and range (the voice path)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
from scipy.ndimage import uniform_filter1d
from scipy.signal import find_peaks

from engine.pitch import HOP_S, PitchTrack, hz_to_midi

WINDOW_S = 0.03
SMOOTH_S = 0.03
FLOOR_BELOW_PEAK_DB = 30.0  # nuclei quieter than this below the loudest are breath or noise
MIN_DIP_DB = 2.0  # two peaks are two syllables only if the level dips this much between
MIN_GAP_S = 0.09  # nor closer than this
MIN_VOICED_S = 0.04


@dataclass(frozen=True)
class Syllable:
    """One syllable: its sound from start_s to end_s, its voiced nucleus from onset_s (the
    instant a singer puts on the beat) to voiced_end_s."""

    start_s: float
    onset_s: float
    voiced_end_s: float
    end_s: float

    @property
    def voiced_s(self) -> float:
        """How long the nucleus is voiced, from onset_s to voiced_end_s (s, >= 0)."""
        return self.voiced_end_s - self.onset_s


def frame_levels_db(samples: np.ndarray, sample_rate: int, times_s: np.ndarray) -> np.ndarray:
    """RMS level of a WINDOW_S (30 ms) window centred on each of `times_s`.

    Parameters
    ----------
    samples : np.ndarray [shape=(n,)], float in -1..1
        Mono audio.
    sample_rate : int > 0
        Its rate (Hz).
    times_s : np.ndarray [shape=(m,)], float >= 0
        Window centres (s from the start); times past the end are read at the end (the audio
        is padded with silence).

    Returns
    -------
    levels_db : np.ndarray [shape=(m,)], float
        dB relative to full scale (1.0); silence is -100 dB.
    """
    half = int(WINDOW_S * sample_rate / 2)
    padded = np.pad(samples.astype(np.float64), half)
    energy = np.concatenate([[0.0], np.cumsum(padded**2)])
    centres = np.clip(np.rint(times_s * sample_rate).astype(int), 0, len(samples))
    window_energy = energy[centres + 2 * half] - energy[centres]
    levels: np.ndarray = 10.0 * np.log10(window_energy / max(2 * half, 1) + 1e-10)
    return levels


def syllables(samples: np.ndarray, sample_rate: int, track: PitchTrack) -> list[Syllable]:
    """Syllable nuclei of a voice as voiced peaks of loudness (after de Jong and Wempe, 2009).

    Parameters
    ----------
    samples : np.ndarray [shape=(n,)], float in -1..1
        Mono speech or singing.
    sample_rate : int > 0
        Its rate (Hz).
    track : PitchTrack
        The voice's f0 track (pitch.track of the same samples): a peak counts only where it is
        voiced.

    Returns
    -------
    syllables : list of Syllable, in time order
        Peaks at most FLOOR_BELOW_PEAK_DB (30 dB) under the loudest, at least MIN_GAP_S
        (0.09 s) apart, with a MIN_DIP_DB (2 dB) dip between two; each with its sound's start
        and end and its voiced nucleus (s). Empty for a track of fewer than 3 frames.
    """
    if track.f0_hz.size < 3:
        return []
    times = track.times_s
    level = uniform_filter1d(frame_levels_db(samples, sample_rate, times),
                             max(1, round(SMOOTH_S / HOP_S)))
    voiced = track.voiced
    floor = level.max() - FLOOR_BELOW_PEAK_DB
    peaks, _ = find_peaks(level, height=floor, distance=max(1, round(MIN_GAP_S / HOP_S)))
    peaks = [int(p) for p in peaks if voiced[p]]
    peaks = _merge_without_dip(peaks, level)
    if not peaks:
        return []
    bounds = [int(np.argmin(level[a:b])) + a for a, b in itertools.pairwise(peaks)]
    starts = [0, *bounds]
    ends = [*bounds, len(level) - 1]
    found = []
    for peak, lo, hi in zip(peaks, starts, ends, strict=True):
        first, last = peak, peak
        while first > lo and voiced[first - 1]:
            first -= 1
        while last < hi and voiced[last + 1]:
            last += 1
        if (last - first + 1) * HOP_S < MIN_VOICED_S:
            continue
        sound = np.flatnonzero(level[lo:hi + 1] > floor)
        start = lo + int(sound[0]) if sound.size else first
        end = lo + int(sound[-1]) if sound.size else last
        found.append(Syllable(
            start_s=float(times[min(start, first)]),
            onset_s=float(times[first]),
            voiced_end_s=float(times[last] + HOP_S),
            end_s=float(times[max(end, last)] + HOP_S),
        ))
    return found


def _merge_without_dip(peaks: list[int], level: np.ndarray) -> list[int]:
    """Neighbouring peaks without a dip of MIN_DIP_DB between them are one syllable."""
    merged: list[int] = []
    for peak in peaks:
        if merged:
            previous = merged[-1]
            dip = min(level[previous], level[peak]) - level[previous:peak + 1].min()
            if dip < MIN_DIP_DB:
                if level[peak] > level[previous]:
                    merged[-1] = peak
                continue
        merged.append(peak)
    return merged


PHRASE_PAUSE_S = 0.25  # unvoiced time between two nuclei that ends a phrase
PHRASE_SILENCE_S = 0.12  # or silence between their sounds
MAX_PHRASE = 12  # longer breath groups are split where they pause most
MIN_PHRASE = 2


def phrases(found: list[Syllable]) -> list[int]:
    """Group syllables into phrases at the speech's pauses.

    A phrase ends where the voice pauses (PHRASE_PAUSE_S, 0.25 s, unvoiced; or PHRASE_SILENCE_S,
    0.12 s, of silence between two syllables' sounds); a breath group longer than MAX_PHRASE
    (12) syllables is split at its longest pause; a phrase of one syllable joins the neighbour
    it is closer to.

    Parameters
    ----------
    found : list of Syllable, in time order
        As syllables() returns them.

    Returns
    -------
    sizes : list of int > 0
        The number of syllables in each phrase, in order (they add up to len(found)); empty
        for no syllables.
    """
    if not found:
        return []
    pauses = np.array([b.onset_s - a.voiced_end_s for a, b in itertools.pairwise(found)])
    silences = np.array([b.start_s - a.end_s for a, b in itertools.pairwise(found)])
    ends = set(np.flatnonzero((pauses >= PHRASE_PAUSE_S) | (silences >= PHRASE_SILENCE_S)))
    bounds = [0, *sorted(int(i) + 1 for i in ends), len(found)]
    groups = _join_lone(list(itertools.pairwise(bounds)), pauses)
    split: list[tuple[int, int]] = []
    while groups:
        a, b = groups.pop(0)
        if b - a <= MAX_PHRASE:
            split.append((a, b))
            continue
        inner = np.arange(a + MIN_PHRASE, b - MIN_PHRASE + 1)  # where a new phrase may start
        cut = int(inner[np.argmax(pauses[inner - 1])])
        groups[:0] = [(a, cut), (cut, b)]
    return [b - a for a, b in split]


def _join_lone(groups: list[tuple[int, int]], pauses: np.ndarray) -> list[tuple[int, int]]:
    """Join phrases of fewer than MIN_PHRASE syllables to the nearer neighbour."""
    while len(groups) > 1:
        lone = next((i for i, (a, b) in enumerate(groups) if b - a < MIN_PHRASE), None)
        if lone is None:
            break
        a, b = groups[lone]
        before = pauses[a - 1] if lone > 0 else np.inf
        after = pauses[b - 1] if lone + 1 < len(groups) else np.inf
        other = lone - 1 if before <= after else lone + 1
        first, last = min(lone, other), max(lone, other)
        groups[first:last + 1] = [(groups[first][0], groups[last][1])]
    return groups


def comfortable_range(track: PitchTrack, span: int = 12) -> tuple[int, int]:
    """A singable range for this voice.

    People speak near the bottom of their singing range, so the range starts 3 semitones
    under the median of the speaking pitch and reaches `span` semitones above that.

    Parameters
    ----------
    track : PitchTrack
        The voice's f0 track (Hz; 0 where unvoiced).
    span : int > 0
        The range's width (semitones).

    Returns
    -------
    (low, high) : tuple of int
        MIDI note numbers, high = low + span; around A3 (median 57) when nothing is voiced.
    """
    voiced = track.f0_hz[track.voiced]
    centre = float(np.median(hz_to_midi(voiced))) if voiced.size else 57.0
    low = round(centre - 3)
    return low, low + span
