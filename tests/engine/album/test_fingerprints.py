"""Chromaprint fingerprints: a re-encoded copy is near, other music is not."""

import itertools
from pathlib import Path

import numpy as np

from engine import album
from engine.album import ClipFeatures
from engine.audio import (
    decode,
)
from tests.conftest import ffmpeg_make
from tests.engine.album.conftest import RATE


def test_a_re_encoded_copy_is_a_near_duplicate_and_other_clips_are_not(
        speech_clip: Path, speech_features: ClipFeatures,
        music: list[tuple[str, np.ndarray]]) -> None:
    mp3 = ffmpeg_make("-i", str(speech_clip), "-ss", "0.7", "-c:a", "libmp3lame", "-b:a", "48k",
                      suffix=".mp3")
    copy = album.features(decode(mp3, sample_rate=RATE).samples, RATE)
    assert album.similarity(copy.fingerprint, speech_features.fingerprint) > 0.9
    assert album.near_duplicate(copy, speech_features)
    others = [album.features(samples, RATE) for _, samples in music]
    for other in others:
        assert not album.near_duplicate(other, speech_features)
    for first, second in itertools.pairwise(others):
        assert album.similarity(first.fingerprint, second.fingerprint) < 0.7
