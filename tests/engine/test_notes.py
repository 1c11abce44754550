from pathlib import Path

import numpy as np

from engine.audio import decode_file
from engine.notes import comfortable_range, syllables
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
