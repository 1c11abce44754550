import itertools
import json
import math
import random
import struct
import subprocess
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from engine import curate, pipeline
from engine.audio import (
    DELIVERED_CEILING_DBTP,
    MASTER_CEILING_DBTP,
    decode,
    decode_file,
    decoded_true_peak_dbtp,
    encode,
    integrated_loudness,
    true_peak_dbtp,
)
from engine.curate import Candidate, ClipFeatures
from engine.errors import InvalidRequest
from engine.theory import Key
from tests.conftest import ffmpeg_make

RATE = 22050


@pytest.fixture(scope="module")
def speech(speech_clip: Path) -> np.ndarray:
    return decode_file(speech_clip, sample_rate=RATE).samples


@pytest.fixture(scope="module")
def music(shared_data: Path) -> list[tuple[str, np.ndarray]]:
    """The first 12 s of each piece of recorded music."""
    return [(path.stem, decode_file(path, sample_rate=RATE, max_duration_s=12.0).samples)
            for path in sorted((shared_data / "music").glob("*.ogg"))]


@pytest.fixture(scope="module")
def speech_features(speech: np.ndarray) -> ClipFeatures:
    return curate.features(speech, RATE)


def test_bounds_trim_added_silence(speech: np.ndarray, speech_features: ClipFeatures) -> None:
    hiss = np.random.default_rng(0).normal(0, 1e-5, (2 * RATE,)).astype(np.float32)
    padded = np.concatenate([hiss, speech, hiss[: RATE * 3 // 2]])
    found = curate.features(padded, RATE)
    assert found.start_s == pytest.approx(speech_features.start_s + 2.0, abs=0.05)
    assert found.end_s == pytest.approx(speech_features.end_s + 2.0, abs=0.05)
    assert found.duration_s == pytest.approx(len(padded) / RATE, abs=1e-3)
    assert found.loudness_lufs == pytest.approx(speech_features.loudness_lufs, abs=0.3)
    assert curate.near_duplicate(found, speech_features)


def test_loudness_is_engine_audio_s_on_the_trimmed_clip(
        speech: np.ndarray, speech_features: ClipFeatures) -> None:
    f = speech_features
    trimmed = speech[round(f.start_s * RATE):round(f.end_s * RATE)]
    assert f.loudness_lufs == pytest.approx(integrated_loudness(trimmed, RATE), abs=1e-3)
    assert f.loudness_lufs == pytest.approx(integrated_loudness(speech, RATE), abs=0.5)


def test_a_clipped_copy_scores_lower(speech: np.ndarray,
                                     speech_features: ClipFeatures) -> None:
    clipped = curate.features(np.clip(speech * 8.0, -1.0, 1.0), RATE)
    assert clipped.quality.clipping_share > 0.005
    assert speech_features.quality.clipping_share == 0.0
    assert clipped.quality.score < speech_features.quality.score - 0.05


def test_quality_parts(speech: np.ndarray, speech_features: ClipFeatures) -> None:
    q = speech_features.quality
    assert 0.0 <= q.score <= 1.0 and q.pitch_accuracy is None and q.length_fit == 1.0
    assert 0.0 < q.silence_share < 0.5  # pauses between phrases
    sung = curate.features(speech, RATE, pitch_accuracy=0.5)
    assert sung.quality.pitch_accuracy == 0.5 and sung.quality.score < q.score
    short = curate.features(speech[: 3 * RATE], RATE)
    assert short.quality.length_fit == pytest.approx(0.3, abs=0.02)


def test_json_round_trip(speech_features: ClipFeatures) -> None:
    stored = json.loads(json.dumps(speech_features.to_json()))
    assert ClipFeatures.from_json(stored) == speech_features
    assert len(stored["chroma"]) == 12 and len(stored["timbre"]) == len(curate.TIMBRE_NAMES)
    assert sum(stored["chroma"]) == pytest.approx(1.0, abs=1e-3)
    assert all(0 <= v < 2**32 for v in stored["fingerprint"])
    silence = curate.features(np.zeros(RATE, np.float32), RATE)
    assert silence.quality.silence_share == 1.0
    assert ClipFeatures.from_json(json.loads(json.dumps(silence.to_json()))) == silence


def test_known_key_and_tempo_are_kept(speech: np.ndarray) -> None:
    f = curate.features(speech, RATE, key="F#m", tempo_bpm=96.0)
    assert f.key == "F# minor" and f.fifths == 3  # A major's place: three sharps
    assert f.tempo_bpm == 96.0 and f.beat_period_s == pytest.approx(0.625)
    beats = f.beats_s()
    assert beats[0] == f.first_beat_s and np.allclose(np.diff(beats), 0.625)
    assert f.start_s <= f.first_downbeat_s < f.first_beat_s + 4 * 0.625
    hiss = np.zeros(RATE, np.float32)
    anchored = curate.features(np.concatenate([hiss, speech]), RATE, tempo_bpm=96.0,
                               downbeat_s=0.2)
    assert anchored.start_s > 0.95
    assert anchored.first_beat_s == pytest.approx(0.2 + 0.625 * math.ceil(
        (anchored.start_s - 0.2) / 0.625), abs=1e-3)
    assert anchored.first_downbeat_s == pytest.approx(2.7, abs=1e-3)  # 0.2 + one bar


def _tone(hz: float, seconds: float) -> np.ndarray:
    t = np.arange(round(seconds * RATE)) / RATE
    envelope = np.exp(-3.0 * t)
    return np.asarray(sum(np.sin(2 * np.pi * hz * k * t) / k for k in (1, 2, 3)) * envelope)


def test_estimates_key_and_tempo_of_a_tune() -> None:
    # G major arpeggios and scale steps, one note every 0.5 s: 120 BPM.
    pitches = [67, 71, 74, 71, 67, 66, 67, 74, 72, 71, 69, 66, 67, 62, 67, 79] * 2
    notes = [_tone(440.0 * 2 ** ((p - 69) / 12), 0.5) for p in pitches]
    tune = (0.3 * np.concatenate(notes)).astype(np.float32)
    f = curate.features(tune, RATE)
    assert f.key == "G major" and f.fifths == 1
    assert f.tempo_bpm == pytest.approx(120.0, rel=0.03)
    # Beats fall on note onsets (every 0.5 s from 0).
    assert min(f.first_beat_s % 0.5, 0.5 - f.first_beat_s % 0.5) < 0.05


def test_other_sample_rates(speech_clip: Path) -> None:
    at_16k = decode_file(speech_clip, sample_rate=16000).samples
    at_22k = decode_file(speech_clip, sample_rate=RATE).samples
    a, b = curate.features(at_16k, 16000), curate.features(at_22k, RATE)
    assert a.start_s == pytest.approx(b.start_s, abs=0.05)
    assert a.loudness_lufs == pytest.approx(b.loudness_lufs, abs=0.5)
    assert curate.near_duplicate(a, b)


def test_a_re_encoded_copy_is_a_near_duplicate_and_other_clips_are_not(
        speech_clip: Path, speech_features: ClipFeatures,
        music: list[tuple[str, np.ndarray]]) -> None:
    mp3 = ffmpeg_make("-i", str(speech_clip), "-ss", "0.7", "-c:a", "libmp3lame", "-b:a", "48k",
                      suffix=".mp3")
    copy = curate.features(decode(mp3, sample_rate=RATE).samples, RATE)
    assert curate.similarity(copy.fingerprint, speech_features.fingerprint) > 0.9
    assert curate.near_duplicate(copy, speech_features)
    others = [curate.features(samples, RATE) for _, samples in music]
    for other in others:
        assert not curate.near_duplicate(other, speech_features)
    for first, second in itertools.pairwise(others):
        assert curate.similarity(first.fingerprint, second.fingerprint) < 0.7


def _candidates(base: ClipFeatures, count: int, seed: int) -> list[Candidate]:
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


def _copy_of(candidate: Candidate, track_id: int, person_id: int, votes: int,
             seed: int) -> Candidate:
    """A near-duplicate: the fingerprint shifted by 3 items with 5 % of its bits flipped."""
    rng = np.random.default_rng(seed)
    items = np.array(candidate.features.fingerprint[3:], dtype=np.uint32)
    flips = (rng.random((len(items), 32)) < 0.05) * (1 << np.arange(32, dtype=np.uint64))
    items ^= flips.sum(axis=1).astype(np.uint32)
    features = replace(candidate.features, fingerprint=tuple(int(v) for v in items))
    return Candidate(track_id, person_id, features, votes)


def test_choose_respects_per_person_and_size(speech_features: ClipFeatures) -> None:
    candidates = _candidates(speech_features, 60, seed=1)
    chosen = curate.choose(candidates, size=10, per_person=1)
    assert len(chosen) == 7  # seven people, one each
    assert len({c.person_id for c in chosen}) == 7
    chosen = curate.choose(candidates, size=10, per_person=2)
    assert len(chosen) == 10
    assert max(sum(c.person_id == p for c in chosen) for p in range(7)) <= 2
    scores = [c.score for c in chosen]
    assert scores == sorted(scores, reverse=True)


def test_choose_collapses_near_duplicates_to_the_best(speech_features: ClipFeatures) -> None:
    candidates = _candidates(speech_features, 30, seed=2)
    best = max(candidates, key=lambda c: c.score)
    copies = [_copy_of(best, 100 + i, 50 + i, votes=0, seed=i) for i in range(3)]
    other = next(c for c in candidates if c is not best)
    better_copy = _copy_of(other, 200, 60, votes=50, seed=9)
    assert curate.near_duplicate(copies[0].features, best.features)
    everyone = [*candidates, *copies, better_copy]
    chosen = curate.choose(everyone, size=40, per_person=40)
    ids = {c.track_id for c in chosen}
    assert best.track_id in ids and not ids & {100, 101, 102}
    assert 200 in ids and other.track_id not in ids  # the copy with votes wins
    assert len(chosen) == 30
    groups = curate.duplicate_groups([c.features.fingerprint for c in everyone])
    assert len(set(groups)) == 30


def test_choose_is_deterministic(speech_features: ClipFeatures) -> None:
    candidates = _candidates(speech_features, 80, seed=3)
    tied = [replace(c, votes=0, features=replace(c.features, quality=replace(
        c.features.quality, score=0.9))) for c in candidates[:10]]
    pool = tied + candidates[10:]
    expected = [c.track_id for c in curate.choose(pool, size=20, per_person=3)]
    for seed in range(3):
        shuffled = pool.copy()
        random.Random(seed).shuffle(shuffled)
        assert [c.track_id for c in curate.choose(shuffled, size=20, per_person=3)] == expected
        assert [c.track_id for c in curate.order(curate.choose(shuffled, size=20,
                                                               per_person=3))] == (
            [c.track_id for c in curate.order(curate.choose(pool, size=20, per_person=3))])


@pytest.mark.parametrize("count", [2, 20, 300])
def test_order_beats_a_random_order(speech_features: ClipFeatures, count: int) -> None:
    candidates = _candidates(speech_features, count, seed=count)
    ordered = curate.order(candidates)
    assert sorted(c.track_id for c in ordered) == list(range(count))
    ours = curate.neighbour_distances([c.features for c in ordered])
    chance = curate.random_order_distances([c.features for c in candidates])
    if count > 2:
        assert ours["key_fifths"] < 0.6 * chance["key_fifths"]
        assert ours["tempo_pct"] < 0.8 * chance["tempo_pct"]


def test_key_and_tempo_steps_both_beat_a_random_order_every_week(
        speech_features: ClipFeatures) -> None:
    """Forty seeded weeks of 3 to 20 songs: the mean neighbour key step and tempo step are
    both under a random order's (their mean over all pairs), each week."""
    for week in range(40):
        pool = _candidates(speech_features, 3 + week % 18, seed=1000 + week)
        ordered = [c.features for c in curate.order(pool)]
        ours = curate.neighbour_distances(ordered)
        chance = curate.random_order_distances(ordered)
        assert ours["key_fifths"] < chance["key_fifths"], week
        assert ours["tempo_pct"] < chance["tempo_pct"], week


def test_distances_and_tempo_ratio() -> None:
    base = ClipFeatures(0, 10, 10, -14, "C major", 0, 100, 0.6, 0, 0, (1 / 12,) * 12,
                        (0.5,) * 9, curate.Quality(1, None, 0, 0, 1), ())
    faster = replace(base, tempo_bpm=130)
    assert curate.key_distance(replace(base, fifths=11), base) == 1
    assert curate.key_distance(replace(base, fifths=6), base) == 6
    assert curate.tempo_distance_pct(base, faster) == pytest.approx(30.0)
    assert curate.tempo_distance_pct(faster, base) == pytest.approx(30.0)
    assert curate.tempo_ratio(0.6, 0.59) == 1.0  # within the tolerance: left alone
    assert curate.tempo_ratio(0.6, 0.5) == pytest.approx(1.2)
    assert curate.tempo_ratio(0.8, 0.5) == pytest.approx(0.8)  # meets the half-time beat


@pytest.fixture(scope="module")
def album(music: list[tuple[str, np.ndarray]]) -> tuple[curate.AlbumMix, list[str]]:
    songs = [(samples[: 8 * RATE], RATE, curate.features(samples[: 8 * RATE], RATE))
             for _, samples in music[:4]]
    return curate.assemble(songs, sample_rate=32000), [name for name, _ in music[:4]]


def test_assemble_joins_songs_mastered(album: tuple[curate.AlbumMix, list[str]],
                                       music: list[tuple[str, np.ndarray]]) -> None:
    mix, _ = album
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
        songs.append((samples, RATE, curate.features(samples, RATE, key="C major",
                                                     tempo_bpm=tempo, downbeat_s=0.0)))
    mix = curate.assemble(songs)
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
    songs = [(s, RATE, curate.features(s, RATE, key="C major", tempo_bpm=120.0,
                                       downbeat_s=0.0)) for s in (first, second)]
    mix = curate.assemble(songs)
    join = mix.joins[0]  # the first song fades at 13 s; a bar is 2 s
    assert join.start_s + join.overlap_s <= 13.0 + 1.0 + 1e-6 and join.trimmed_s >= 1.0
    assert curate.quietest_inside_dbfs(mix) > -30.0


@pytest.mark.parametrize("fmt", ["ogg", "mp3"])
def test_encode_album_carries_chapters(album: tuple[curate.AlbumMix, list[str]], fmt: str,
                                       tmp_path: Path) -> None:
    mix, titles = album
    titles = [*titles[:-1], "A = B; #1 \\ song"]
    data = curate.encode_album(mix, titles, fmt, album_title="SingSong 2026-W47")
    assert data == curate.encode_album(mix, titles, fmt, album_title="SingSong 2026-W47")
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
    mix = curate.AlbumMix(hot, 48000, (curate.Chapter(0.0, 6.0),))
    assert decoded_true_peak_dbtp(encode(hot, 48000, fmt)) > DELIVERED_CEILING_DBTP
    data = curate.encode_album(mix, ["hot"], fmt)
    assert decoded_true_peak_dbtp(data) <= DELIVERED_CEILING_DBTP


def test_encode_album_refuses_mismatched_titles(
        album: tuple[curate.AlbumMix, list[str]]) -> None:
    with pytest.raises(InvalidRequest):
        curate.encode_album(album[0], ["one"], "ogg")
    with pytest.raises(InvalidRequest):
        curate.encode_album(album[0], album[1], "flac")


def test_cover_is_a_deterministic_square_png(speech_features: ClipFeatures) -> None:
    songs = [c.features for c in _candidates(speech_features, 12, seed=4)]
    png = curate.cover_png(songs, "SingSong 2026-W47")
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", png[16:24])
    assert (width, height) == (1000, 1000)
    assert png == curate.cover_png(songs, "SingSong 2026-W47")
    assert png != curate.cover_png(songs[::-1], "SingSong 2026-W47")


def test_a_sung_song_reports_its_pitch_accuracy(speech_clip: Path) -> None:
    song = pipeline.sing(speech_clip.read_bytes(), seed=1, audio_format="wav", extras=False)
    accuracy = song.summary["pitch_accuracy"]
    assert 0.9 <= accuracy <= 1.0  # benchmarks/sing_quality.py: 96.8 % with SwiftF0
    samples = decode(song.audio, sample_rate=RATE).samples
    f = curate.features(samples, RATE, key=song.melody.key, tempo_bpm=song.melody.tempo_bpm,
                        downbeat_s=0.0, pitch_accuracy=accuracy)
    assert f.key == song.melody.key.name and f.tempo_bpm == song.melody.tempo_bpm
    assert f.quality.pitch_accuracy == accuracy and f.quality.score > 0.9


def test_short_and_empty_clips() -> None:
    tone = (0.3 * np.sin(np.arange(RATE) / 5)).astype(np.float32)
    f = curate.features(tone, RATE)
    assert f.end_s == 1.0 and f.quality.length_fit == pytest.approx(0.1)
    assert curate.similarity(f.fingerprint, f.fingerprint) == 0.0  # too short to compare
    with pytest.raises(InvalidRequest):
        curate.features(np.zeros(0, np.float32), RATE)


def test_features_hold_plain_numbers(speech_features: ClipFeatures,
                                     album: tuple[curate.AlbumMix, list[str]]) -> None:
    for value in [*speech_features.to_json().values(), *speech_features.to_json()["quality"]
                  .values(), *(t for c in album[0].chapters for t in (c.start_s, c.end_s))]:
        assert type(value) in (int, float, str, list, dict, type(None)), value


def test_build_album_makes_every_file(music: list[tuple[str, np.ndarray]]) -> None:
    songs = [(samples[: 6 * RATE], RATE, curate.features(samples[: 6 * RATE], RATE))
             for _, samples in music[:2]]
    album = curate.build_album(songs, ["one", "two"], album_title="W1")
    assert set(album.files) == {"ogg", "mp3", "png"} and len(album.mix.chapters) == 2
    assert album.files["ogg"][:4] == b"OggS" and album.files["png"][:4] == b"\x89PNG"
    assert album.files == curate.build_album(songs, ["one", "two"], album_title="W1").files
