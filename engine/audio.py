"""Audio in and out: decoding what people send through an ffmpeg process (with limits),
encoding what they receive in this process through FFmpeg's libraries (PyAV); loudness, the
true-peak limiter and mastering."""

from __future__ import annotations

import io
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from functools import cache
from math import gcd
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.ndimage import maximum_filter1d, minimum_filter1d, uniform_filter1d
from scipy.signal import firwin, resample_poly, sosfilt

from engine.errors import InvalidRequest, ToolMissing

AUDIO_FORMATS = ("ogg", "mp3", "wav")
DECODE_TIMEOUT_S = 30.0
MAX_INPUT_BYTES = 20 * 1024 * 1024  # what a Telegram bot may download
MAX_INPUT_S = 60.0  # longer clips are cut to their first minute
LIMITER_BLOCK = 32
ACCEPTED = "a voice note or an audio file (OGG, MP3, M4A, WAV, FLAC, WebM or a video's sound)"
# The containers ffmpeg may read a clip as (its demuxer names), and pictures (which have no
# sound). Playlists and scripts (HLS, DASH, concat) are left out: an HLS playlist sent as a
# "voice note" made ffmpeg open a file on this machine named in it, which was then sung back.
DEMUXERS = ("ogg", "mp3", "wav", "w64", "flac", "mov", "matroska", "aac", "ac3", "eac3", "amr",
            "amrnb", "amrwb", "aiff", "caf", "asf", "avi", "au", "wv", "mpeg", "mpegts", "flv",
            "png_pipe", "jpeg_pipe", "gif", "webp_pipe", "bmp_pipe")


class BadAudio(InvalidRequest):
    """The input cannot be used as audio; the message says why and what is accepted."""


@dataclass(frozen=True)
class DecodedAudio:
    samples: np.ndarray  # mono float32 in -1..1
    sample_rate: int
    truncated: bool  # the input was longer than the limit and was cut

    @property
    def duration_s(self) -> float:
        return len(self.samples) / self.sample_rate


def decode(data: bytes, *, sample_rate: int = 22050, max_duration_s: float = MAX_INPUT_S,
           max_bytes: int = MAX_INPUT_BYTES) -> DecodedAudio:
    """Decode any audio ffmpeg reads to mono float samples at `sample_rate` Hz.

    ffmpeg runs without a shell, under a timeout (DECODE_TIMEOUT_S, 30 s), and its output is
    bounded by the duration limit; it reads only audio and video containers (DEMUXERS), never
    a playlist that names other files. Only the first audio stream is read; NaN and infinite
    samples become silence.

    Parameters
    ----------
    data : bytes
        The encoded file, at most `max_bytes`.
    sample_rate : int > 0
        Output rate (Hz).
    max_duration_s : float > 0
        Only the first this-many seconds are decoded (s); MAX_INPUT_S (60 s) by default.
    max_bytes : int > 0
        Largest input accepted (bytes); MAX_INPUT_BYTES (20 MiB) by default.

    Returns
    -------
    audio : DecodedAudio
        float32 samples in -1..1, at most round(max_duration_s * sample_rate) of them;
        `truncated` says when more was there.

    Raises
    ------
    BadAudio
        For empty, oversized, unreadable or soundless input, or one that took over the timeout.
    ToolMissing
        When ffmpeg is not installed.
    """
    if not data:
        raise BadAudio(f"the file is empty: send {ACCEPTED}")
    _check_size(len(data), max_bytes)
    with tempfile.TemporaryDirectory(prefix="singsong-decode-") as folder:
        source = Path(folder, "input")
        source.write_bytes(data)
        return _decode_path(source, sample_rate, max_duration_s)


def decode_file(path: Path, *, sample_rate: int = 22050,
                max_duration_s: float = MAX_INPUT_S) -> DecodedAudio:
    """decode() for a file on disk (checked against the same size limit, MAX_INPUT_BYTES).

    Parameters
    ----------
    path : Path
        The encoded file.
    sample_rate : int > 0
        Output rate (Hz).
    max_duration_s : float > 0
        Only the first this-many seconds are decoded (s).

    Returns
    -------
    audio : DecodedAudio

    Raises
    ------
    BadAudio
        For an oversized, unreadable or soundless file.
    ToolMissing
        When ffmpeg is not installed.
    FileNotFoundError
        When `path` does not exist.
    """
    _check_size(path.stat().st_size, MAX_INPUT_BYTES)
    return _decode_path(path, sample_rate, max_duration_s)


def _check_size(size: int, max_bytes: int) -> None:
    if size > max_bytes:
        raise BadAudio(f"the file is {size / 2**20:.1f} MB; the limit is "
                       f"{max_bytes / 2**20:.0f} MB")


