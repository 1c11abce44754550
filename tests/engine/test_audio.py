import io
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from engine.audio import (
    BadAudio,
    decode,
    encode,
    integrated_loudness,
    limiter_gain,
    loudness_gain,
)
from tests.conftest import ffmpeg_make


@pytest.mark.parametrize(
    ("args", "suffix"),
    [
        (["-c:a", "libopus"], ".ogg"),
        (["-c:a", "libmp3lame"], ".mp3"),
        (["-c:a", "aac"], ".m4a"),
        (["-c:a", "flac", "-ar", "96000"], ".flac"),
        (["-ar", "8000"], ".wav"),
        (["-c:a", "libopus"], ".webm"),
        (["-ac", "2", "-c:a", "aac"], ".mp4"),
    ],
)
def test_decodes_what_people_send(speech_clip: Path, args: list[str], suffix: str) -> None:
    data = ffmpeg_make("-i", str(speech_clip), *args, suffix=suffix)
    audio = decode(data, sample_rate=16000)
    assert audio.sample_rate == 16000 and audio.samples.ndim == 1
    assert audio.duration_s == pytest.approx(13.9, abs=0.15)
    assert not audio.truncated
    assert 0.01 < np.sqrt(np.mean(audio.samples**2)) < 1.0


def test_decodes_the_sound_of_a_video_note(speech_clip: Path) -> None:
    data = ffmpeg_make("-f", "lavfi", "-i", "color=c=black:s=64x64:d=14", "-i",
                       str(speech_clip), "-shortest", "-c:v", "libx264", "-c:a", "aac",
                       suffix=".mp4")
    assert decode(data).duration_s == pytest.approx(13.9, abs=0.2)


def test_long_clips_are_cut_to_a_minute() -> None:
    data = ffmpeg_make("-f", "lavfi", "-i", "sine=f=220:d=600", "-ar", "8000", suffix=".wav")
    audio = decode(data, sample_rate=8000)
    assert audio.truncated and audio.duration_s == pytest.approx(60.0)


def test_nan_and_infinite_samples_become_silence() -> None:
    samples = np.sin(np.linspace(0, 2000, 16000)).astype(np.float32)
    samples[100:200] = np.nan
    samples[300] = np.inf
    buffer = io.BytesIO()
    sf.write(buffer, samples, 16000, subtype="FLOAT", format="WAV")
    audio = decode(buffer.getvalue(), sample_rate=16000)
    assert np.isfinite(audio.samples).all() and np.abs(audio.samples).max() <= 1.0


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"\x00" * 5000, "not audio"),
        (b"just some text that is not audio at all\n" * 50, "not audio"),
        (b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 20, "not audio|no sound"),
        (b"x" * (21 * 1024 * 1024), "the limit is 20 MB"),
    ],
    ids=["empty", "zeros", "text", "png-header", "21-MB"],
)
def test_bad_files_get_one_clear_message(data: bytes, message: str) -> None:
    with pytest.raises(BadAudio, match=message):
        decode(data)


def test_a_picture_has_no_sound(shared_data: Path, tmp_path: Path) -> None:
    png = ffmpeg_make("-f", "lavfi", "-i", "color=c=red:s=32x32", "-frames:v", "1",
                      suffix=".png")
    with pytest.raises(BadAudio, match=r"no sound|not audio"):
        decode(png)


def test_a_truncated_file_gives_what_is_there(speech_clip: Path) -> None:
    audio = decode(speech_clip.read_bytes()[:60000])
    assert 2.0 < audio.duration_s < 13.0


def test_opus_keeps_a_minute_under_a_megabyte() -> None:
    rng = np.random.default_rng(0)
    minute = (0.3 * rng.standard_normal(44100 * 60)).astype(np.float32)
    data = encode(minute, 44100, "ogg")
    assert data[:4] == b"OggS" and len(data) < 1_000_000


def test_loudness_helpers() -> None:
    tone = (0.1 * np.sin(2 * np.pi * 440 * np.arange(44100 * 3) / 44100)).astype(np.float32)
    gain = loudness_gain(tone, 44100, -14.0)
    assert integrated_loudness(tone * gain, 44100) == pytest.approx(-14.0, abs=0.1)
    assert loudness_gain(np.zeros(44100, np.float32), 44100, -14.0) == 1.0
    rng = np.random.default_rng(1)
    loud = (0.15 * rng.standard_normal(44100)).astype(np.float32)
    loud[20000:20010] = 3.0
    envelope = limiter_gain(loud, 44100)
    assert np.all(np.abs(loud * envelope) <= 0.95 + 1e-6)
    assert envelope.max() <= 1.0 and np.median(envelope) > 0.9  # only the peaks are pulled down
    assert np.all(limiter_gain(loud * 0.1, 44100) == 1.0)
