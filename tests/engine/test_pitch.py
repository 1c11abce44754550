from pathlib import Path

import mir_eval
import numpy as np
import pytest

from engine.audio import decode_file
from engine.pitch import hz_to_midi, midi_to_hz, track


def harmonic_tone(f0_hz: np.ndarray, sample_rate: int) -> np.ndarray:
    """A voice-like tone: ten harmonics with falling amplitude along an f0 contour."""
    phase = 2 * np.pi * np.cumsum(f0_hz) / sample_rate
    tone = np.zeros_like(phase)
    for k in range(1, 11):
        tone += np.sin(k * phase) / k
    return (0.2 * tone).astype(np.float32)


def test_tracks_a_gliding_tone_within_ten_cents() -> None:
    sr = 22050
    contour = np.geomspace(150.0, 300.0, 2 * sr)
    times, f0 = (lambda t: (t.times_s, t.f0_hz))(track(harmonic_tone(contour, sr), sr))
    inside = (times > 0.1) & (times < 1.9)
    expected = np.interp(times[inside], np.arange(len(contour)) / sr, contour)
    cents = 1200 * np.abs(np.log2(f0[inside] / expected))
    assert (f0[inside] > 0).all()
    assert np.median(cents) < 10


def test_silence_is_unvoiced_and_tiny_clips_give_an_empty_track() -> None:
    assert not track(np.zeros(22050, np.float32), 22050).voiced.any()
    assert track(np.zeros(100, np.float32), 22050).f0_hz.size == 0


def test_vocadito_accuracy(shared_data: Path) -> None:
    """The measured raw pitch accuracy is 0.98 (benchmarks/pitch_trackers.py): keep 0.95."""
    clip = shared_data / "singing" / "vocadito" / "vocadito_1.wav"
    audio = decode_file(clip, sample_rate=16000)
    result = track(audio.samples, audio.sample_rate)
    reference = np.loadtxt(clip.with_name("vocadito_1_f0.csv"), delimiter=",")
    scores = mir_eval.melody.evaluate(reference[:, 0], reference[:, 1], result.times_s,
                                      result.f0_hz)
    assert scores["Raw Pitch Accuracy"] > 0.95
    assert scores["Voicing Recall"] > 0.95


def test_conversions() -> None:
    assert hz_to_midi(440.0) == pytest.approx(69.0)
    assert midi_to_hz(60.0) == pytest.approx(261.6256, abs=1e-3)