def _decode_path(path: Path, sample_rate: int, max_duration_s: float) -> DecodedAudio:
    # Decode a little past the limit to learn whether there was more.
    limit_s = max_duration_s + 0.05
    command = [ffmpeg_path(), "-nostdin", "-hide_banner", "-loglevel", "error",
               "-format_whitelist", ",".join(DEMUXERS), "-i", str(path),
               "-map", "0:a:0", "-vn", "-ac", "1", "-ar", str(sample_rate),
               "-t", f"{limit_s:.3f}", "-f", "f32le", "pipe:1"]
    try:
        result = subprocess.run(command, capture_output=True, timeout=DECODE_TIMEOUT_S,
                                check=False)
    except subprocess.TimeoutExpired:
        raise BadAudio(f"the file took too long to read: send {ACCEPTED}") from None
    if result.returncode != 0 and not result.stdout:
        message = result.stderr.decode(errors="replace")
        if "matches no streams" in message:
            raise BadAudio(f"there is no sound in this file: send {ACCEPTED}")
        raise BadAudio(f"this is not audio SingSong can read: send {ACCEPTED}")
    usable = len(result.stdout) // 4 * 4
    samples = np.frombuffer(result.stdout[:usable], dtype="<f4")
    # Float WAVs can hold NaN or infinities; treat them as silence and clip the rest.
    samples = np.clip(np.nan_to_num(samples, nan=0.0, posinf=0.0, neginf=0.0), -1.0, 1.0)
    if samples.size == 0:
        raise BadAudio(f"there is no sound in this file: send {ACCEPTED}")
    max_samples = round(max_duration_s * sample_rate)
    truncated = samples.size > max_samples
    return DecodedAudio(samples[:max_samples].astype(np.float32), sample_rate, truncated)


@dataclass(frozen=True)
class _Codec:
    """How SingSong encodes one format: the container, the encoder, its rate and options."""

    container: str
    encoder: str
    sample_rate: int | None  # None: the samples' own
    options: dict[str, str]


FF_QP2LAMBDA = 118  # FFmpeg's unit of encoder quality
_CODECS = {
    # Opus in Ogg: what Telegram shows as a voice bubble; 64 kb/s keeps 60 s under 1 MB.
    # Encoder complexity 5 of 10 takes a third less time for files of the same size.
    "ogg": _Codec("ogg", "libopus", 48000, {"b": "64000", "vbr": "on", "application": "audio",
                                              "compression_level": "5"}),
    # LAME's variable bit rate at quality 4 (about 60 kb/s for a voice over a band).
    "mp3": _Codec("mp3", "libmp3lame", None, {"global_quality": str(4 * FF_QP2LAMBDA),
                                              "flags": "+qscale"}),
}


def ffmpeg_path() -> str:
    """The ffmpeg executable on PATH.

    Returns
    -------
    path : str

    Raises
    ------
    ToolMissing
        When ffmpeg is not installed.
    """
    path = shutil.which("ffmpeg")
    if path is None:
        raise ToolMissing("ffmpeg is not installed (Debian: apt-get install ffmpeg)")
    return path


def wav_bytes(samples: np.ndarray, sample_rate: int) -> bytes:
    """16-bit PCM WAV of mono or [frames, channels] float samples.

    Parameters
    ----------
    samples : np.ndarray [shape=(n,) or (n, channels)], float
        Clipped to -1..1 first.
    sample_rate : int > 0
        Their rate (Hz), written in the header.

    Returns
    -------
    data : bytes
    """
    buffer = io.BytesIO()
    sf.write(buffer, np.clip(samples, -1.0, 1.0), sample_rate, subtype="PCM_16", format="WAV")
    return buffer.getvalue()


def encode(samples: np.ndarray, sample_rate: int, fmt: str) -> bytes:
    """Encode mono, or [frames, 2] stereo, float samples to 'ogg' (Opus), 'mp3' or 'wav' bytes.

    In this process, through FFmpeg's libraries (PyAV): no process to start and no WAV to
    pipe, which took longer than the encoding itself (libopus at 64 kb/s VBR, LAME);
    bit-exact container headers, so the same samples give the same bytes.

    Parameters
    ----------
    samples : np.ndarray [shape=(n,) or (n, 2)], float
        Clipped to -1..1 first.
    sample_rate : int > 0
        Their rate (Hz). Opus is written at 48000 Hz (the samples are resampled); MP3 and WAV
        at the samples' own rate.
    fmt : {"ogg", "mp3", "wav"}
        The format; WAV is 16-bit PCM (wav_bytes).

    Returns
    -------
    data : bytes

    Raises
    ------
    InvalidRequest
        For an unknown format.
    """
    import av  # FFmpeg's libraries: loaded by the processes that encode, not on import

    if fmt == "wav":
        return wav_bytes(samples, sample_rate)
    codec = _CODECS.get(fmt)
    if codec is None:
        raise InvalidRequest(f"unknown audio format {fmt!r}: use one of {', '.join(AUDIO_FORMATS)}")
    rate = codec.sample_rate or sample_rate
    layout = "mono" if np.ndim(samples) == 1 else "stereo"
    # A seekable buffer lets the muxer finish the headers that hold the duration (the MP3
    # Xing frame count); players read it from there.
    buffer = io.BytesIO()
    with av.open(buffer, "w", format=codec.container, options={"fflags": "+bitexact"}) as out:
        stream = out.add_stream(codec.encoder, rate=rate, layout=layout,
                                options=dict(codec.options))
        assert isinstance(stream, av.AudioStream)
        # The first sample at time 0: left unset, the Ogg muxer counts Opus's pre-skip twice
        # (every granule position 312 samples late: players read the file as starting at
        # 6.5 ms and lasting that much longer).
        written = 0
        for piece in _resampled_pieces(samples, sample_rate, rate):
            # Packed floats: one row of the frames' samples, channels interleaved.
            frame = av.AudioFrame.from_ndarray(piece.reshape(1, -1), format="flt",
                                               layout=layout)
            frame.sample_rate = rate
            frame.pts, frame.time_base = written, Fraction(1, rate)
            written += len(piece)
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return buffer.getvalue()


