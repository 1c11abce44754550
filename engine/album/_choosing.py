"""Choosing the week's songs: the best by quality and votes, a few per person, each group of
near-duplicates (the same recording shared again) collapsed to its best one."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from engine.album._features import ClipFeatures
from engine.album._fingerprints import NEAR_DUPLICATE_SIMILARITY, duplicate_groups, similarity

VOTE_WEIGHT = 0.1  # each doubling of votes (plus one) is worth this much quality


@dataclass(frozen=True)
class Candidate:
    """A shared song of the week: its track, its person, its features and votes."""

    track_id: int
    person_id: int
    features: ClipFeatures
    votes: int = 0

    @property
    def score(self) -> float:
        """Ranking: quality (0..1) plus VOTE_WEIGHT (0.1) per doubling of (votes + 1)."""
        return self.features.quality.score + VOTE_WEIGHT * math.log2(1 + max(self.votes, 0))


def choose(candidates: Sequence[Candidate], *, size: int = 20,
           per_person: int = 2) -> list[Candidate]:
    """The week's songs: the best by score, a few per person, near-duplicates collapsed.

    Parameters
    ----------
    candidates : sequence of Candidate
        The week's shared songs, in any order.
    size : int >= 0
        How many to choose at most.
    per_person : int >= 0
        How many songs one person may have at most.

    Returns
    -------
    chosen : list of Candidate
        At most `size`, best score first (ties: lower track id first). Each group of
        near-duplicates (duplicate_groups) is spent by its best member, even when that
        member's person is full, so a copy cannot slip in under another name. Deterministic:
        the same candidates in any order give the same list.
    """
    ranked = sorted(candidates, key=lambda c: (-c.score, c.track_id))
    group = duplicate_groups([c.features.fingerprint for c in ranked])
    taken_groups: set[int] = set()
    per_person_count: dict[int, int] = {}
    chosen: list[Candidate] = []
    for index, candidate in enumerate(ranked):
        if len(chosen) >= size:
            break
        if group[index] in taken_groups:
            continue
        # The group is spent by its best member even when that member's person is full:
        # a copy must not slip in under another name.
        taken_groups.add(group[index])
        if per_person_count.get(candidate.person_id, 0) >= per_person:
            continue
        per_person_count[candidate.person_id] = per_person_count.get(candidate.person_id, 0) + 1
        chosen.append(candidate)
    return chosen


def near_duplicate(a: ClipFeatures, b: ClipFeatures) -> bool:
    """Whether two clips are the same recording (re-encoded, trimmed a little, ...).

    Parameters
    ----------
    a, b : ClipFeatures

    Returns
    -------
    bool
        Their fingerprints' similarity is at least NEAR_DUPLICATE_SIMILARITY (0.8).
    """
    return similarity(a.fingerprint, b.fingerprint) >= NEAR_DUPLICATE_SIMILARITY
