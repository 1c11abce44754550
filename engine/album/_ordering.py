"""The order of the chosen songs: neighbours near on the circle of fifths and in tempo.

Searched over the chosen songs only (all pairs of up to SEARCH_MAX_SONGS: nearest neighbours
from every start, then 2-opt), key steps and tempo steps each weighed against a random
order's; a longer list walks the circle of fifths and reverses short runs.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence

import numpy as np

from engine.album._choosing import Candidate
from engine.album._features import ClipFeatures

TIMBRE_SHARE = 0.25  # timbre counts this much beside key and tempo (each 1)
SEARCH_MAX_SONGS = 64  # up to this many songs the order is searched over all pairs
# (key, tempo) weights tried in turn until both steps beat a random order's
WEIGHTINGS = ((1.0, 1.0), (2.0, 1.0), (1.0, 2.0), (4.0, 1.0), (1.0, 4.0))
ORDER_WINDOW = 8  # beyond SEARCH_MAX_SONGS, local moves reverse runs of at most this many
ORDER_PASSES = 6
_PLACES = np.arange(12)
# Steps between two places on the circle of fifths (0-6), [from place, to place]: the one
# key distance the ordering's matrices, its long-list cost and key_distance all read.
FIFTHS_STEPS = np.minimum(_PLACES, 12 - _PLACES)[(_PLACES[:, None] - _PLACES[None, :]) % 12]


def key_distance(a: ClipFeatures, b: ClipFeatures) -> int:
    """Steps between two songs' keys on the circle of fifths.

    Parameters
    ----------
    a, b : ClipFeatures
        The songs (their `fifths`: a place 0-11).

    Returns
    -------
    int in 0..6
        The shorter way round the circle; relative keys (C major, A minor) are 0 apart.
    """
    return int(FIFTHS_STEPS[a.fifths, b.fifths])


def tempo_distance_pct(a: ClipFeatures, b: ClipFeatures) -> float:
    """How much faster the faster of two songs is.

    Parameters
    ----------
    a, b : ClipFeatures
        Songs with tempi (BPM, > 0).

    Returns
    -------
    float >= 0
        Percent of the slower song's tempo (symmetric).
    """
    low, high = sorted((a.tempo_bpm, b.tempo_bpm))
    return 100.0 * (high / low - 1.0)


def order(chosen: Sequence[Candidate]) -> list[Candidate]:
    """The songs in an order where neighbours fit: near on the circle of fifths and in tempo.

    Key steps and tempo steps (abs(ln) of the tempo ratio) are each measured against their
    mean over all pairs of these songs, which is what a random order averages, so neither
    outweighs the other whatever the week holds; timbre counts TIMBRE_SHARE (0.25) as much.
    Up to SEARCH_MAX_SONGS (64) songs (an album has 20 at most) the cheapest path is searched:
    from every song, nearest neighbours, then 2-opt until nothing improves. When the mean key
    or tempo step is then not under a random order's, the weights lean towards it
    (WEIGHTINGS) and the search runs again. Longer lists walk the circle of fifths, snaking
    through tempo, improved by reversing runs of up to ORDER_WINDOW songs:
    O(n log n + n * window).

    Parameters
    ----------
    chosen : sequence of Candidate
        The songs, in any order.

    Returns
    -------
    list of Candidate
        The same songs in album order; deterministic. Fewer than 3 come back as given.
    """
    if len(chosen) < 3:  # every order of two is as good
        return list(chosen)
    features = [c.features for c in chosen]
    if len(chosen) > SEARCH_MAX_SONGS:
        cost = _pair_cost(features, (1.0, 1.0))
        path = _circle_path(chosen)
        for _ in range(ORDER_PASSES):
            if not _improve_locally(path, cost):
                break
        return [chosen[i] for i in path]
    steps = _step_matrices(features)
    tried = []
    for weights in WEIGHTINGS:
        path = _cheapest_path(_weighted(steps, weights))
        if _beats_random(steps, path):
            return [chosen[i] for i in path]
        tried.append(path)
    balanced = _weighted(steps, WEIGHTINGS[0])  # none beat random on both: the evenest
    return [chosen[i] for i in min(tried, key=lambda path: _path_cost(balanced, path))]


def neighbour_distances(ordered: Sequence[ClipFeatures]) -> dict[str, float]:
    """How far apart an order's neighbours are, on average.

    Parameters
    ----------
    ordered : sequence of ClipFeatures
        Songs in album order.

    Returns
    -------
    dict
        "key_fifths": mean key_distance (steps on the circle of fifths, 0-6) and "tempo_pct":
        mean tempo_distance_pct (%) over neighbours; both 0 for fewer than 2 songs.
    """
    pairs = list(itertools.pairwise(ordered))
    if not pairs:
        return {"key_fifths": 0.0, "tempo_pct": 0.0}
    return {"key_fifths": float(np.mean([key_distance(a, b) for a, b in pairs])),
            "tempo_pct": float(np.mean([tempo_distance_pct(a, b) for a, b in pairs]))}


def random_order_distances(songs: Sequence[ClipFeatures]) -> dict[str, float]:
    """What a random order's neighbours average: every pair of songs is neighbours equally
    often, so the mean over all pairs.

    Parameters
    ----------
    songs : sequence of ClipFeatures

    Returns
    -------
    dict
        "key_fifths" (steps on the circle of fifths) and "tempo_pct" (%), as
        neighbour_distances; both 0 for fewer than 2 songs.
    """
    pairs = list(itertools.combinations(songs, 2))
    if not pairs:
        return {"key_fifths": 0.0, "tempo_pct": 0.0}
    return {"key_fifths": float(np.mean([key_distance(a, b) for a, b in pairs])),
            "tempo_pct": float(np.mean([tempo_distance_pct(a, b) for a, b in pairs]))}


def _step_matrices(features: Sequence[ClipFeatures]) -> np.ndarray:
    """[3, n, n]: key steps, tempo steps (|ln ratio|) and timbre distances between every
    two songs, each divided by its mean over all pairs (1 where all are alike)."""
    fifths, log_tempo, timbre = _song_arrays(features)
    steps = np.stack([FIFTHS_STEPS[fifths[:, None], fifths[None, :]].astype(np.float64),
                      np.abs(log_tempo[:, None] - log_tempo[None, :]),
                      np.linalg.norm(timbre[:, None, :] - timbre[None, :, :], axis=2)])
    pairs = np.triu_indices(len(features), 1)
    means = steps[:, pairs[0], pairs[1]].mean(axis=1) if len(features) > 1 else np.ones(3)
    return np.asarray(steps / np.where(means > 1e-12, means, 1.0)[:, None, None])


def _song_arrays(features: Sequence[ClipFeatures]) -> tuple[np.ndarray, np.ndarray,
                                                              np.ndarray]:
    """The songs' places on the circle of fifths (int), ln of their tempi (BPM, at least 1)
    and their timbres ([songs, len(TIMBRE_NAMES)])."""
    fifths = np.array([f.fifths for f in features], dtype=np.int64)
    log_tempo = np.log(np.maximum([f.tempo_bpm for f in features], 1.0))
    return fifths, log_tempo, np.array([f.timbre for f in features], dtype=np.float64)


def _weighted(steps: np.ndarray, weights: tuple[float, float]) -> np.ndarray:
    return np.asarray(weights[0] * steps[0] + weights[1] * steps[1] + TIMBRE_SHARE * steps[2])


def _beats_random(steps: np.ndarray, path: Sequence[int]) -> bool:
    """Whether the path's mean key step and mean tempo step are both under 1, the mean over
    all pairs (steps of a kind where every pair is alike are all 0, so under it)."""
    here, there = np.array(path[:-1]), np.array(path[1:])
    return all(float(steps[kind][here, there].mean()) < 1.0 - 1e-9 for kind in (0, 1))


def _path_cost(cost: np.ndarray, path: Sequence[int]) -> float:
    return float(sum(cost[a, b] for a, b in itertools.pairwise(path)))


def _cheapest_path(cost: np.ndarray) -> list[int]:
    """An open path through every index, short under `cost` (a symmetric matrix): from each
    start the nearest unvisited neighbour next, then 2-opt; the cheapest of those, ties to
    the earliest start (deterministic)."""
    n = len(cost)
    table = cost.tolist()
    best: tuple[float, list[int]] = (math.inf, list(range(n)))
    for start in range(n):
        path = _nearest_neighbour_path(table, start)
        while _improve_locally(path, lambda a, b: table[a][b], window=n):
            pass
        total = _path_cost(cost, path)
        if total < best[0] - 1e-9:
            best = (total, path)
    return best[1]


def _nearest_neighbour_path(table: list[list[float]], start: int) -> list[int]:
    path, left = [start], set(range(len(table))) - {start}
    while left:
        here = table[path[-1]]
        following = min(sorted(left), key=lambda j: here[j])
        path.append(following)
        left.remove(following)
    return path


def _pair_cost(features: Sequence[ClipFeatures], weights: tuple[float, float]
               ) -> Callable[[int, int], float]:
    """The weighted step between two songs by index, each kind of step divided by an O(n)
    estimate of its mean over all pairs (for lists too long for all pairs)."""
    fifths, log_tempo, timbre = _song_arrays(features)
    counts = np.bincount(fifths, minlength=12).astype(np.float64)
    key_mean = float(counts @ FIFTHS_STEPS @ counts) / max(float(counts.sum()) ** 2, 1.0)
    ordered = np.sort(log_tempo)
    n = len(ordered)
    tempo_mean = float(((2 * np.arange(n) - n + 1) * ordered).sum()) * 2 / max(n * n, 1)
    timbre_mean = math.sqrt(2 * float(timbre.var(axis=0).sum())) if n else 1.0
    scale = [weights[0] / max(key_mean, 1e-12), weights[1] / max(tempo_mean, 1e-12),
             TIMBRE_SHARE / max(timbre_mean, 1e-12)]

    # Python lists: this runs for every move the local search tries.
    places: list[int] = fifths.tolist()
    key_steps: list[list[int]] = FIFTHS_STEPS.tolist()

    def cost(a: int, b: int) -> float:
        return (scale[0] * key_steps[places[a]][places[b]]
                + scale[1] * abs(float(log_tempo[a]) - float(log_tempo[b]))
                + scale[2] * math.dist(timbre[a], timbre[b]))

    return cost


def _circle_path(chosen: Sequence[Candidate]) -> list[int]:
    """Indices sorted around the circle of fifths, starting after its widest empty stretch,
    tempo rising and falling in turn within each place (a snake)."""
    if not chosen:
        return []
    places = sorted({c.features.fifths for c in chosen})
    gaps = [((places[(i + 1) % len(places)] - p - 1) % 12, i) for i, p in enumerate(places)]
    start = places[(max(gaps)[1] + 1) % len(places)]
    path: list[int] = []
    for turn, place in enumerate(sorted(places, key=lambda p: (p - start) % 12)):
        members = sorted((i for i, c in enumerate(chosen) if c.features.fifths == place),
                         key=lambda i: (chosen[i].features.tempo_bpm, chosen[i].track_id))
        path.extend(members if turn % 2 == 0 else members[::-1])
    return path


def _improve_locally(path: list[int], cost: Callable[[int, int], float],
                     window: int = ORDER_WINDOW) -> bool:
    """One pass of 2-opt on an open path: reverse path[i+1..j] (j - i <= window; a reversed
    beginning too) where that lowers the total cost. Returns whether anything changed."""
    changed = False
    n = len(path)
    for i in range(-1, n - 1):
        for j in range(i + 2, min(n, i + window + 1)):
            b, c = path[i + 1], path[j]
            before = after = 0.0
            if i >= 0:
                before, after = cost(path[i], b), cost(path[i], c)
            if j + 1 < n:
                before += cost(c, path[j + 1])
                after += cost(b, path[j + 1])
            if after < before - 1e-9:
                path[i + 1: j + 1] = path[i + 1: j + 1][::-1]
                changed = True
    return changed
