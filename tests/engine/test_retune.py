import numpy as np
import pytest

from engine.notes import syllables
from engine.pitch import hz_to_midi, track
from engine.retune import align, pitch_contour, retune
from tests.engine.test_pitch import harmonic_tone

SR = 22050


@pytest.fixture(scope="module")
def voice():
    """Four voiced syllables at a speaking pitch that wanders (140-170 Hz)."""
    signal = np.zeros(int(2.4 * SR), np.float32)
    for i, start in enumerate([0.2, 0.75, 1.25, 1.8]):
        n = int(0.3 * SR)
        contour = np.linspace(140 + 10 * i, 150 + 5 * i, n)
        signal[int(start * SR): int(start * SR) + n] = harmonic_tone(contour, SR) * np.hanning(n)
    found = syllables(signal, SR, track(signal, SR))
    assert len(found) == 4
    return signal, found


def test_alignment_puts_onsets_on_notes(voice) -> None:
    _, found = voice
    onsets = [1.0, 1.5, 2.0, 3.0]
    alignment = align(found, [60, 62, 64, 67], onsets, last_end_s=4.0)
    assert [n.start_s for n in alignment.sung] == onsets
    assert all(n.end_s > n.start_s for n in alignment.sung)
    for syllable, onset in zip(found, onsets, strict=True):
        assert alignment.time_map.to_output(syllable.onset_s) == pytest.approx(onset)
    assert np.all(np.diff(alignment.time_map.input_s) > 0)
    assert np.all(np.diff(alignment.time_map.output_s) >= 0)


@pytest.mark.parametrize("tuning", ["natural", "robot"])
def test_retuned_voice_sings_the_notes(voice, tuning) -> None:
    signal, found = voice
    pitches = [55, 59, 62, 57]
    alignment = align(found, pitches, [0.5, 1.0, 1.5, 2.25], last_end_s=3.0)
    sung = retune(signal, SR, alignment, tuning=tuning)
    after = track(sung.samples, SR)
    times = after.times_s + sung.start_s
    hits = total = 0
    for note in alignment.sung:
        inside = (times >= note.start_s + 0.03) & (times < note.end_s) & after.voiced
        total += int(inside.sum())
        hits += int((np.abs(hz_to_midi(after.f0_hz[inside]) - note.pitch) < 0.5).sum())
    assert total > 50 and hits / total > 0.9


def test_robot_has_no_vibrato(voice) -> None:
    _, found = voice
    alignment = align(found, [60, 62, 64, 65], [0.5, 1.0, 1.5, 2.0], last_end_s=3.5)
    _, natural = pitch_contour(alignment, "natural")
    _, robot = pitch_contour(alignment, "robot")
    assert len(set(np.round(robot, 3))) == 4
    assert len(set(np.round(natural, 3))) > 8  # vibrato on the long last note