ENCODE_CHUNK = 1 << 16  # samples clipped, resampled and handed to the encoder at a time
RESAMPLE_CONTEXT = 64  # samples either side of a piece that resampling reads (its taps: 10)


def _resampled_pieces(samples: np.ndarray, sample_rate: int, rate: int) -> Iterator[np.ndarray]:
    """The samples clipped to -1..1 and resampled to `rate` (scipy's resample_poly, in
    float64), as float32 pieces of about ENCODE_CHUNK: each is resampled with
    RESAMPLE_CONTEXT samples around it and starts on the same filter phase as in one go, so
    together they are the whole signal resampled, sample for sample."""
    length = len(samples)
    up, down = rate // gcd(rate, sample_rate), sample_rate // gcd(rate, sample_rate)
    step = max(ENCODE_CHUNK // down, 1) * down
    context = -(-RESAMPLE_CONTEXT // down) * down
    for start in range(0, max(length, 1), step):
        stop = min(start + step, length)
        low, high = max(start - context, 0), min(stop + context, length)
        piece = np.clip(np.asarray(samples[low:high], np.float64), -1.0, 1.0)
        if up != down:
            piece = _resample(piece, up, down)
        first = (start - low) * up // down
        # The last piece keeps all its resampled tail (the output rounds up, as in one go).
        count = len(piece) - first if stop == length else (stop - start) * up // down
        yield piece[first:first + count].astype(np.float32)


def fit_length(samples: np.ndarray, length: int) -> np.ndarray:
    """The samples cut to `length`, or padded with silence (zeros) up to it.

    Parameters
    ----------
    samples : np.ndarray [shape=(n,)]
    length : int >= 0
        Samples wanted.

    Returns
    -------
    np.ndarray [shape=(length,)], the samples' dtype
        A view of `samples` when cut; a new array when padded.
    """
    if len(samples) >= length:
        return samples[:length]
    return np.concatenate([samples, np.zeros(length - len(samples), samples.dtype)])


LOUDNESS_BLOCK_S = 0.4  # BS.1770's gating blocks: 400 ms long,
LOUDNESS_STEP_S = 0.1  # one starting every 100 ms
LOUDNESS_CHUNK = 1 << 16  # samples K-weighted at a time: the weighted copy is never held whole


def integrated_loudness(samples: np.ndarray, sample_rate: int) -> float:
    """Integrated loudness (ITU-R BS.1770-4; EBU R128's LUFS).

    K-weighting as pyloudnorm designs it, then 400 ms blocks every 100 ms with the absolute
    (-70 LUFS) and relative (-10 LU) gates (weighted_energy): a few milliseconds for a song.

    Parameters
    ----------
    samples : np.ndarray [shape=(n,) or (n, channels)], float in -1..1
        Mono, or channels whose powers are summed, each weighted 1 as left and right are.
    sample_rate : int > 0
        Their rate (Hz).

    Returns
    -------
    float
        LUFS; -inf for silence (no block over -70 LUFS). A clip shorter than 400 ms counts as
        one block padded with silence.
    """
    return weighted_energy(samples, sample_rate).lufs()


@dataclass(frozen=True)
class WeightedEnergy:
    """A clip's K-weighted energy (BS.1770) summed over stretches: all that its integrated
    loudness needs, also under a gain held over runs of samples (a limiter's envelope), in a
    few thousand numbers rather than the weighted samples.

    The stretches lie between the edges of the gating blocks (LOUDNESS_BLOCK_S long, one every
    LOUDNESS_STEP_S) and of the runs, so each block is a whole number of stretches and each
    stretch lies in one run.
    """

    energy: np.ndarray  # per stretch: the squared weighted samples summed, over the channels too
    run: np.ndarray  # per stretch: which run it lies in
    first: np.ndarray  # per gating block: its first stretch
    stop: np.ndarray  # per gating block: past its last stretch
    block: int  # samples per gating block

    def lufs(self, run_gains: np.ndarray | None = None) -> float:
        """Integrated loudness (LUFS), with each run's samples times its gain when given.

        Parameters
        ----------
        run_gains : np.ndarray [shape=(runs,)], float, or None
            A linear gain per run (weighted_energy's `hold` samples each), taken to apply to
            the weighted samples: the same as weighting the samples with that gain when it
            moves slowly against the K-filter (a limiter's envelope: within 0.0013 LU).

        Returns
        -------
        float
            LUFS; -inf when no block is over the -70 LUFS gate.
        """
        energy = (self.energy if run_gains is None else
                  self.energy * np.square(run_gains[self.run], dtype=np.float64))
        total = np.concatenate([[0.0], np.cumsum(energy)])
        power = (total[self.stop] - total[self.first]) / self.block
        with np.errstate(divide="ignore"):
            block_lufs = -0.691 + 10 * np.log10(power)
        gated = power[block_lufs > -70.0]
        if gated.size == 0:
            return float("-inf")
        relative = -0.691 + 10 * np.log10(gated.mean()) - 10.0
        final = power[block_lufs > max(relative, -70.0)]
        return float(-0.691 + 10 * np.log10(final.mean()))


def weighted_energy(samples: np.ndarray, sample_rate: int, hold: int | None = None
                    ) -> WeightedEnergy:
    """The samples through BS.1770's K-weighting filter (a high shelf, then the RLB high-pass),
    their energy summed between the edges of the gating blocks (and of runs of `hold`).

    Filtered LOUDNESS_CHUNK samples at a time, the filter's state carried across, in float64.

    Parameters
    ----------
    samples : np.ndarray [shape=(n,) or (n, channels)], float
    sample_rate : int > 0
        Their rate (Hz); the filter is designed for it (and cached).
    hold : int > 0 or None
        Samples per run of a gain that WeightedEnergy.lufs may be given (LIMITER_BLOCK for a
        limiter's envelope); None: no runs.

    Returns
    -------
    WeightedEnergy
    """
    length = len(samples)
    block, step = int(LOUDNESS_BLOCK_S * sample_rate), int(LOUDNESS_STEP_S * sample_rate)
    if length >= block:
        starts = np.arange(0, length - block + 1, step)
        stops = starts + block
    else:  # one block, padded with silence
        starts, stops = np.array([0]), np.array([length])
    if hold is not None and length >= block and step % hold == block % hold == \
            LOUDNESS_CHUNK % hold == 0:
        edges = np.arange(0, length, hold)  # every other edge is on the runs' grid
    else:
        cuts = [starts, stops[stops < length], np.arange(0, length, LOUDNESS_CHUNK)]
        if hold is not None:
            cuts.append(np.arange(0, length, hold))
        edges = np.unique(np.concatenate(cuts))
    energy = np.zeros(len(edges))
    sos = _k_weighting(sample_rate)
    state = np.zeros((len(sos), 2, *np.shape(samples)[1:]))
    for start in range(0, length, LOUDNESS_CHUNK):
        chunk = np.asarray(samples[start:start + LOUDNESS_CHUNK], dtype=np.float64)
        weighted, state = sosfilt(sos, chunk, axis=0, zi=state)
        power = weighted**2 if weighted.ndim == 1 else np.sum(weighted**2, axis=1)
        inside = slice(*np.searchsorted(edges, [start, start + len(chunk)]))
        energy[inside] = np.add.reduceat(power, edges[inside] - start)
    return WeightedEnergy(energy=energy, run=edges // (hold or max(length, 1)),
                          first=np.searchsorted(edges, starts),
                          stop=np.searchsorted(edges, stops), block=block)


@cache
def _k_weighting(sample_rate: int) -> np.ndarray:
    """BS.1770's pre-filter (high shelf) and RLB high-pass, as second-order sections."""
    from pyloudnorm.iirfilter import IIRfilter

    shelf = IIRfilter(4.0, 1 / np.sqrt(2), 1500.0, sample_rate, "high_shelf")
    high_pass = IIRfilter(0.0, 0.5, 38.0, sample_rate, "high_pass")
    return np.array([np.concatenate([f.b, f.a]) for f in (shelf, high_pass)])


def loudness_gain(samples: np.ndarray, sample_rate: int, target_lufs: float) -> float:
    """The gain that brings the samples to a loudness.

    Parameters
    ----------
    samples : np.ndarray [shape=(n,) or (n, channels)], float
    sample_rate : int > 0
        Their rate (Hz).
    target_lufs : float
        The loudness wanted (LUFS).

    Returns
    -------
    float > 0
        Linear gain; 1 for silence.
    """
    loudness = integrated_loudness(samples, sample_rate)
    return 1.0 if not np.isfinite(loudness) else float(10 ** ((target_lufs - loudness) / 20))


def limiter_gain(samples: np.ndarray, sample_rate: int, ceiling: float = 0.95,
                 lookahead_s: float = 0.005, release_s: float = 0.05, *,
                 ceiling_dbtp: float | None = None,
                 true_peaks: np.ndarray | None = None) -> np.ndarray:
    """A smooth gain envelope (at most 1) that keeps `samples * gain` under a ceiling.

    The gain falls ahead of each peak (look-ahead) and recovers over `release_s`; apply it to
    every stem alike and the stems still add up to the limited mix. The envelope is worked out
    on blocks of LIMITER_BLOCK (32) samples, under a millisecond, and held across each block.

    Parameters
    ----------
    samples : np.ndarray [shape=(n,)], float
        Mono samples (for true peaks, [n, channels] also: the loudest channel counts).
    sample_rate : int > 0
        Their rate (Hz).
    ceiling : float > 0
        The most a sample may reach (linear), when ceiling_dbtp is None.
    lookahead_s : float > 0
        How long before a peak the gain starts to fall (s).
    release_s : float > 0
        How long the gain takes to recover (s).
    ceiling_dbtp : float or None
        Limit the true peak instead (dBTP, as true_peak_dbtp measures it: the block peaks are
        taken on the 4x oversampled signal), and ignore `ceiling`.
    true_peaks : np.ndarray or None
        With ceiling_dbtp, block_true_peaks(samples) when the caller has them (they scale with
        the samples, so one measurement serves any gain).

    Returns
    -------
    np.ndarray [shape=(n,)], float32 in 0..1
        All ones when nothing reaches the ceiling.
    """
    length = len(samples)
    if ceiling_dbtp is None:
        block_peak = _block_peaks(np.abs(samples), LIMITER_BLOCK)
    else:
        block_peak = (block_true_peaks(samples, sample_rate) if true_peaks is None
                      else true_peaks)
        ceiling = 10 ** (ceiling_dbtp / 20)
    held = _held_gains(block_peak, sample_rate, ceiling, lookahead_s, release_s)
    envelope: np.ndarray = np.repeat(held, LIMITER_BLOCK)[:length]
    return envelope


def _held_gains(block_peak: np.ndarray, sample_rate: int, ceiling: float,
                lookahead_s: float = 0.005, release_s: float = 0.05) -> np.ndarray:
    """limiter_gain's envelope, one float32 gain a block of LIMITER_BLOCK samples, from the
    blocks' peaks (linear)."""
    needed = np.minimum(1.0, ceiling / np.maximum(block_peak, 1e-12))
    if needed.min(initial=1.0) >= 1.0:
        return np.ones(len(block_peak), np.float32)
    block_rate = sample_rate / LIMITER_BLOCK
    window = max(1, round(lookahead_s * block_rate))
    held = minimum_filter1d(needed, size=2 * window + 1, mode="nearest")
    release = max(1, round(release_s * block_rate))
    smooth = minimum_filter1d(held, size=release, mode="nearest", origin=(release - 1) // 2)
    gain: np.ndarray = np.minimum(uniform_filter1d(smooth, size=window, mode="nearest"),
                                  held).astype(np.float32)
    return gain


def window_levels_dbfs(samples: np.ndarray, sample_rate: int, window_s: float = 0.4,
                       hop_s: float = 0.1) -> np.ndarray:
    """Short-term RMS levels: windows `window_s` long starting every `hop_s`.

    Parameters
    ----------
    samples : np.ndarray [shape=(n,)], float
        Mono samples (full scale 1.0).
    sample_rate : int > 0
        Their rate (Hz).
    window_s : float > 0
        Each window's length (s; rounded to whole samples, at least 1).
    hop_s : float > 0
        Time between window starts (s; rounded likewise).

    Returns
    -------
    np.ndarray [shape=(windows,)], float
        dBFS per window; the last window ends at or before the end (a clip shorter than one
        window is one window). Silence is -200 dBFS.
    """
    window, hop = max(1, round(window_s * sample_rate)), max(1, round(hop_s * sample_rate))
    if hop == window and len(samples) >= window:
        # Windows side by side (the album's ingest frames): each one's mean square directly,
        # at about half the cost of the running sum that overlapping windows need.
        frames = samples[:len(samples) // window * window].reshape(-1, window)
        power = np.mean(frames.astype(np.float64) ** 2, axis=1)
    else:
        energy = np.concatenate([[0.0], np.cumsum(np.square(samples, dtype=np.float64))])
        window = min(window, len(samples)) or 1
        starts = np.arange(0, max(len(samples) - window, 0) + 1, hop)
        power = (energy[np.minimum(starts + window, len(samples))] - energy[starts]) / window
    levels: np.ndarray = 10 * np.log10(power + 1e-20)
    return levels


def mastering_gain(samples: np.ndarray, sample_rate: int, target_lufs: float,
                   ceiling_dbtp: float, *, passes: int = 4,
                   tolerance_lu: float = 0.3) -> np.ndarray:
    """The gain envelope that brings samples to a loudness under a true-peak limiter.

    Limiting costs loudness, so the gain is raised again, up to `passes` times, until the
    limited samples are within `tolerance_lu` of the target.

    Parameters
    ----------
    samples : np.ndarray [shape=(n,) or (n, channels)], float
    sample_rate : int > 0
        Their rate (Hz).
    target_lufs : float
        The loudness wanted (LUFS, as integrated_loudness measures it).
    ceiling_dbtp : float
        The true-peak ceiling (dBTP, 4x oversampled as true_peak_dbtp).
    passes : int >= 0
        Corrections after the first try, at most.
    tolerance_lu : float > 0
        How near the target is near enough (LU).

    Returns
    -------
    np.ndarray [shape=(n,) or (n, 1)], float32
        One gain a frame, shaped to multiply the samples (every channel takes the same gain);
        all ones for silence.
    """
    peaks = block_true_peaks(samples, sample_rate)
    energy = weighted_energy(samples, sample_rate, hold=LIMITER_BLOCK)
    loudness = energy.lufs()
    per_frame = (len(samples),) + (1,) * (np.ndim(samples) - 1)
    if not np.isfinite(loudness):
        return np.ones(per_frame, np.float32)
    ceiling = 10 ** (ceiling_dbtp / 20)

    def limited(gain: float) -> np.ndarray:  # one gain a block of LIMITER_BLOCK
        held: np.ndarray = gain * _held_gains(peaks * gain, sample_rate, ceiling)
        return held

    # The limiter's gain moves slowly against the K-filter's memory, so the weighted samples
    # times the envelope measure as the weighted limited samples: within 0.0013 LU (median
    # 0.0003) over both song forms of the 9 speech clips.
    gain = 10 ** ((target_lufs - loudness) / 20)
    held = limited(gain)
    for _ in range(passes):
        correction_db = target_lufs - energy.lufs(held)
        if abs(correction_db) <= tolerance_lu:
            break
        gain *= 10 ** (correction_db / 20)
        held = limited(gain)
    envelope: np.ndarray = np.repeat(held, LIMITER_BLOCK)[:len(samples)].reshape(per_frame)
    return envelope


def block_true_peaks(samples: np.ndarray, sample_rate: int,
                     block: int = LIMITER_BLOCK) -> np.ndarray:
    """The true peak of each run of `block` samples.

    Oversampled a stretch of TRUE_PEAK_CHUNK samples at a time, each with TRUE_PEAK_CONTEXT
    samples around it for the filter to read (its taps reach 10 samples either way), so a
    song's four-times-longer copy is never held whole in memory.

    Parameters
    ----------
    samples : np.ndarray [shape=(n,) or (n, channels)], float
    sample_rate : int > 0
        Their rate (Hz): it sets the oversampling (4x under 96 kHz, 2x under 192 kHz).
    block : int > 0
        Samples (frames) per block.

    Returns
    -------
    np.ndarray [shape=(ceil(n / block),)], float64 >= 0
        Linear peaks of the oversampled signal (of channels: the loudest).
    """
    if np.ndim(samples) > 1:
        loudest: np.ndarray = np.max([block_true_peaks(channel, sample_rate, block)
                                      for channel in np.asarray(samples).T], axis=0)
        return loudest
    factor = _true_peak_oversampling(sample_rate)
    x = np.asarray(samples, dtype=np.float64)
    blocks = -(-len(x) // block)
    peaks = np.zeros(blocks)
    per_chunk = max(1, TRUE_PEAK_CHUNK // block)
    for first in range(0, blocks, per_chunk):
        start, stop = first * block, min(len(x), (first + per_chunk) * block)
        low, high = max(0, start - TRUE_PEAK_CONTEXT), min(len(x), stop + TRUE_PEAK_CONTEXT)
        wide = _oversample(x[low:high], factor)
        inner = wide[(start - low) * factor: (stop - low) * factor]
        found = _block_peaks(np.abs(inner), block * factor)
        peaks[first: first + len(found)] = found
    return peaks


def _block_peaks(magnitudes: np.ndarray, block: int) -> np.ndarray:
    """The largest of each run of `block` values (the last run padded with zeros), float64."""
    whole = len(magnitudes) // block * block
    peaks = np.empty(-(-len(magnitudes) // block))
    peaks[:whole // block] = magnitudes[:whole].reshape(-1, block).max(axis=1, initial=0.0)
    if whole < len(magnitudes):
        peaks[-1] = magnitudes[whole:].max(initial=0.0)
    return peaks


# --- True peak (ITU-R BS.1770-4, Annex 2) ---------------------------------------------------

DELIVERED_CEILING_DBTP = -1.0  # the most a file SingSong sends may reach, decoded (4x)
# A master's limiter before lossy encoding: Opus and MP3 add up to about 1.3 dB (the
# encode_true_peak loop trims what passes).
MASTER_CEILING_DBTP = -2.5
TRUE_PEAK_RETRIES = 3  # encodes after the first, at most
TRUE_PEAK_CHUNK = 1 << 16  # samples oversampled at a time
TRUE_PEAK_CONTEXT = 64
TRUE_PEAK_MARGIN_DB = 0.1  # how far under the ceiling a re-encode aims, past the excess
def _true_peak_oversampling(sample_rate: int) -> int:
    """4 times below 96 kHz, as Annex 2 asks of 48 kHz; 2 times up to 192 kHz; then none."""
    return 4 if sample_rate < 96000 else 2 if sample_rate < 192000 else 1


def _oversample(samples: np.ndarray, factor: int) -> np.ndarray:
    if factor == 1 or samples.size == 0:
        return np.asarray(samples, dtype=np.float64)
    return _resample(np.asarray(samples, dtype=np.float64), factor, 1)


def _resample(samples: np.ndarray, up: int, down: int) -> np.ndarray:
    """float64 samples (along the first axis) resampled by up / down: scipy's resample_poly,
    with its own low-pass designed once per ratio rather than on every call."""
    resampled: np.ndarray = resample_poly(samples, up, down, axis=0,
                                          window=_resampling_filter(up, down))
    return resampled


@cache
def _resampling_filter(up: int, down: int) -> np.ndarray:
    """The FIR low-pass resample_poly designs for up / down (a Kaiser window, beta 5)."""
    rate = max(up, down)
    taps: np.ndarray = firwin(2 * 10 * rate + 1, 1.0 / rate, window=("kaiser", 5.0))
    return taps


def true_peak_dbtp(samples: np.ndarray, sample_rate: int) -> float:
    """The true peak (ITU-R BS.1770-4, Annex 2): catches the peaks that fall between samples,
    which a decoder or a DAC reconstructs.

    The signal is oversampled 4 times (at rates under 96 kHz; twice under 192 kHz) with a
    polyphase low-pass (scipy's resample_poly), then its largest magnitude taken.

    Parameters
    ----------
    samples : np.ndarray [shape=(n,) or (n, channels)], float
    sample_rate : int > 0
        Their rate (Hz).

    Returns
    -------
    float
        dBTP: dB relative to full scale (1.0); -inf for silence.
    """
    top = float(np.max(block_true_peaks(samples, sample_rate, TRUE_PEAK_CHUNK), initial=0.0))
    return 20 * float(np.log10(top)) if top > 0 else float("-inf")


def decoded_true_peak_dbtp(data: bytes) -> float:
    """The true peak (dBTP) of encoded audio as a player decodes it (OGG/Opus, MP3, WAV),
    as true_peak_dbtp measures it.

    Decoded in this process by FFmpeg's libraries (PyAV: the same libopus as libsndfile, in
    half the time), and oversampled only where the peak can be (_sparse_true_peak): a
    fifth of a song's samples, for the same figure.

    Parameters
    ----------
    data : bytes
        An encoded file; its first audio stream is measured, every channel.

    Returns
    -------
    peak_dbtp : float
        dB relative to full scale (1.0); -inf for silence or no samples.

    Raises
    ------
    av.FFmpegError
        When the data cannot be decoded.
    """
    channels, rate = _decoded(data)
    top = max((_sparse_true_peak(channel, rate) for channel in channels), default=0.0)
    return 20 * float(np.log10(top)) if top > 0 else float("-inf")


def _decoded(data: bytes) -> tuple[np.ndarray, int]:
    """Encoded audio decoded in this process: float [channels, frames] as the decoder gives
    it (float32 for Opus and MP3: only the stretches measured are made float64), and its
    rate."""
    import av

    with av.open(io.BytesIO(data), "r") as container:
        stream = container.streams.audio[0]
        # Planar floats of the stream's own layout and rate (nothing mixed or resampled);
        # the Opus and MP3 decoders give those already.
        planar = av.AudioResampler(format="fltp")
        frames = []
        for frame in container.decode(stream):
            if frame.format.name in ("fltp", "dblp"):
                frames.append(frame.to_ndarray())
            else:
                frames += [out.to_ndarray() for out in planar.resample(frame)]
        frames += [out.to_ndarray() for out in planar.resample(None)]
        rate = stream.rate
    if not frames:
        return np.zeros((1, 0)), rate
    return np.concatenate(frames, axis=1), rate


TRUE_PEAK_SKIP_BLOCK = 8  # samples: small, so that little around the loud ones is oversampled


def _sparse_true_peak(channel: np.ndarray, rate: int) -> float:
    """The largest magnitude of one channel oversampled as true_peak_dbtp does it (linear),
    oversampling only the blocks (of TRUE_PEAK_SKIP_BLOCK samples) that could hold it.

    Each oversampled value is a weighted sum of the samples within the filter's reach, so
    it is at most _interpolation_gain times their largest magnitude: a block whose own and
    nearby samples (as far as the filter reaches) stay under the peak already found,
    divided by that gain, cannot hold the true peak and is skipped (most of a song's
    blocks). The peak found first is that around the loudest sample; the result is exact.
    """
    factor = _true_peak_oversampling(rate)
    magnitude = np.abs(channel)
    if factor == 1 or not magnitude.any():
        return float(magnitude.max(initial=0.0))
    gain, reach = _interpolation_gain(factor)
    block = TRUE_PEAK_SKIP_BLOCK
    peaks = _block_peaks(magnitude, block)
    near = maximum_filter1d(peaks, 2 * -(-reach // block) + 1, mode="constant")
    found = _oversampled_peak(channel, np.array([np.argmax(peaks)]), block, factor, reach)
    wanted = np.flatnonzero(near * gain >= found)
    return max(found, _oversampled_peak(channel, wanted, block, factor, reach))


def _oversampled_peak(channel: np.ndarray, blocks: np.ndarray, block: int, factor: int,
                      reach: int) -> float:
    """The largest oversampled magnitude inside the given blocks (increasing), taken
    TRUE_PEAK_CHUNK samples of the channel at a time (a loud master wants most of its
    blocks: its oversampled copy is never made whole)."""
    window = np.asarray(blocks) * block // TRUE_PEAK_CHUNK
    groups = np.split(blocks, np.flatnonzero(np.diff(window)) + 1)
    return max((_runs_peak(channel, group, block, factor, reach) for group in groups),
               default=0.0)


def _runs_peak(channel: np.ndarray, blocks: np.ndarray, block: int, factor: int,
               reach: int) -> float:
    """The largest oversampled magnitude inside the given blocks (increasing): each run of
    them with `reach` samples either side (all the filter reads), oversampled in one go."""
    if blocks.size == 0:
        return 0.0
    breaks = np.flatnonzero(np.diff(blocks) > 1) + 1
    starts = blocks[np.concatenate([[0], breaks])] * block
    stops = np.minimum((blocks[np.concatenate([breaks - 1, [blocks.size - 1]])] + 1) * block,
                       len(channel))
    lows, highs = np.maximum(starts - reach, 0), np.minimum(stops + reach, len(channel))
    offsets = np.concatenate([[0], np.cumsum(highs - lows)])
    # Every run's samples, with its context, back to back: gathered by index.
    index = np.repeat(lows - offsets[:-1], highs - lows) + np.arange(offsets[-1])
    wide = np.abs(_oversample(channel[index], factor))
    inner_starts = (offsets[:-1] + starts - lows) * factor
    inner_stops = (offsets[:-1] + stops - lows) * factor
    edges = np.stack([inner_starts, inner_stops], axis=1).ravel()
    # reduceat over [start, stop) pairs: the even entries are the runs' inner parts.
    return float(np.maximum.reduceat(np.append(wide, 0.0), edges)[::2].max())


@cache
def _interpolation_gain(factor: int) -> tuple[float, int]:
    """How far an oversampled value can exceed the largest sample magnitude around it (the
    sum of the filter's magnitudes in its worst phase), and how many samples either side
    it reads: both read off an oversampled impulse."""
    half = 4 * TRUE_PEAK_CONTEXT
    impulse = np.zeros(2 * half + 1)
    impulse[half] = 1.0
    response = np.abs(_oversample(impulse, factor))
    gain = max(float(response[phase::factor].sum()) for phase in range(factor))
    touched = np.flatnonzero(response > 0)
    reach = int(np.ceil(max(half * factor - touched[0], touched[-1] - half * factor) / factor))
    return gain, reach + 1


def encode_true_peak(samples: np.ndarray, sample_rate: int, fmt: str,
                     ceiling_dbtp: float = DELIVERED_CEILING_DBTP) -> tuple[bytes, float]:
    """encode(), with the decoded file's true peak at most `ceiling_dbtp` dBTP.

    Lossy encoders add peaks the samples did not have (Opus and MP3 ring around sharp
    transients). The file is decoded and measured; while it is over the ceiling the samples
    are scaled down by the excess plus TRUE_PEAK_MARGIN_DB (0.1 dB) and encoded again, at most
    TRUE_PEAK_RETRIES (3) times (the last encoding is returned). Master the samples with some
    headroom under the ceiling so that the first encoding nearly always passes.

    Parameters
    ----------
    samples : np.ndarray [shape=(n,) or (n, 2)], float in -1..1
        Mono or stereo.
    sample_rate : int > 0
        Their rate (Hz).
    fmt : {"ogg", "mp3", "wav"}
    ceiling_dbtp : float
        The most the decoded file may reach (dBTP); DELIVERED_CEILING_DBTP (-1 dBTP) by
        default.

    Returns
    -------
    data : bytes
        The encoded file.
    gain : float in 0..1
        The linear gain the samples took on the way (1.0 when the first encoding passed; the
        caller applies it to anything that must still add up to the file, such as stems).

    Raises
    ------
    InvalidRequest
        For an unknown format.
    """
    encoded = encode(samples, sample_rate, fmt)
    gain = 1.0
    for _ in range(TRUE_PEAK_RETRIES):
        excess_db = decoded_true_peak_dbtp(encoded) - ceiling_dbtp
        if excess_db <= 0:
            break
        gain *= 10 ** (-(excess_db + TRUE_PEAK_MARGIN_DB) / 20)
        encoded = encode(samples * np.float32(gain), sample_rate, fmt)
    return encoded, gain
