"""The cover: a deterministic square PNG drawn from the songs."""

import struct

from engine import album
from engine.album import ClipFeatures
from tests.engine.album.conftest import make_candidates


def test_cover_is_a_deterministic_square_png(speech_features: ClipFeatures) -> None:
    songs = [c.features for c in make_candidates(speech_features, 12, seed=4)]
    png = album.cover_png(songs, "SingSong 2026-W47")
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", png[16:24])
    assert (width, height) == (1000, 1000)
    assert png == album.cover_png(songs, "SingSong 2026-W47")
    assert png != album.cover_png(songs[::-1], "SingSong 2026-W47")
