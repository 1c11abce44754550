"""Features at ingest: bounds, loudness, quality, key, tempo and the beat grid, JSON."""

import json
import math
from pathlib import Path

import numpy as np
import pytest

from engine import album, pipeline
from engine.album import ClipFeatures
from engine.audio import (
    decode,
    decode_file,
    integrated_loudness,
)
from engine.errors import InvalidRequest
from tests.engine.album.conftest import RATE


def test_bounds_trim_added_silence(speech: np.ndarray, speech_features: ClipFeatures) -> None:
    hiss = np.random.default_rng(0).normal(0, 1e-5, (2 * RATE,)).astype(np.float32)
    padded = np.concatenate([hiss, speech, hiss[: RATE * 3 // 2]])
    found = album.features(padded, RATE)
    assert found.start_s == pytest.approx(speech_features.start_s + 2.0, abs=0.05)
    assert found.end_s == pytest.approx(speech_features.end_s + 2.0, abs=0.05)
    assert found.duration_s == pytest.approx(len(padded) / RATE, abs=1e-3)
    assert found.loudness_lufs == pytest.approx(speech_features.loudness_lufs, abs=0.3)
    assert album.near_duplicate(found, speech_features)


def test_loudness_is_engine_audio_s_on_the_trimmed_clip(
        speech: np.ndarray, speech_features: ClipFeatures) -> None:
    f = speech_features
    trimmed = speech[round(f.start_s * RATE):round(f.end_s * RATE)]
    assert f.loudness_lufs == pytest.approx(integrated_loudness(trimmed, RATE), abs=1e-3)
    assert f.loudness_lufs == pytest.approx(integrated_loudness(speech, RATE), abs=0.5)


def test_a_clipped_copy_scores_lower(speech: np.ndarray,
                                     speech_features: ClipFeatures) -> None:
    clipped = album.features(np.clip(speech * 8.0, -1.0, 1.0), RATE)
    assert clipped.quality.clipping_share > 0.005
    assert speech_features.quality.clipping_share == 0.0
    assert clipped.quality.score < speech_features.quality.score - 0.05


def test_quality_parts(speech: np.ndarray, speech_features: ClipFeatures) -> None:
    q = speech_features.quality
    assert 0.0 <= q.score <= 1.0 and q.pitch_accuracy is None and q.length_fit == 1.0
    assert 0.0 < q.silence_share < 0.5  # pauses between phrases
    sung = album.features(speech, RATE, pitch_accuracy=0.5)
    assert sung.quality.pitch_accuracy == 0.5 and sung.quality.score < q.score
    short = album.features(speech[: 3 * RATE], RATE)
    assert short.quality.length_fit == pytest.approx(0.3, abs=0.02)


def test_json_round_trip(speech_features: ClipFeatures) -> None:
    stored = json.loads(json.dumps(speech_features.to_json()))
    assert ClipFeatures.from_json(stored) == speech_features
    assert len(stored["chroma"]) == 12 and len(stored["timbre"]) == len(album.TIMBRE_NAMES)
    assert sum(stored["chroma"]) == pytest.approx(1.0, abs=1e-3)
    assert all(0 <= v < 2**32 for v in stored["fingerprint"])
    silence = album.features(np.zeros(RATE, np.float32), RATE)
    assert silence.quality.silence_share == 1.0
    assert ClipFeatures.from_json(json.loads(json.dumps(silence.to_json()))) == silence


def test_known_key_and_tempo_are_kept(speech: np.ndarray) -> None:
    f = album.features(speech, RATE, key="F#m", tempo_bpm=96.0)
    assert f.key == "F# minor" and f.fifths == 3  # A major's place: three sharps
    assert f.tempo_bpm == 96.0 and f.beat_period_s == pytest.approx(0.625)
    beats = f.beats_s()
    assert beats[0] == f.first_beat_s and np.allclose(np.diff(beats), 0.625)
    assert f.start_s <= f.first_downbeat_s < f.first_beat_s + 4 * 0.625
    hiss = np.zeros(RATE, np.float32)
    anchored = album.features(np.concatenate([hiss, speech]), RATE, tempo_bpm=96.0,
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
    f = album.features(tune, RATE)
    assert f.key == "G major" and f.fifths == 1
    assert f.tempo_bpm == pytest.approx(120.0, rel=0.03)
    # Beats fall on note onsets (every 0.5 s from 0).
    assert min(f.first_beat_s % 0.5, 0.5 - f.first_beat_s % 0.5) < 0.05


def test_other_sample_rates(speech_clip: Path) -> None:
    at_16k = decode_file(speech_clip, sample_rate=16000).samples
    at_22k = decode_file(speech_clip, sample_rate=RATE).samples
    a, b = album.features(at_16k, 16000), album.features(at_22k, RATE)
    assert a.start_s == pytest.approx(b.start_s, abs=0.05)
    assert a.loudness_lufs == pytest.approx(b.loudness_lufs, abs=0.5)
    assert album.near_duplicate(a, b)


def test_a_sung_song_reports_its_pitch_accuracy(speech_clip: Path) -> None:
    song = pipeline.sing(speech_clip.read_bytes(), seed=1, audio_format="wav", extras=False)
    accuracy = song.summary["pitch_accuracy"]
    assert 0.9 <= accuracy <= 1.0  # benchmarks/sing_quality.py: 96.8 % with SwiftF0
    samples = decode(song.audio, sample_rate=RATE).samples
    f = album.features(samples, RATE, key=song.melody.key, tempo_bpm=song.melody.tempo_bpm,
                        downbeat_s=0.0, pitch_accuracy=accuracy)
    assert f.key == song.melody.key.name and f.tempo_bpm == song.melody.tempo_bpm
    assert f.quality.pitch_accuracy == accuracy and f.quality.score > 0.9


def test_short_and_empty_clips() -> None:
    tone = (0.3 * np.sin(np.arange(RATE) / 5)).astype(np.float32)
    f = album.features(tone, RATE)
    assert f.end_s == 1.0 and f.quality.length_fit == pytest.approx(0.1)
    assert album.similarity(f.fingerprint, f.fingerprint) == 0.0  # too short to compare
    with pytest.raises(InvalidRequest):
        album.features(np.zeros(0, np.float32), RATE)


def test_features_hold_plain_numbers(speech_features: ClipFeatures,
                                     joined: tuple[album.AlbumMix, list[str]]) -> None:
    for value in [*speech_features.to_json().values(), *speech_features.to_json()["quality"]
                  .values(), *(t for c in joined[0].chapters for t in (c.start_s, c.end_s))]:
        assert type(value) in (int, float, str, list, dict, type(None)), value
