"""Melody model quality on POP909's test songs (810-909), printed as JSON.

Held-out negative log-likelihood per note for the model and for unigram and bigram baselines
fit on the same training songs and tokens; then 200 generated 8-bar melodies against the
test set's 8-bar stretches: histogram overlaps of scale degree, interval and duration, in-key
ratio, phrase endings, longest run of one repeated pitch, pitch range.

    .venv/bin/python -m benchmarks.melody_quality [--melodies 200]
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from benchmarks.melody_stats import RelativeMelody, compare
from engine.melody.compose import PHRASE_BARS, compose
from engine.melody.model import load_model
from engine.melody.pop909 import TEST_SONGS, TRAIN_SONGS, Pop909Song, read_songs
from engine.melody.tokens import VOCAB_SIZE, encode
from engine.melody.train import DEFAULT_DATA, split_songs

STRETCH_BARS = 8
MIN_NOTES_PER_STRETCH = 8


class NGramBaseline:
    """Unigram (order 1) or bigram (order 2) over the model's tokens, smoothed by
    interpolating with the add-one unigram; the weight is chosen on validation songs."""

    def __init__(self, order: int, sequences: Sequence[list[int]]) -> None:
        self.order = order
        self.unigram = np.ones(VOCAB_SIZE)
        self.pairs: Counter[tuple[int, int]] = Counter()
        self.contexts: Counter[int] = Counter()
        for seq in sequences:
            np.add.at(self.unigram, seq[1:], 1)
            for a, b in itertools.pairwise(seq):
                self.pairs[(a, b)] += 1
                self.contexts[a] += 1
        self.unigram /= self.unigram.sum()
        self.strength = 1.0

    def log_probs(self, seq: list[int]) -> np.ndarray:
        out = np.empty(len(seq) - 1)
        for i, (a, b) in enumerate(itertools.pairwise(seq)):
            p = self.unigram[b]
            if self.order == 2:
                p = (self.pairs[(a, b)] + self.strength * p) / (self.contexts[a] + self.strength)
            out[i] = math.log(p)
        return out

    def tune(self, sequences: Sequence[list[int]]) -> None:
        if self.order == 1:
            return
        best = None
        for strength in (0.01, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0):
            self.strength = strength
            nll = -sum(self.log_probs(s).sum() for s in sequences)
            if best is None or nll < best[0]:
                best = (nll, strength)
        assert best is not None
        self.strength = best[1]


def nll_per_note(log_probs: Sequence[np.ndarray], songs: Sequence[Pop909Song]) -> float:
    notes = sum(len(s.score.notes) for s in songs)
    return float(-sum(lp.sum() for lp in log_probs) / notes)


def test_stretches(songs: Sequence[Pop909Song]) -> list[RelativeMelody]:
    """Non-overlapping 8-bar stretches of the test songs with at least 8 notes."""
    out = []
    for song in songs:
        for first in range(0, song.score.n_bars - STRETCH_BARS + 1, STRETCH_BARS):
            notes = [n for n in song.score.notes if first <= n.bar < first + STRETCH_BARS]
            if len(notes) < MIN_NOTES_PER_STRETCH:
                continue
            mode = song.bar_modes[first]
            tonic = 0 if mode == "major" else 9
            out.append(RelativeMelody(
                mode=mode,
                pitches=tuple(n.pitch - tonic for n in notes),
                durations=tuple(n.dur for n in notes),
                phrase_ends=_phrase_ends([n.bar - first for n in notes]),
            ))
    return out


def _phrase_ends(bars: list[int]) -> tuple[int, ...]:
    last_in_phrase: dict[int, int] = {}
    for index, bar in enumerate(bars):
        last_in_phrase[bar // PHRASE_BARS] = index
    return tuple(sorted(last_in_phrase.values()))


def generated_melodies(count: int) -> list[RelativeMelody]:
    out = []
    for seed in range(count):
        melody = compose(seed=seed, bars=STRETCH_BARS)
        out.append(RelativeMelody(
            mode=melody.key.mode,
            pitches=tuple(n.pitch - melody.key.tonic for n in melody.notes),
            durations=tuple(n.dur_steps for n in melody.notes),
            phrase_ends=_phrase_ends([n.start_step // 16 for n in melody.notes]),
        ))
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--melodies", type=int, default=200)
    args = parser.parse_args(argv)
    started = time.monotonic()
    train_songs, valid_songs = split_songs(read_songs(args.data, TRAIN_SONGS))
    test_songs = read_songs(args.data, TEST_SONGS)
    test_tokens = [encode(s.score) for s in test_songs]

    model = load_model()
    unigram = NGramBaseline(1, [encode(s.score) for s in train_songs])
    bigram = NGramBaseline(2, [encode(s.score) for s in train_songs])
    bigram.tune([encode(s.score) for s in valid_songs])
    nll = {
        "model": nll_per_note([model.sequence_log_probs(t) for t in test_tokens], test_songs),
        "unigram": nll_per_note([unigram.log_probs(t) for t in test_tokens], test_songs),
        "bigram": nll_per_note([bigram.log_probs(t) for t in test_tokens], test_songs),
    }
    improvement = 1 - nll["model"] / nll["bigram"]

    generated = generated_melodies(args.melodies)
    stats = compare(generated, test_stretches(test_songs))
    runs = stats["longest_run"]
    assert isinstance(runs, dict)
    overlaps = [stats[k] for k in ("overlap_scale_degree", "overlap_interval",
                                   "overlap_duration")]
    result = {
        "test_songs": len(test_songs),
        "test_notes": sum(len(s.score.notes) for s in test_songs),
        "nll_per_note": {k: round(v, 4) for k, v in nll.items()},
        "nll_improvement_over_bigram": round(improvement, 4),
        "bigram_smoothing_strength": bigram.strength,
        "generated_melodies": len(generated),
        **stats,
        "targets_met": {
            "nll_at_least_15pct_below_bigram": improvement >= 0.15,
            "every_overlap_at_least_0.85": all(float(str(o)) >= 0.85 for o in overlaps),
            "runs_at_most_6_in_95pct": runs["generated_share_at_most_6"] >= 0.95,
            "runs_never_above_8": runs["generated_max"] <= 8,
        },
        "model": {k: model.meta.get(k) for k in ("parameters", "epochs_run",
                                                 "best_valid_loss_per_token")},
        "wall_s": round(time.monotonic() - started, 1),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
