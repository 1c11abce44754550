"""The album engine's shared test material: a speech clip and recorded music decoded once,
their features, synthetic candidates with real fingerprints, and four songs joined."""

import random
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from engine import album
from engine.album import Candidate, ClipFeatures
from engine.audio import decode_file
from engine.theory import Key

RATE = 22050


@pytest.fixture(scope="package")
def speech(speech_clip: Path) -> np.ndarray:
    return decode_file(speech_clip, sample_rate=RATE).samples


@pytest.fixture(scope="package")
def music(shared_data: Path) -> list[tuple[str, np.ndarray]]:
    """The first 12 s of each piece of recorded music."""
    return [(path.stem, decode_file(path, sample_rate=RATE, max_duration_s=12.0).samples)
            for path in sorted((shared_data / "music").glob("*.ogg"))]


@pytest.fixture(scope="package")
def speech_features(speech: np.ndarray) -> ClipFeatures:
    return album.features(speech, RATE)


def make_candidates(base: ClipFeatures, count: int, seed: int) -> list[Candidate]:
    """Synthetic candidates: random keys, tempos and timbres; distinct fingerprints (the real
    one XORed with a random mask of 16 bits per candidate)."""
    rng = random.Random(seed)
    made = []
    for track_id in range(count):
        mask = sum(1 << b for b in rng.sample(range(32), 16))
        fifths = rng.randrange(12)
        features = replace(
            base, key=Key((fifths * 7) % 12, "major").name, fifths=fifths,
            tempo_bpm=round(rng.uniform(75, 150), 1),
            timbre=tuple(rng.uniform(0.2, 0.8) for _ in base.timbre),
            quality=replace(base.quality, score=round(rng.uniform(0.5, 1.0), 3)),
            fingerprint=tuple(v ^ mask for v in base.fingerprint))
        made.append(Candidate(track_id=track_id, person_id=track_id % 7, features=features,
                              votes=rng.randrange(4)))
    return made


def copy_of(candidate: Candidate, track_id: int, person_id: int, votes: int,
             seed: int) -> Candidate:
    """A near-duplicate: the fingerprint shifted by 3 items with 5 % of its bits flipped."""
    rng = np.random.default_rng(seed)
    items = np.array(candidate.features.fingerprint[3:], dtype=np.uint32)
    flips = (rng.random((len(items), 32)) < 0.05) * (1 << np.arange(32, dtype=np.uint64))
    items ^= flips.sum(axis=1).astype(np.uint32)
    features = replace(candidate.features, fingerprint=tuple(int(v) for v in items))
    return Candidate(track_id, person_id, features, votes)


@pytest.fixture(scope="package")
def joined(music: list[tuple[str, np.ndarray]]) -> tuple[album.AlbumMix, list[str]]:
    """The first 8 s of four pieces of music joined at 32 kHz, and their names."""
    songs = [(samples[: 8 * RATE], RATE, album.features(samples[: 8 * RATE], RATE))
             for _, samples in music[:4]]
    return album.assemble(songs, sample_rate=32000), [name for name, _ in music[:4]]
