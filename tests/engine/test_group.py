"""Group songs (engine/group.py): a verse per voice in join order, a chorus by everyone,
unusable voices left out with their reason, the decoded file's true peak, determinism."""

import io
from pathlib import Path
from typing import Any

import numpy as np
import pretty_midi
import pytest

from engine import arrange
from engine.arrange import MELODY_TRACK, SAMPLE_RATE
from engine.audio import decoded_true_peak_dbtp
from engine.errors import InvalidRequest
from engine.form import MAX_SONG_S
from engine.group import GroupSong, TooFewVoices
from engine.pipeline import group_song
from tests.conftest import ffmpeg_make

SEED = 5
EDGE_S = 0.5
NOT_AUDIO = b"RIFF\x00\x00\x00\x00WAVEfmt " + b"\xff" * 4000


@pytest.fixture(scope="module")
def arctic(shared_data: Path) -> list[bytes]:
    """Three short read sentences (CMU ARCTIC, 2-4 s), two speakers: three people joining."""
    folder = shared_data / "speech" / "cmu_arctic"
    names = ["cmu_arctic_us_aew_a0001.wav", "cmu_arctic_us_axb_a0004.wav",
             "cmu_arctic_us_aew_a0003.wav"]
    return [(folder / name).read_bytes() for name in names]


@pytest.fixture(scope="module")
def silence() -> bytes:
    return ffmpeg_make("-f", "lavfi", "-i", "anullsrc=r=48000:cl=mono", "-t", "3",
                       "-c:a", "libopus", suffix=".ogg")


@pytest.fixture(scope="module")
def trio(arctic: list[bytes]) -> GroupSong:
    return group_song(arctic, seed=SEED)


def _sections(song: GroupSong, name: str) -> list[dict[str, Any]]:
    return [s for s in song.summary["sections"] if s["name"] == name]


def _span_levels_db(song: GroupSong, name: str) -> tuple[float, float]:
    """The mid (L+R) and side (L-R) levels (dB) over every section called `name`, from
    EDGE_S after it starts to EDGE_S before it ends (a chorus's first consonants come a
    little before its start, its reverb after its end)."""
    bounds = [s["start_s"] for s in song.summary["sections"]] + [song.summary["duration_s"]]
    starts = [s["start_s"] for s in song.summary["sections"]]
    mid_power = side_power = 0.0
    for section in _sections(song, name):
        end = bounds[starts.index(section["start_s"]) + 1]
        piece = song.samples[round((section["start_s"] + EDGE_S) * SAMPLE_RATE):
                             round((end - EDGE_S) * SAMPLE_RATE)]
        mid_power += float(np.sum((piece[:, 0] + piece[:, 1]) ** 2))
        side_power += float(np.sum((piece[:, 0] - piece[:, 1]) ** 2))
    return 10 * np.log10(mid_power + 1e-20), 10 * np.log10(side_power + 1e-20)


def test_a_verse_per_voice_in_join_order_then_everyone(trio: GroupSong) -> None:
    summary = trio.summary
    assert [s["voices"] for s in _sections(trio, "verse")] == [[0], [1], [2]]
    choruses = _sections(trio, "chorus")
    assert len(choruses) >= 2 and all(c["voices"] == [0, 1, 2] for c in choruses)
    names = [s["name"] for s in summary["sections"]]
    assert names[0] in ("intro", "verse") and names[-2:] == ["chorus", "ending"]
    voices = summary["voices"]
    assert [v["index"] for v in voices] == [0, 1, 2] and all(v["sung"] for v in voices)
    assert voices[0]["verse_start_s"] < voices[1]["verse_start_s"] < voices[2]["verse_start_s"]
    assert summary["duration_s"] <= MAX_SONG_S
    assert summary["hook"]["voice"] in (0, 1, 2) and summary["hook"]["chosen_by"] == (
        "most singable")


def test_every_voice_sings_the_chorus_in_tune_across_the_stereo_field(trio: GroupSong) -> None:
    """Each voice's own retuned chorus keeps to the motif's notes, and the chorus is wide
    where a verse (one voice in the middle over the band) has no side signal at all."""
    for voice in trio.summary["voices"]:
        assert voice["pitch_accuracy_chorus"] > 0.85, voice
        assert voice["pitch_accuracy_verse"] > 0.8, voice
    assert trio.samples.ndim == 2 and trio.samples.shape[1] == 2
    verse_mid, verse_side = _span_levels_db(trio, "verse")
    chorus_mid, chorus_side = _span_levels_db(trio, "chorus")
    assert verse_side < verse_mid - 60
    assert chorus_side > chorus_mid - 20
    assert 0 < trio.summary["chorus_onset_spread_ms"] <= 30


def test_the_melody_file_holds_the_sung_melody(trio: GroupSong) -> None:
    midi = pretty_midi.PrettyMIDI(io.BytesIO(trio.melody_midi))
    assert [i.name for i in midi.instruments] == [MELODY_TRACK]
    assert [n.pitch for n in midi.instruments[0].notes] == [
        n["pitch"] for n in trio.summary["notes"]]
    assert trio.picture[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_decoded_file_peaks_at_most_minus_one_dbtp(trio: GroupSong) -> None:
    assert trio.audio[:4] == b"OggS"
    assert decoded_true_peak_dbtp(trio.audio) <= -1.0


def test_same_seed_same_bytes(arctic: list[bytes], trio: GroupSong) -> None:
    again = group_song(arctic, seed=SEED)
    assert again.audio == trio.audio and again.melody_midi == trio.melody_midi
    assert again.summary == trio.summary


def test_voices_that_cannot_be_sung_are_left_out_with_their_reason(
        arctic: list[bytes], silence: bytes) -> None:
    song = group_song([arctic[0], silence, NOT_AUDIO, arctic[1]], seed=1, hook_voice=3,
                      audio_format="wav", extras=False)
    voices = song.summary["voices"]
    assert [v["sung"] for v in voices] == [True, False, False, True]
    assert "could not hear a voice" in voices[1]["reason"]
    assert "not audio" in voices[2]["reason"]
    assert [s["voices"] for s in _sections(song, "verse")] == [[0], [3]]
    assert all(c["voices"] == [0, 3] for c in _sections(song, "chorus"))
    assert song.summary["hook"]["voice"] == 3 and song.summary["hook"]["chosen_by"] == "asked"
    assert song.picture == b""


def test_one_usable_voice_is_not_a_group(arctic: list[bytes], silence: bytes) -> None:
    with pytest.raises(TooFewVoices, match="at least 2 voices") as raised:
        group_song([arctic[0], silence, NOT_AUDIO], seed=1)
    assert isinstance(raised.value, InvalidRequest)
    assert sorted(raised.value.left_out) == [1, 2]


@pytest.mark.parametrize(("count", "hook_voice", "message"),
                         [(1, None, "2 to 6"), (7, None, "2 to 6"), (2, 2, "voice 0 to 1")])
def test_requests_the_engine_cannot_honour(count: int, hook_voice: int | None,
                                           message: str) -> None:
    with pytest.raises(InvalidRequest, match=message):
        group_song([b"x"] * count, hook_voice=hook_voice)
    with pytest.raises(InvalidRequest, match="style"):
        group_song([b"x"] * 2, style=arrange.DEFAULT_STYLE + "-not")
