"""Statistics that compare melodies with real ones (after Yang & Lerch 2018).

Every melody is given as key-relative pitches: (pitch - tonic), so pitch class 0 is the tonic;
rhythm is given as onsets in 16th steps.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from engine.melody.tokens import pitch_run_lengths
from engine.theory import MAJOR_SCALE, NATURAL_MINOR_SCALE, Mode

MAX_INTERVAL = 12
MAX_DURATION_STEPS = 16
STEPS_PER_BEAT = 4
# Lower edges of the inter-onset-interval bins, in beats: [0.25, 0.5), [0.5, 0.75), ...,
# [3, 4), [4, inf). On the 16th grid the first four hold one length each (a 16th, an 8th,
# a dotted 8th, a quarter).
IOI_BIN_EDGES_BEATS = (0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0)


@dataclass(frozen=True)
class RelativeMelody:
    """A melody with pitches relative to its tonic, durations in 16ths, and the indices of
    the notes that end its four-bar phrases."""

    mode: Mode
    pitches: tuple[int, ...]
    durations: tuple[int, ...]
    phrase_ends: tuple[int, ...]


def _normalised(counts: np.ndarray) -> np.ndarray:
    total = counts.sum()
    return counts / total if total else counts


def degree_histogram(melodies: Sequence[RelativeMelody]) -> np.ndarray:
    counts = np.zeros(12)
    for m in melodies:
        np.add.at(counts, np.array(m.pitches) % 12, 1)
    return _normalised(counts)


def interval_histogram(melodies: Sequence[RelativeMelody]) -> np.ndarray:
    counts = np.zeros(2 * MAX_INTERVAL + 1)
    for m in melodies:
        steps = np.clip(np.diff(m.pitches), -MAX_INTERVAL, MAX_INTERVAL) + MAX_INTERVAL
        np.add.at(counts, steps.astype(int), 1)
    return _normalised(counts)


def duration_histogram(melodies: Sequence[RelativeMelody]) -> np.ndarray:
    counts = np.zeros(MAX_DURATION_STEPS)
    for m in melodies:
        np.add.at(counts, np.clip(np.array(m.durations), 1, MAX_DURATION_STEPS) - 1, 1)
    return _normalised(counts)


def ioi_histogram(onsets: Sequence[Sequence[int]]) -> np.ndarray:
    """Normalised histogram of inter-onset intervals over IOI_BIN_EDGES_BEATS.

    onsets: for each melody (or song), its note onsets in 16th steps. An interval runs from
    one onset to the next in the same melody, so a rest, inside a phrase or between two
    phrases, counts in the interval of the note before it (a phrase's last note and the
    breath after it make one long interval); nothing is dropped, and no interval spans two
    melodies.
    """
    edges = np.array(IOI_BIN_EDGES_BEATS) * STEPS_PER_BEAT
    counts = np.zeros(len(edges))
    for melody in onsets:
        gaps = np.diff(np.sort(np.asarray(melody)))
        np.add.at(counts, np.searchsorted(edges, gaps[gaps > 0], side="right") - 1, 1)
    return _normalised(counts)


def odd_onset_share(onsets: Sequence[Sequence[int]]) -> float:
    """Share of notes starting on an odd 16th step: off the 8th-note grid."""
    odd = sum(int(np.sum(np.asarray(m) % 2)) for m in onsets)
    return odd / max(sum(len(m) for m in onsets), 1)


def overlap(p: np.ndarray, q: np.ndarray) -> float:
    """Histogram intersection of two normalised histograms: 1 is identical."""
    return float(np.minimum(p, q).sum())


def in_key_ratio(melodies: Sequence[RelativeMelody]) -> float:
    inside = total = 0
    for m in melodies:
        scale = set(MAJOR_SCALE if m.mode == "major" else NATURAL_MINOR_SCALE)
        inside += sum(p % 12 in scale for p in m.pitches)
        total += len(m.pitches)
    return inside / max(total, 1)


def longest_runs(melodies: Sequence[RelativeMelody]) -> np.ndarray:
    return np.array([max(pitch_run_lengths(list(m.pitches)), default=0) for m in melodies])


def pitch_ranges(melodies: Sequence[RelativeMelody]) -> np.ndarray:
    return np.array([max(m.pitches) - min(m.pitches) for m in melodies if m.pitches])


def phrase_end_stability(melodies: Sequence[RelativeMelody]) -> float:
    """Share of phrase-final notes on a degree of the tonic triad."""
    stable = total = 0
    for m in melodies:
        triad = {0, 4 if m.mode == "major" else 3, 7}
        stable += sum(m.pitches[i] % 12 in triad for i in m.phrase_ends)
        total += len(m.phrase_ends)
    return stable / max(total, 1)


def compare(generated: Sequence[RelativeMelody],
            real: Sequence[RelativeMelody]) -> dict[str, object]:
    runs_gen, runs_real = longest_runs(generated), longest_runs(real)
    ranges_gen, ranges_real = pitch_ranges(generated), pitch_ranges(real)
    return {
        "overlap_scale_degree": round(overlap(degree_histogram(generated),
                                              degree_histogram(real)), 4),
        "overlap_interval": round(overlap(interval_histogram(generated),
                                          interval_histogram(real)), 4),
        "overlap_duration": round(overlap(duration_histogram(generated),
                                          duration_histogram(real)), 4),
        "in_key_ratio": {"generated": round(in_key_ratio(generated), 4),
                         "test": round(in_key_ratio(real), 4)},
        "phrase_end_on_tonic_triad": {"generated": round(phrase_end_stability(generated), 4),
                                      "test": round(phrase_end_stability(real), 4)},
        "longest_run": {
            "generated_share_at_most_6": round(float(np.mean(runs_gen <= 6)), 4),
            "generated_max": int(runs_gen.max()),
            "test_share_at_most_6": round(float(np.mean(runs_real <= 6)), 4),
            "test_share_at_most_8": round(float(np.mean(runs_real <= 8)), 4),
            "test_max": int(runs_real.max()),
        },
        "pitch_range_semitones": {
            "generated_mean": round(float(ranges_gen.mean()), 2),
            "test_mean": round(float(ranges_real.mean()), 2),
            "generated_p10_p90": [float(np.percentile(ranges_gen, 10)),
                                  float(np.percentile(ranges_gen, 90))],
            "test_p10_p90": [float(np.percentile(ranges_real, 10)),
                             float(np.percentile(ranges_real, 90))],
        },
    }
