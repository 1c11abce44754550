"""Held vowels made by WORLD and joined into the overlap-add voice."""

import itertools

import numpy as np
import pytest
from scipy.signal import butter, sosfiltfilt

from engine import voice
from engine.notes import syllables
from engine.pitch import track
from engine.retune import align, retune, sung_contour
from engine.voice import analyse, held_spans, join_held, synthesise_held
from tests.engine.test_pitch import harmonic_tone

SR = 22050


@pytest.fixture(scope="module")
def rough_speech() -> np.ndarray:
    return rough_syllables()


def rough_syllables(hz: float = 140.0) -> np.ndarray:
    """Four short syllables of a rough voice about `hz`: the period jitters and the amplitude
    shimmers from one cycle to the next, as in speech, with a little breath noise."""
    rng = np.random.default_rng(3)
    signal = np.zeros(int(2.2 * SR), np.float32)
    for start in (0.2, 0.7, 1.2, 1.7):
        n = int(0.16 * SR)
        contour = hz * (1 + 0.03 * rng.standard_normal(n).cumsum() / np.sqrt(n))
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


def _band_levels_db(samples: np.ndarray) -> np.ndarray:
    """Energy (dB) in 0-0.5, 0.5-1.5, 1.5-3, 3-6 and 6-11 kHz."""
    power = np.abs(np.fft.rfft(samples.astype(np.float64))) ** 2
    hz = np.fft.rfftfreq(len(samples), 1 / SR)
    edges = [0, 500, 1500, 3000, 6000, SR / 2 + 1]
    return np.array([10 * np.log10(power[(hz >= lo) & (hz < hi)].sum())
                     for lo, hi in itertools.pairwise(edges)])


def test_synthesis_uses_an_fft_of_two_floor_periods(rough_speech, monkeypatch) -> None:
    """The 140 Hz voice's floor (about 110 Hz) needs a 1024-point FFT for cheaptrick's three
    periods, but two periods fit in 512: its held vowels are made on 257 bins and sound as
    they do with 513."""
    f0 = track(rough_speech, SR)
    half = analyse(rough_speech, SR, f0)
    monkeypatch.setattr(voice, "SYNTH_PERIODS", 3.0)
    full = analyse(rough_speech, SR, f0)
    assert half.log_spectrum.shape[1] == half.aperiodicity.shape[1] == 257
    assert full.log_spectrum.shape[1] == 513
    alignment, _, _, _ = _sing(rough_speech)
    contour = sung_contour(alignment.sung, "natural", seed=1)
    made = [np.concatenate([v.samples for v in synthesise_held(env, SR, f0,
                                                                alignment.time_map, contour)])
            for env in (half, full)]
    assert len(made[0]) == len(made[1])
    assert np.abs(_band_levels_db(made[0]) - _band_levels_db(made[1])).max() < 0.3
    error = ((made[0] - made[1]) ** 2).sum() / (made[1] ** 2).sum()
    assert 10 * np.log10(error) < -30


def test_a_voice_with_a_71_hz_floor_keeps_the_full_fft() -> None:
    """Two periods of 71 Hz do not fit in 512 points: the envelope keeps cheaptrick's 513 bins
    (with 257, the spectral valleys fill in)."""
    speech = rough_syllables(hz=75.0)
    assert analyse(speech, SR, track(speech, SR)).log_spectrum.shape[1] == 513


def test_only_long_voiced_stretches_are_held() -> None:
    from engine.retune import TimeMap

    voiced = np.zeros(100, bool)
    voiced[10:14] = True  # 40 ms: too short to hold
    voiced[30:60] = True  # 300 ms
    times = np.arange(100) * 0.01
    spans = held_spans(voiced, 0.01, times, TimeMap(np.array([0.0, 1.0]), np.array([0.0, 2.0])))
    assert len(spans) == 1
    assert spans[0].start_s == pytest.approx(0.6 + 0.05) and spans[0].end_s == pytest.approx(1.2)
