"""Held vowels made by WORLD and joined into the overlap-add voice."""

import numpy as np
import pytest
from scipy.signal import butter, sosfiltfilt

from engine.notes import syllables
from engine.pitch import track
from engine.retune import align, retune, sung_contour
from engine.voice import analyse, held_spans, join_held, synthesise_held
from tests.engine.test_pitch import harmonic_tone

SR = 22050


@pytest.fixture(scope="module")
def rough_speech() -> np.ndarray:
    return rough_syllables()


def rough_syllables() -> np.ndarray:
    """Four short syllables of a rough voice: the period jitters and the amplitude shimmers
    from one cycle to the next, as in speech, with a little breath noise."""
    rng = np.random.default_rng(3)
    signal = np.zeros(int(2.2 * SR), np.float32)
    for start in (0.2, 0.7, 1.2, 1.7):
        n = int(0.16 * SR)
        contour = 140 * (1 + 0.03 * rng.standard_normal(n).cumsum() / np.sqrt(n))
        shimmer = 1 + 0.25 * np.sin(2 * np.pi * 40 * np.arange(n) / SR + rng.uniform(0, 6))
        tone = harmonic_tone(contour, SR) * shimmer * np.hanning(n) ** 0.3
        tone += 0.004 * rng.standard_normal(n)
        signal[int(start * SR): int(start * SR) + n] = tone
    return signal


def _flutter(samples: np.ndarray) -> float:
    """Amplitude flutter: the 15-60 Hz part of the log level (20 ms frames every 2.5 ms)."""
    window, hop = int(0.02 * SR), int(0.0025 * SR)
    frames = np.lib.stride_tricks.sliding_window_view(samples.astype(np.float64), window)[::hop]
    level = np.log(np.sqrt((frames**2).mean(axis=1)) + 1e-9)
    band = butter(2, [15, 60], "bandpass", fs=SR / hop, output="sos")
    return float(sosfiltfilt(band, level).std())


def _sing(signal: np.ndarray):
    f0 = track(signal, SR)
    found = syllables(signal, SR, f0)
    assert len(found) == 4
    alignment = align(found, [57, 60, 62, 57], [0.5, 1.3, 2.1, 2.9], last_end_s=4.1,
                      voiced_s=f0.times_s[f0.voiced])
    contour = sung_contour(alignment.sung, "natural", seed=1)
    plain = retune(signal, SR, alignment, contour)
    held = synthesise_held(analyse(signal, SR, f0), SR, f0, alignment.time_map, contour)
    return alignment, plain, join_held(plain, held), held


def test_held_vowels_are_smoother_than_overlap_add(rough_speech) -> None:
    alignment, plain, joined, held = _sing(rough_speech)
    assert len(held) == 4 and len(joined.samples) == len(plain.samples)
    for note in alignment.sung:
        a = round((note.start_s + 0.15 - plain.start_s) * SR)
        b = round((note.end_s - 0.1 - plain.start_s) * SR)
        assert _flutter(joined.samples[a:b]) < 0.3 * _flutter(plain.samples[a:b])


def test_the_joins_have_no_clicks(rough_speech) -> None:
    _, plain, joined, _ = _sing(rough_speech)
    jumps = np.abs(np.diff(joined.samples.astype(np.float64), 2))
    usual = np.percentile(np.abs(np.diff(plain.samples.astype(np.float64), 2)), 99.9)
    assert jumps.max() < 2.0 * usual


def test_only_long_voiced_stretches_are_held() -> None:
    from engine.retune import TimeMap

    voiced = np.zeros(100, bool)
    voiced[10:14] = True  # 40 ms: too short to hold
    voiced[30:60] = True  # 300 ms
    times = np.arange(100) * 0.01
    spans = held_spans(voiced, 0.01, times, TimeMap(np.array([0.0, 1.0]), np.array([0.0, 2.0])))
    assert len(spans) == 1
    assert spans[0].start_s == pytest.approx(0.6 + 0.05) and spans[0].end_s == pytest.approx(1.2)
