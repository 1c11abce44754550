"""The singing benchmark's measures (benchmarks/singing_measures.py) on synthetic signals whose
answers are known."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks import singing_measures as sm

RATE = 32000


def harmonic_tone(f0_hz: np.ndarray, amplitude: np.ndarray | float = 0.3) -> np.ndarray:
    """A voice-like tone along an f0 contour (one value per sample): ten harmonics, 1/k."""
    phase = 2 * np.pi * np.cumsum(f0_hz) / RATE
    tone = sum(np.sin(k * phase) / k for k in range(1, 11))
    return np.asarray(amplitude * tone / 2, dtype=np.float64)


def seconds(duration_s: float) -> np.ndarray:
    return np.arange(round(duration_s * RATE)) / RATE


def one_note(midi: float, start_s: float, end_s: float) -> sm.Notes:
    return sm.Notes.of([(midi, start_s, end_s)])


def test_a_vibrato_tone_gives_its_rate_and_depth() -> None:
    t = seconds(2.0)
    f0 = 220.0 * 2 ** (50.0 * np.sin(2 * np.pi * 5.5 * t) / 1200)
    notes = one_note(57.0, 0.0, 2.0)  # A3, 220 Hz
    times, tracked = sm.praat_pitch(harmonic_tone(f0), RATE, *sm.pitch_range_hz(notes))
    (depth, rate), = sm.note_vibratos(times, tracked, notes)
    assert rate == pytest.approx(5.5, abs=0.3)
    assert depth == pytest.approx(50.0, abs=6.0)
    assert np.mean(sm.movement_cents(times, tracked, notes)) == pytest.approx(
        4 * 50 * 5.5 / 100, rel=0.15)


def test_vibrato_of_a_contour_directly() -> None:
    t = np.arange(100) * sm.HOP_S
    depth, rate = sm.vibrato(30.0 * np.sin(2 * np.pi * 6.0 * t) + 200.0 * t)
    assert depth == pytest.approx(30.0, abs=2.0)
    assert rate == pytest.approx(6.0, abs=0.2)


def test_a_steady_tone_does_not_move_and_is_on_its_note() -> None:
    notes = one_note(57.0, 0.1, 1.4)
    times, f0 = sm.praat_pitch(harmonic_tone(np.full(len(seconds(1.5)), 220.0)), RATE,
                               *sm.pitch_range_hz(notes))
    deviation = sm.deviation_cents(times, f0, notes)
    assert len(deviation) > 100
    assert np.all(np.abs(deviation) < 5)
    assert np.median(sm.movement_cents(times, f0, notes)) < 0.5


def test_amplitude_flutter_is_rougher_than_a_flat_tone() -> None:
    t = seconds(1.0)
    f0 = np.full(len(t), 200.0)
    flat = sm.roughness(harmonic_tone(f0), RATE, 1 / 200)
    fluttered = sm.roughness(harmonic_tone(f0, 0.3 * (1 + 0.3 * np.sin(2 * np.pi * 30 * t))),
                             RATE, 1 / 200)
    assert flat < 0.01
    assert fluttered > 10 * flat
    assert fluttered == pytest.approx(0.3 / np.sqrt(2), rel=0.25)


def test_a_click_is_counted_once_and_a_clean_tone_has_none() -> None:
    tone = 0.3 * np.sin(2 * np.pi * 220.0 * seconds(1.0))
    assert len(sm.clicks(tone, RATE)) == 0
    clicked = tone.copy()
    clicked[RATE // 2] += 0.15  # a one-sample spike
    found = sm.clicks(clicked, RATE)
    assert len(found) == 1
    assert found[0] == pytest.approx(0.5, abs=0.001)


def test_levels_between_notes_and_true_peak() -> None:
    t = seconds(2.0)
    loud = harmonic_tone(np.full(len(t), 220.0))
    quiet = np.where((t >= 0.8) & (t < 1.2), 0.01, 1.0) * loud  # 40 dB down between notes
    notes = sm.Notes.of([(57, 0.2, 0.8), (57, 1.2, 1.8)])
    inside_db, between_db = sm.level_between_notes_db(quiet, RATE, notes)
    assert inside_db - between_db == pytest.approx(40.0, abs=0.5)
    sine = 0.5 * np.sin(2 * np.pi * 1000 * t)
    assert sm.true_peak_dbtp(sine, RATE) == pytest.approx(20 * np.log10(0.5), abs=0.05)


def test_note_lengths_phrase_ends_and_inter_onsets() -> None:
    notes = sm.Notes.of([(60, 0.0, 0.1), (62, 0.125, 0.5), (64, 1.0, 1.75)])  # gap at 0.5
    assert sm.phrase_ends(notes).tolist() == [False, True, True]
    lengths = sm.note_lengths(notes)
    assert lengths["share_under_150_ms"] == pytest.approx(1 / 3, abs=1e-3)
    assert lengths["phrase_end_min_s"] == pytest.approx(0.375)
    # 120 BPM: a beat is 0.5 s; onsets 0.125 s then 0.875 s apart.
    assert sm.inter_onset_beats(notes, 120.0) == {"0.25": 1, "1.75": 1}


def test_word_error_rate_counts_all_words_together() -> None:
    assert sm.word_error_rate(["one two three", "four"], ["one two", "four"]) == 0.25
    assert np.isnan(sm.word_error_rate([""], ["anything"]))
