"""The album's files: chapters and tags as players read them, the true peak, every format."""

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from engine import album
from engine.audio import (
    DELIVERED_CEILING_DBTP,
    decoded_true_peak_dbtp,
    encode,
)
from engine.errors import InvalidRequest
from tests.engine.album.conftest import RATE


@pytest.mark.parametrize("fmt", ["ogg", "mp3"])
def test_encode_album_carries_chapters(joined: tuple[album.AlbumMix, list[str]], fmt: str,
                                       tmp_path: Path) -> None:
    mix, titles = joined
    titles = [*titles[:-1], "A = B; #1 \\ song"]
    data = album.encode_album(mix, titles, fmt, album_title="SingSong 2026-W47")
    assert data == album.encode_album(mix, titles, fmt, album_title="SingSong 2026-W47")
    target = tmp_path / f"album.{fmt}"
    target.write_bytes(data)
    probe = subprocess.run(["ffprobe", "-v", "error", "-show_chapters", "-show_format",
                            "-of", "json", str(target)], capture_output=True, check=True,
                           timeout=60)
    found = json.loads(probe.stdout)
    chapters = found["chapters"]
    assert [c["tags"]["title"] for c in chapters] == titles
    for chapter, expected in zip(chapters, mix.chapters, strict=True):
        assert float(chapter["start_time"]) == pytest.approx(expected.start_s, abs=0.01)
        assert float(chapter["end_time"]) == pytest.approx(expected.end_s, abs=0.01)
    tags = {k.lower(): v for k, v in found["format"].get("tags", {}).items()}
    if fmt == "mp3":  # Ogg keeps its tags on the stream
        assert tags["album"] == "SingSong 2026-W47"
    assert float(found["format"]["duration"]) == pytest.approx(mix.duration_s, abs=0.1)
    assert decoded_true_peak_dbtp(data) <= DELIVERED_CEILING_DBTP


@pytest.mark.parametrize("fmt", ["ogg", "mp3"])
def test_a_hot_mix_is_brought_under_the_ceiling_as_decoded(fmt: str) -> None:
    """Square-ish chords a hair under full scale: the encoders ring over it, and the album
    file is trimmed until it decodes at -1 dBTP or under."""
    t = np.arange(6 * 48000) / 48000
    chord = sum(np.sign(np.sin(2 * np.pi * hz * t)) for hz in (220.0, 277.2, 329.6))
    hot = np.asarray(0.97 * chord / np.max(np.abs(chord)), dtype=np.float32)
    mix = album.AlbumMix(hot, 48000, (album.Chapter(0.0, 6.0),))
    assert decoded_true_peak_dbtp(encode(hot, 48000, fmt)) > DELIVERED_CEILING_DBTP
    data = album.encode_album(mix, ["hot"], fmt)
    assert decoded_true_peak_dbtp(data) <= DELIVERED_CEILING_DBTP


def test_encode_album_refuses_mismatched_titles(
        joined: tuple[album.AlbumMix, list[str]]) -> None:
    with pytest.raises(InvalidRequest):
        album.encode_album(joined[0], ["one"], "ogg")
    with pytest.raises(InvalidRequest):
        album.encode_album(joined[0], joined[1], "flac")


def test_build_album_makes_every_file(music: list[tuple[str, np.ndarray]]) -> None:
    songs = [(samples[: 6 * RATE], RATE, album.features(samples[: 6 * RATE], RATE))
             for _, samples in music[:2]]
    built = album.build_album(songs, ["one", "two"], album_title="W1")
    assert set(built.files) == {"ogg", "mp3", "png"} and len(built.mix.chapters) == 2
    assert built.files["ogg"][:4] == b"OggS" and built.files["png"][:4] == b"\x89PNG"
    assert built.files == album.build_album(songs, ["one", "two"], album_title="W1").files
