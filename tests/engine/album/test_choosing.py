"""Choosing the week's songs: per person, size, near-duplicates, determinism."""

import random
from dataclasses import replace

from engine import album
from engine.album import ClipFeatures
from tests.engine.album.conftest import copy_of, make_candidates


def test_choose_respects_per_person_and_size(speech_features: ClipFeatures) -> None:
    candidates = make_candidates(speech_features, 60, seed=1)
    chosen = album.choose(candidates, size=10, per_person=1)
    assert len(chosen) == 7  # seven people, one each
    assert len({c.person_id for c in chosen}) == 7
    chosen = album.choose(candidates, size=10, per_person=2)
    assert len(chosen) == 10
    assert max(sum(c.person_id == p for c in chosen) for p in range(7)) <= 2
    scores = [c.score for c in chosen]
    assert scores == sorted(scores, reverse=True)


def test_choose_collapses_near_duplicates_to_the_best(speech_features: ClipFeatures) -> None:
    candidates = make_candidates(speech_features, 30, seed=2)
    best = max(candidates, key=lambda c: c.score)
    copies = [copy_of(best, 100 + i, 50 + i, votes=0, seed=i) for i in range(3)]
    other = next(c for c in candidates if c is not best)
    better_copy = copy_of(other, 200, 60, votes=50, seed=9)
    assert album.near_duplicate(copies[0].features, best.features)
    everyone = [*candidates, *copies, better_copy]
    chosen = album.choose(everyone, size=40, per_person=40)
    ids = {c.track_id for c in chosen}
    assert best.track_id in ids and not ids & {100, 101, 102}
    assert 200 in ids and other.track_id not in ids  # the copy with votes wins
    assert len(chosen) == 30
    groups = album.duplicate_groups([c.features.fingerprint for c in everyone])
    assert len(set(groups)) == 30


def test_choose_is_deterministic(speech_features: ClipFeatures) -> None:
    candidates = make_candidates(speech_features, 80, seed=3)
    tied = [replace(c, votes=0, features=replace(c.features, quality=replace(
        c.features.quality, score=0.9))) for c in candidates[:10]]
    pool = tied + candidates[10:]
    expected = [c.track_id for c in album.choose(pool, size=20, per_person=3)]
    for seed in range(3):
        shuffled = pool.copy()
        random.Random(seed).shuffle(shuffled)
        assert [c.track_id for c in album.choose(shuffled, size=20, per_person=3)] == expected
        assert [c.track_id for c in album.order(album.choose(shuffled, size=20,
                                                               per_person=3))] == (
            [c.track_id for c in album.order(album.choose(pool, size=20, per_person=3))])
