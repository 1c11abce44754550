import contextlib
import io
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from mutagen.ogg import OggPage

from engine.audio import (
    BadAudio,
    decode,
    decoded_true_peak_dbtp,
    encode,
    encode_true_peak,
    integrated_loudness,
    limiter_gain,
    loudness_gain,
    mastering_gain,
    true_peak_dbtp,
    weighted_energy,
    window_levels_dbfs,
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


@pytest.mark.parametrize("rate", [22050, 48000])
def test_opus_starts_at_zero_and_ends_with_the_samples(rate: int) -> None:
    """RFC 7845: the last granule position is the pre-skip plus the samples (at 48 kHz), so
    players read the file as starting at 0 and as long as what was encoded."""
    samples = 0.3 * np.sin(2 * np.pi * 440 * np.arange(round(rate * 3.3)) / rate)
    pages = []
    with contextlib.suppress(EOFError):
        source = io.BytesIO(encode(samples, rate, "ogg"))
        while True:
            pages.append(OggPage(source))  # type: ignore[no-untyped-call]
    pre_skip = int.from_bytes(pages[0].packets[0][10:12], "little")  # in OpusHead
    assert pages[-1].position == pre_skip + math.ceil(samples.size * 48000 / rate)


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



def _whole_signal_lufs(samples: np.ndarray, rate: int, envelope: np.ndarray | None = None
                       ) -> float:
    """BS.1770 as written: the whole clip K-weighted at once (times the envelope when given),
    squared, 400 ms blocks every 100 ms by a running sum, the two gates."""
    from pyloudnorm.iirfilter import IIRfilter
    from scipy.signal import sosfilt

    sos = np.array([np.concatenate([f.b, f.a]) for f in (
        IIRfilter(4.0, 1 / np.sqrt(2), 1500.0, rate, "high_shelf"),
        IIRfilter(0.0, 0.5, 38.0, rate, "high_pass"))])
    weighted = sosfilt(sos, samples.astype(np.float64), axis=0)
    if envelope is not None:
        weighted = weighted * envelope.reshape((-1,) + (1,) * (weighted.ndim - 1))
    power = weighted**2 if weighted.ndim == 1 else np.sum(weighted**2, axis=1)
    block, step = int(0.4 * rate), int(0.1 * rate)
    power = np.pad(power, (0, max(0, block - len(power))))
    energy = np.concatenate([[0.0], np.cumsum(power)])
    starts = np.arange(0, len(power) - block + 1, step)
    means = (energy[starts + block] - energy[starts]) / block
    with np.errstate(divide="ignore"):
        levels = -0.691 + 10 * np.log10(means)
    if not (levels > -70).any():
        return float("-inf")
    relative = -0.691 + 10 * np.log10(means[levels > -70].mean()) - 10
    return float(-0.691 + 10 * np.log10(means[levels > max(relative, -70)].mean()))


@pytest.mark.parametrize("rate", [32000, 44100])  # 44.1 kHz: blocks off the runs' grid
@pytest.mark.parametrize("channels", [1, 2])
def test_loudness_from_stretch_energies_is_the_whole_signals(rate: int, channels: int) -> None:
    """Filtered a chunk at a time and kept as energies between block and run edges, the
    loudness is what weighting the whole clip gives, also under a gain held over runs of 32
    samples, and for clips shorter than a block or a chunk, silence and nothing."""
    rng = np.random.default_rng(7)
    length = round(rate * 4.37)  # more than one chunk, blocks and runs not ending together
    swell = np.linspace(0.01, 1, length) ** 2
    clip = (0.2 * rng.standard_normal((length, channels)) * swell[:, None]).astype(np.float32)
    clip[: rate // 2] = 0  # half a second of silence under the gates
    clip = clip[:, 0] if channels == 1 else clip
    run_gains = rng.uniform(0.3, 1.0, -(-length // 32)).astype(np.float32)
    envelope = np.repeat(run_gains, 32)[:length]
    energy = weighted_energy(clip, rate, hold=32)
    assert energy.lufs() == pytest.approx(_whole_signal_lufs(clip, rate), abs=1e-9)
    assert integrated_loudness(clip, rate) == pytest.approx(energy.lufs(), abs=1e-12)
    assert energy.lufs(run_gains) == pytest.approx(
        _whole_signal_lufs(clip, rate, envelope), abs=1e-9)
    assert energy.lufs(run_gains) < energy.lufs() - 1.0
    for short in (clip[-rate // 5:], clip[-1000:]):
        assert integrated_loudness(short, rate) == pytest.approx(
            _whole_signal_lufs(short, rate), abs=1e-9)
    assert integrated_loudness(np.zeros_like(clip), rate) == float("-inf")
    assert integrated_loudness(clip[:0], rate) == float("-inf")


@pytest.mark.parametrize(("rate", "channels"), [(32000, 1), (44100, 2), (22050, 1),
                                              (48000, 2)])
def test_the_encoders_pieces_are_the_whole_signal_resampled(rate: int, channels: int) -> None:
    """Clipped and resampled a piece at a time (so a song's 48 kHz copy is never held whole),
    the samples handed to the encoder are those of resampling all at once, bit for bit."""
    from scipy.signal import resample_poly

    from engine.audio import ENCODE_CHUNK, _resampled_pieces

    rng = np.random.default_rng(5)
    length = 2 * ENCODE_CHUNK + 12345
    clip = (0.6 * rng.standard_normal((length, channels))).astype(np.float32)
    clip = clip[:, 0] if channels == 1 else clip
    pieces = list(_resampled_pieces(clip, rate, 48000))
    assert len(pieces) == 3 and all(p.dtype == np.float32 for p in pieces)
    whole = resample_poly(np.clip(clip.astype(np.float64), -1, 1), 48000, rate, axis=0)
    assert np.array_equal(np.concatenate(pieces), whole.astype(np.float32))
    assert [len(p) for p in _resampled_pieces(clip[:0], rate, 48000)] == [0]


def test_a_minute_is_measured_mastered_and_encoded_without_copies_of_it() -> None:
    """A song's minute (7.3 MB of float32) is measured, mastered and encoded a piece at a time:
    no float64 copy of it, or of its 48 kHz or 4x oversampled versions, is held whole (they
    took 58, 81 and 83 MB when they were)."""
    import tracemalloc

    rate = 32000
    t = np.arange(60 * rate) / rate
    rng = np.random.default_rng(4)
    song = (0.3 * rng.standard_normal(len(t)) * (1 + np.sin(np.pi * t))).astype(np.float32)

    def held_mb(work: Callable[[], object]) -> float:
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            work()
            return (tracemalloc.get_traced_memory()[1] - before) / 2**20
        finally:
            tracemalloc.stop()

    size_mb = song.nbytes / 2**20
    assert held_mb(lambda: integrated_loudness(song, rate)) < 0.5 * size_mb
    envelope = mastering_gain(song, rate, -14.0, -2.5)
    assert held_mb(lambda: mastering_gain(song, rate, -14.0, -2.5)) < 4 * size_mb
    master = song * envelope
    assert true_peak_dbtp(master, rate) == pytest.approx(-2.5, abs=0.01)  # a loud master
    assert held_mb(lambda: encode_true_peak(master, rate, "ogg")) < 6 * size_mb


def test_short_term_levels_side_by_side_and_overlapping() -> None:
    """Windows side by side (window = hop: their mean squares) and overlapping windows (a
    running sum) measure the same windows alike; a clip shorter than a window is one
    window; silence is -200 dBFS."""
    rng = np.random.default_rng(2)
    rising = (rng.normal(0, 0.1, 48000) * np.linspace(0.01, 1, 48000)).astype(np.float32)
    side_by_side = window_levels_dbfs(rising, 48000, 0.01, 0.01)
    overlapping = window_levels_dbfs(rising, 48000, 0.01, 0.005)
    assert len(side_by_side) == 100 and len(overlapping) == 199
    assert np.allclose(side_by_side, overlapping[::2], atol=1e-4)
    first = 10 * np.log10(np.mean(rising[:480].astype(np.float64) ** 2))
    assert side_by_side[0] == pytest.approx(first, abs=1e-9)
    assert side_by_side[-1] > side_by_side[0] + 30  # the clip rises by 40 dB
    assert len(window_levels_dbfs(rising[:100], 48000, 0.01, 0.01)) == 1
    silence = window_levels_dbfs(np.zeros(960, np.float32), 48000, 0.01, 0.01)
    assert silence.tolist() == [-200.0, -200.0]

def test_true_peak_finds_the_peak_between_samples() -> None:
    # A sine at a quarter of the rate, 45 degrees off: every sample is at +-0.707 (-3 dB),
    # the wave itself reaches 1.0 (0 dBTP) between them.
    rate = 48000
    sine = np.sin(2 * np.pi * np.arange(rate) / 4 + np.pi / 4)
    assert 20 * np.log10(np.abs(sine).max()) == pytest.approx(-3.01, abs=0.01)
    assert true_peak_dbtp(sine, rate) == pytest.approx(0.0, abs=0.2)
    assert true_peak_dbtp(np.stack([sine * 0.5, sine], axis=1), rate) == pytest.approx(0.0, abs=0.2)
    assert true_peak_dbtp(np.zeros(100), rate) == float("-inf")


def _loud_song_like(rate: int = 32000) -> np.ndarray:
    """Two seconds of chords and noise squeezed to a 0.95 sample peak, as the mix is today."""
    t = np.arange(2 * rate) / rate
    tones = sum(np.sin(2 * np.pi * f * t) for f in (110, 220, 277, 330, 440, 1320))
    noise = np.random.default_rng(3).standard_normal(len(t))
    mix = tones + 2 * noise
    mix = mix * (3.0 / np.abs(mix).max())  # 10 dB too hot for the limiter
    limited: np.ndarray = (mix * limiter_gain(mix, rate)).astype(np.float32)
    return limited


def test_the_limiter_can_hold_the_true_peak() -> None:
    rate = 32000
    song = _loud_song_like(rate)
    assert true_peak_dbtp(song, rate) > -0.5  # a 0.95 sample peak, and more between samples
    limited = song * limiter_gain(song, rate, ceiling_dbtp=-2.0)
    assert true_peak_dbtp(limited, rate) <= -2.0 + 0.02
    assert np.median(limiter_gain(song, rate, ceiling_dbtp=-2.0)) > 0.5


@pytest.mark.parametrize("fmt", ["ogg", "mp3"])
def test_encoded_true_peak_stays_under_the_ceiling(fmt: str) -> None:
    rate = 32000
    song = _loud_song_like(rate)
    assert decoded_true_peak_dbtp(encode(song, rate, fmt)) > -0.5  # plainly encoded: over
    data, _ = encode_true_peak(song, rate, fmt, ceiling_dbtp=-1.0)
    assert decoded_true_peak_dbtp(data) <= -1.0
    assert decoded_true_peak_dbtp(data) > -2.5  # pulled down by the excess, not much more
    decoded, _ = sf.read(io.BytesIO(data))
    assert len(decoded) > 0


@pytest.mark.parametrize("fmt", ["ogg", "mp3", "wav"])
def test_the_decoded_true_peak_is_the_whole_files(fmt: str) -> None:
    """Measured only where the peak can be, it is the peak of the whole decoded file
    (libsndfile's decoding, every sample oversampled), to a hundredth of a dB."""
    rate = 32000
    song = _loud_song_like(rate)
    stereo = np.stack([0.5 * song, 0.4 * song[::-1]], axis=1)
    for samples in (song, stereo):
        data = encode(samples, rate, fmt)
        whole, whole_rate = sf.read(io.BytesIO(data), dtype="float64", always_2d=True)
        assert decoded_true_peak_dbtp(data) == pytest.approx(
            true_peak_dbtp(whole, whole_rate), abs=0.01)


@pytest.mark.parametrize("fmt", ["ogg", "mp3"])
def test_stereo_is_measured_mastered_and_encoded_as_two_channels(fmt: str) -> None:
    """BS.1770 sums the channels' power (the same sound in both reads 3 LU louder), the
    master follows the louder channel, and the file keeps both channels apart."""
    rate = 32000
    song = _loud_song_like(rate)
    quiet = np.stack([song, 0.1 * song], axis=1)
    both = np.stack([song, song], axis=1)
    assert integrated_loudness(both, rate) == pytest.approx(
        integrated_loudness(song, rate) + 3.01, abs=0.01)
    envelope = mastering_gain(quiet, rate, -14.0, -2.5)
    assert envelope.shape == (len(song), 1)
    assert true_peak_dbtp(quiet * envelope, rate) <= -2.5 + 0.02
    data, _ = encode_true_peak(quiet * envelope, rate, fmt)
    decoded, _ = sf.read(io.BytesIO(data), always_2d=True)
    assert decoded.shape[1] == 2 and decoded_true_peak_dbtp(data) <= -1.0
    left, right = np.sqrt(np.mean(decoded**2, axis=0))
    assert 20 * np.log10(left / right) == pytest.approx(20.0, abs=1.0)
