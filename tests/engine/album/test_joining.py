"""Joining: bar-long crossfades with the beats together, faded tails left out, mastered."""

import itertools

import numpy as np
import pytest

from engine import album
from engine.audio import (
    MASTER_CEILING_DBTP,
    integrated_loudness,
    true_peak_dbtp,
)
from tests.engine.album.conftest import RATE


def test_assemble_joins_songs_mastered(joined: tuple[album.AlbumMix, list[str]],
                                       music: list[tuple[str, np.ndarray]]) -> None:
    mix, _ = joined
    chapters = mix.chapters
    assert mix.sample_rate == 32000 and len(chapters) == 4 and len(mix.joins) == 3
    assert chapters[0].start_s == 0.0 and chapters[-1].end_s == pytest.approx(mix.duration_s,
                                                                             abs=1e-3)
    for before, after in itertools.pairwise(chapters):
        assert before.end_s == after.start_s and before.start_s < before.end_s
    for join in mix.joins:  # a real crossfade: at least half a bar, at most a bar
        assert join.bar_s / 2 <= join.overlap_s  # (never more than a bar: min() makes it)
    # Crossfades overlap the songs: shorter than the songs end to end.
    overlaps_s = sum(j.overlap_s for j in mix.joins)
    assert mix.duration_s <= 4 * 8.0 - overlaps_s + 0.05
    assert integrated_loudness(mix.samples, mix.sample_rate) == pytest.approx(-14.0, abs=1.0)
    assert true_peak_dbtp(mix.samples, mix.sample_rate) <= MASTER_CEILING_DBTP + 0.05


def _click_song(tempo_bpm: float, click_hz: float, bars: int) -> np.ndarray:
    """A steady beat of short tone bursts at `click_hz`, with a quiet bed under it."""
    beat = round(60.0 / tempo_bpm * RATE)
    song = np.zeros(bars * 4 * beat, np.float32)
    burst = np.arange(round(0.03 * RATE)) / RATE
    click = (0.5 * np.sin(2 * np.pi * click_hz * burst) * np.hanning(len(burst)))
    for start in range(0, len(song), beat):
        song[start:start + len(click)] += click[:len(song) - start]
    bed = np.sin(2 * np.pi * 110.0 * np.arange(len(song)) / RATE)
    return np.asarray(song + 0.05 * bed, dtype=np.float32)


def _onsets_s(samples: np.ndarray, hz: float, rate: int) -> np.ndarray:
    """Where bursts at `hz` peak (s): the band around it in 5 ms frames, the loudest frame
    within 40 ms of each rise (a stretched burst's pre-echo rises early)."""
    from scipy.signal import butter, sosfiltfilt

    band = sosfiltfilt(butter(4, (hz / 1.2, hz * 1.2), "bandpass", fs=rate, output="sos"),
                       samples)
    hop = round(0.005 * rate)
    level = np.abs(band[: len(band) // hop * hop]).reshape(-1, hop).max(axis=1)
    loud = level > 0.05 * level.max()
    rises = np.flatnonzero(loud[1:] & ~loud[:-1])
    peaks = [rise + int(np.argmax(level[rise:rise + 8])) for rise in rises]
    return np.array(peaks) * hop / rate


@pytest.mark.parametrize("tempi", [(120.0, 120.0), (100.0, 120.0), (132.0, 70.0)])
def test_every_join_overlaps_a_bar_with_the_beats_together(
        tempi: tuple[float, float]) -> None:
    """Two click tracks (500 Hz, then 2 kHz): the join lasts at least half a bar, and inside
    it every incoming click lands on an outgoing one (the tail is ramped to the new tempo,
    or to its half or double), the first on a downbeat."""
    songs = []
    for tempo, hz in zip(tempi, (500.0, 2000.0), strict=True):
        samples = _click_song(tempo, hz, bars=6)
        songs.append((samples, RATE, album.features(samples, RATE, key="C major",
                                                     tempo_bpm=tempo, downbeat_s=0.0)))
    mix = album.assemble(songs)
    (join,) = mix.joins
    assert join.overlap_s >= 0.5 * 240.0 / tempi[0] / 2  # half a bar, at most double time
    assert join.bar_s / 2 <= join.overlap_s
    inside = (join.start_s - 0.01, join.start_s + join.overlap_s - 0.05)
    outgoing = _onsets_s(mix.samples, 500.0, RATE)
    incoming = _onsets_s(mix.samples, 2000.0, RATE)
    incoming = incoming[(incoming > inside[0]) & (incoming < inside[1])]
    assert len(incoming) >= 1
    for onset in incoming:
        assert np.min(np.abs(outgoing - onset)) <= 0.015, onset
    # The incoming song starts on its downbeat, at a downbeat of the outgoing one.
    bars_in = join.start_s / (240.0 / tempi[0])
    assert join.tempo_ratio != 1.0 or bars_in == pytest.approx(round(bars_in), abs=0.001)


def test_a_faded_tail_is_left_out_and_nothing_inside_is_quiet() -> None:
    """A song whose last 3 s have faded by 30 dB: the next one comes in before them (the
    overlap ends at most half a bar into them), and no 400 ms inside the album is under
    -30 dBFS."""
    first = _click_song(120.0, 500.0, bars=8)
    first[-3 * RATE:] *= 0.03
    second = _click_song(120.0, 2000.0, bars=8)
    songs = [(s, RATE, album.features(s, RATE, key="C major", tempo_bpm=120.0,
                                       downbeat_s=0.0)) for s in (first, second)]
    mix = album.assemble(songs)
    join = mix.joins[0]  # the first song fades at 13 s; a bar is 2 s
    assert join.start_s + join.overlap_s <= 13.0 + 1.0 + 1e-6 and join.trimmed_s >= 1.0
    assert album.quietest_inside_dbfs(mix) > -30.0


def test_tempo_ratio_folds_by_octaves() -> None:
    assert album.tempo_ratio(0.6, 0.59) == 1.0  # within the tolerance: left alone
    assert album.tempo_ratio(0.6, 0.5) == pytest.approx(1.2)
    assert album.tempo_ratio(0.8, 0.5) == pytest.approx(0.8)  # meets the half-time beat
