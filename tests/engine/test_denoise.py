"""Cleaning a voice note recorded in a noisy room (engine/denoise.py), on real speech with
real kitchen noise mixed in, scored as benchmarks/denoise.py scores it."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from scipy.signal import correlate

from benchmarks.denoise import RATE, Reference, load_noise, mix_at_snr
from engine.audio import decode_file
from engine.denoise import NOISY_FLOOR_DB, clean_voice, noise_floor_db, rnnoise


@pytest.fixture(scope="module")
def clean(speech_clip: Path) -> np.ndarray:
    return decode_file(speech_clip, sample_rate=RATE).samples


@pytest.fixture(scope="module")
def reference(clean: np.ndarray) -> Reference:
    return Reference(clean)


@pytest.fixture(scope="module")
def noisy(clean: np.ndarray) -> np.ndarray:
    return mix_at_snr(clean, load_noise(), 10.0, offset_s=0.0)


def test_noisy_speech_gets_quiet_gaps_and_keeps_its_syllables(
        noisy: np.ndarray, reference: Reference) -> None:
    assert reference.speech_to_gap_db(noisy) < 12  # the noise fills the gaps (10.0 dB)
    result = clean_voice(noisy, RATE)
    assert result.cleaned and result.noise_floor_db > NOISY_FLOOR_DB
    assert result.samples.shape == noisy.shape and result.samples.dtype == np.float32
    scores = reference.scores(result.samples)
    # Measured 35 dB, 0.978 voiced alike, 0.95 within 50 cents, 45 syllables of 46, 0.98 of
    # onsets.
    assert scores["speech_to_gap_db"] >= 15
    assert scores["voicing_agreement"] >= 0.93
    assert scores["within_50_cents"] >= 0.9
    assert abs(scores["syllables"] - scores["syllables_clean"]) <= 0.1 * scores["syllables_clean"]
    assert scores["onsets_matched"] >= 0.9


def test_a_clean_clip_comes_back_untouched(clean: np.ndarray) -> None:
    result = clean_voice(clean, RATE)
    assert not result.cleaned and result.samples is clean
    assert result.noise_floor_db < NOISY_FLOOR_DB - 3  # about -30 dB


def test_the_noise_floor_rises_with_the_noise(clean: np.ndarray) -> None:
    noise = load_noise()
    floors = [noise_floor_db(mix_at_snr(clean, noise, snr, 0.0), RATE) for snr in (30, 20, 10, 5)]
    assert floors == sorted(floors)
    assert floors[0] < NOISY_FLOOR_DB < floors[2]


def test_rnnoise_keeps_length_and_timing_and_repeats_itself(clean: np.ndarray) -> None:
    part = clean[: 3 * RATE]
    first, second = rnnoise(part, RATE), rnnoise(part, RATE)
    assert first.shape == part.shape and np.array_equal(first, second)
    lag = int(np.argmax(correlate(first, part, method="fft"))) - (len(part) - 1)
    assert lag == 0


@pytest.mark.parametrize("length", [0, 1, 100, 2000, RATE])
def test_silence_and_very_short_clips_pass(length: int) -> None:
    silence = np.zeros(length, np.float32)
    result = clean_voice(silence, RATE)
    assert not result.cleaned and result.samples is silence
    assert math.isnan(result.noise_floor_db)


def test_a_short_noisy_clip_is_cleaned_at_its_length() -> None:
    noise = np.random.default_rng(0).normal(0, 0.1, 4000).astype(np.float32)  # 0.18 s
    result = clean_voice(noise, RATE)
    assert result.cleaned and result.samples.shape == noise.shape
    assert np.std(result.samples) < 0.5 * np.std(noise)


def test_noise_alone_is_told_apart_from_a_noisy_voice(clean: np.ndarray,
                                                       noisy: np.ndarray) -> None:
    rng = np.random.default_rng(5)
    noise = (0.3 * rng.standard_normal(3 * 22050)).astype(np.float32)
    assert clean_voice(noise, 22050).only_noise
    # A voice keeps its loud part through cleaning, even under as much noise as voice.
    for voice in (noisy, mix_at_snr(clean, load_noise(), 0.0, offset_s=0.0)):
        result = clean_voice(voice, RATE)
        assert result.cleaned and not result.only_noise
