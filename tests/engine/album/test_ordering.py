"""Ordering: neighbours nearer in key and tempo than a random order's."""

from dataclasses import replace

import pytest

from engine import album
from engine.album import ClipFeatures
from tests.engine.album.conftest import make_candidates


@pytest.mark.parametrize("count", [2, 20, 300])
def test_order_beats_a_random_order(speech_features: ClipFeatures, count: int) -> None:
    candidates = make_candidates(speech_features, count, seed=count)
    ordered = album.order(candidates)
    assert sorted(c.track_id for c in ordered) == list(range(count))
    ours = album.neighbour_distances([c.features for c in ordered])
    chance = album.random_order_distances([c.features for c in candidates])
    if count > 2:
        assert ours["key_fifths"] < 0.6 * chance["key_fifths"]
        assert ours["tempo_pct"] < 0.8 * chance["tempo_pct"]


def test_key_and_tempo_steps_both_beat_a_random_order_every_week(
        speech_features: ClipFeatures) -> None:
    """Forty seeded weeks of 3 to 20 songs: the mean neighbour key step and tempo step are
    both under a random order's (their mean over all pairs), each week."""
    for week in range(40):
        pool = make_candidates(speech_features, 3 + week % 18, seed=1000 + week)
        ordered = [c.features for c in album.order(pool)]
        ours = album.neighbour_distances(ordered)
        chance = album.random_order_distances(ordered)
        assert ours["key_fifths"] < chance["key_fifths"], week
        assert ours["tempo_pct"] < chance["tempo_pct"], week


def test_key_and_tempo_distances() -> None:
    base = ClipFeatures(0, 10, 10, -14, "C major", 0, 100, 0.6, 0, 0, (1 / 12,) * 12,
                        (0.5,) * 9, album.Quality(1, None, 0, 0, 1), ())
    faster = replace(base, tempo_bpm=130)
    assert album.key_distance(replace(base, fifths=11), base) == 1
    assert album.key_distance(replace(base, fifths=6), base) == 6
    assert album.tempo_distance_pct(base, faster) == pytest.approx(30.0)
    assert album.tempo_distance_pct(faster, base) == pytest.approx(30.0)
