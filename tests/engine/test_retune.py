import numpy as np
import pytest

from engine.notes import syllables
from engine.pitch import hz_to_midi, track
from engine.retune import Analyses, SungNote, align, retune, sung_contour
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
    sung = retune(signal, SR, alignment, sung_contour(alignment.sung, tuning, seed=1))
    after = track(sung.samples, SR)
    times = after.times_s + sung.start_s
    hits = total = 0
    for note in alignment.sung:
        inside = (times >= note.start_s + 0.03) & (times < note.end_s) & after.voiced
        total += int(inside.sum())
        hits += int((np.abs(hz_to_midi(after.f0_hz[inside]) - note.pitch) < 0.5).sum())
    assert total > 50 and hits / total > 0.9


def test_parts_from_one_stretch_share_one_analysis(voice) -> None:
    """A chorus and the second voice above it: one Praat analysis, the same voices as when each
    is analysed apart; another stretch is analysed on its own."""
    signal, found = voice
    onsets = [0.5, 1.0, 1.5, 2.25]
    lead = align(found, [55, 59, 62, 57], onsets, last_end_s=3.0)
    above = align(found, [59, 62, 66, 60], onsets, last_end_s=3.0)
    later = align(found[1:], [59, 62, 66], onsets[1:], last_end_s=3.0)
    analyses = Analyses()
    for index, alignment in enumerate([lead, above, lead, later]):
        contour = sung_contour(alignment.sung, "natural", seed=index)
        shared = retune(signal, SR, alignment, contour, analyses=analyses)
        alone = retune(signal, SR, alignment, contour)
        assert shared.start_s == alone.start_s
        np.testing.assert_array_equal(shared.samples, alone.samples)
        assert len(analyses) == (1 if index < 3 else 2)


LONG_NOTES = (SungNote(60, 0.0, 1.2), SungNote(64, 1.2, 2.4), SungNote(62, 2.6, 2.8),
              SungNote(60, 2.8, 4.0))


def _inside(times: np.ndarray, note: SungNote, after_s: float = 0.0) -> np.ndarray:
    return (times >= note.start_s + after_s) & (times < note.end_s)


def test_robot_steps_hard_with_no_vibrato() -> None:
    times, midi = sung_contour(LONG_NOTES, "robot", seed=1)
    for note in LONG_NOTES:
        assert np.all(midi[_inside(times, note)] == note.pitch)


def test_long_notes_get_a_singers_vibrato() -> None:
    times, midi = sung_contour(LONG_NOTES, "natural", seed=1)
    held = _inside(times, LONG_NOTES[0], after_s=0.5)
    wobble = (midi[held] - LONG_NOTES[0].pitch) * 100
    assert 20 <= np.sqrt(2) * wobble.std() <= 45  # cents: a pop singer's depth
    spectrum = np.abs(np.fft.rfft(wobble - wobble.mean(), 4096))
    rate = np.fft.rfftfreq(4096, times[1] - times[0])[np.argmax(spectrum)]
    assert 4.5 <= rate <= 7.0
    # It starts early enough to be heard on a note of a third of a second.
    early = _inside(times, LONG_NOTES[0]) & (times < 0.35)
    assert np.ptp(midi[early & (times > 0.2)]) * 100 > 5
    # Short notes get none: only the drift and fine fluctuation of a few cents.
    shorts = tuple(SungNote(60, 0.3 * i, 0.3 * i + 0.2) for i in range(8))
    _, plain = sung_contour(shorts, "natural", seed=1)
    assert np.ptp(plain) * 100 < 45  # a long note's vibrato alone spans 60 cents or more


def test_a_new_note_overshoots_and_settles() -> None:
    times, midi = sung_contour(LONG_NOTES, "natural", seed=1)
    onset = _inside(times, LONG_NOTES[1]) & (times < 1.45)
    assert midi[onset].max() > 64.15  # goes past the note a little
    settled = (times >= 1.3) & (times < 1.5)
    assert np.abs(np.median(midi[settled]) - 64) < 0.15
    before = (times > 1.0) & (times < 1.2)
    assert midi[before].min() < 60.0  # prepares with a small dip the other way


def test_the_contour_is_seeded() -> None:
    _, one = sung_contour(LONG_NOTES, "natural", seed=1)
    _, again = sung_contour(LONG_NOTES, "natural", seed=1)
    _, other = sung_contour(LONG_NOTES, "natural", seed=2)
    assert np.array_equal(one, again) and not np.array_equal(one, other)


def test_a_part_sung_far_slower_than_it_was_spoken_keeps_its_end(voice) -> None:
    """2.2 s of speech sung over 12 s (more than the three times Praat's overlap-add holds):
    the retuned voice lasts the whole part and its last note still sounds."""
    signal, found = voice
    alignment = align(found, [55, 59, 62, 57], [1.0, 4.0, 7.0, 10.0], last_end_s=13.0)
    sung = retune(signal, SR, alignment, sung_contour(alignment.sung, "natural", seed=1))
    sung_s = alignment.time_map.output_s[-1] - alignment.time_map.output_s[0]
    assert sung_s > 3.5 * (alignment.time_map.input_s[-1] - alignment.time_map.input_s[0])
    assert len(sung.samples) == round(sung_s * SR)
    last = alignment.sung[-1]
    start = round((last.start_s - sung.start_s) * SR)
    end = round((last.end_s - sung.start_s) * SR)
    assert np.sqrt(np.mean(sung.samples[start:end] ** 2)) > 0.01
