from pathlib import Path

import numpy as np

from engine.audio import decode_file
from engine.notes import Syllable, comfortable_range, phrases, syllables
from engine.pitch import track
from tests.engine.test_pitch import harmonic_tone


def test_voiced_bursts_are_syllables() -> None:
    sr = 22050
    signal = np.zeros(int(3.0 * sr), np.float32)
    starts = [0.2, 0.7, 1.3, 1.8, 2.4]
    for start in starts:
        n = int(0.25 * sr)
        envelope = np.hanning(n).astype(np.float32) ** 0.5
        tone = harmonic_tone(np.full(n, 180.0), sr) * envelope
        signal[int(start * sr): int(start * sr) + n] += tone
    found = syllables(signal, sr, track(signal, sr))
    assert len(found) == len(starts)
    for syllable, start in zip(found, starts, strict=True):
        assert abs(syllable.onset_s - start) < 0.08
        assert syllable.voiced_s > 0.1
        assert syllable.start_s <= syllable.onset_s < syllable.voiced_end_s <= syllable.end_s


def test_speech_syllables_and_range(speech_clip: Path) -> None:
    audio = decode_file(speech_clip)
    pitch = track(audio.samples, audio.sample_rate)
    found = syllables(audio.samples, audio.sample_rate, pitch)
    # 14 s of read English at about three to five syllables a second.
    assert 35 <= len(found) <= 75
    onsets = [s.onset_s for s in found]
    assert onsets == sorted(onsets)
    low, high = comfortable_range(pitch)
    assert high - low == 12 and 48 <= low <= 58  # a woman's speaking voice, around 210 Hz


def test_silence_has_no_syllables() -> None:
    silence = np.zeros(22050, np.float32)
    assert syllables(silence, 22050, track(silence, 22050)) == []


def _spoken(onsets_s: list[float], nucleus_s: float = 0.12) -> list[Syllable]:
    """Syllables whose sound starts 40 ms before the nucleus and ends with it."""
    return [Syllable(t - 0.04, t, t + nucleus_s, t + nucleus_s) for t in onsets_s]


def test_phrases_end_at_pauses() -> None:
    # Two breath groups of 4 and 3 syllables with half a second between them.
    found = _spoken([0.0, 0.2, 0.4, 0.6, 1.3, 1.5, 1.7])
    assert phrases(found) == [4, 3]


def test_a_long_breath_group_is_split_where_it_pauses_most() -> None:
    onsets = [0.2 * i for i in range(20)]
    onsets[8:] = [t + 0.1 for t in onsets[8:]]  # a slight hesitation before the ninth
    assert phrases(_spoken(onsets)) == [8, 12]


def test_a_lone_syllable_joins_its_nearer_neighbour() -> None:
    found = _spoken([0.0, 0.2, 0.4, 1.0, 1.7, 1.9])
    assert phrases(found) == [4, 2]
    assert phrases(_spoken([0.0])) == [1]
    assert phrases([]) == []
