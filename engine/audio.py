"""Audio in and out through ffmpeg: encoding to the formats people receive, loudness."""

from __future__ import annotations

import io
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

from engine.errors import InvalidRequest, ToolMissing

AUDIO_FORMATS = ("ogg", "mp3", "wav")
ENCODE_TIMEOUT_S = 60.0
_CODEC_ARGS = {
    # Opus in Ogg: what Telegram shows as a voice bubble; 64 kb/s keeps 60 s under 1 MB.
    "ogg": ["-c:a", "libopus", "-b:a", "64k", "-vbr", "on", "-application", "audio", "-f", "ogg"],
    "mp3": ["-c:a", "libmp3lame", "-q:a", "4", "-f", "mp3"],
}


def ffmpeg_path() -> str:
    path = shutil.which("ffmpeg")
    if path is None:
        raise ToolMissing("ffmpeg is not installed (Debian: apt-get install ffmpeg)")
    return path


def wav_bytes(samples: np.ndarray, sample_rate: int) -> bytes:
    """16-bit PCM WAV of mono or [frames, channels] float samples in -1..1."""
    buffer = io.BytesIO()
    sf.write(buffer, np.clip(samples, -1.0, 1.0), sample_rate, subtype="PCM_16", format="WAV")
    return buffer.getvalue()


def encode(samples: np.ndarray, sample_rate: int, fmt: str) -> bytes:
    """Encode float samples to 'ogg' (Opus), 'mp3' or 'wav' bytes."""
    if fmt == "wav":
        return wav_bytes(samples, sample_rate)
    if fmt not in _CODEC_ARGS:
        raise InvalidRequest(f"unknown audio format {fmt!r}: use one of {', '.join(AUDIO_FORMATS)}")
    # Opus runs at 48 kHz; resample here so ffmpeg does not pick an odd rate.
    rate_args = ["-ar", "48000"] if fmt == "ogg" else []
    # A seekable output file (not a pipe) lets ffmpeg finish the headers that hold the
    # duration (the MP3 Xing frame count); players read it from there.
    with tempfile.TemporaryDirectory(prefix="singsong-encode-") as folder:
        target = Path(folder, f"out.{fmt}")
        command = [ffmpeg_path(), "-hide_banner", "-loglevel", "error", "-f", "wav",
                   "-i", "pipe:0", *rate_args, *_CODEC_ARGS[fmt], str(target)]
        result = subprocess.run(command, input=wav_bytes(samples, sample_rate),
                                capture_output=True, timeout=ENCODE_TIMEOUT_S, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"ffmpeg failed to encode {fmt}: {result.stderr.decode()[-500:]}")
        return target.read_bytes()


def peak_normalise(samples: np.ndarray, peak: float = 0.89) -> np.ndarray:
    """Scale so the loudest sample sits at `peak` (about -1 dBFS); silence stays silent."""
    top = float(np.max(np.abs(samples))) if samples.size else 0.0
    return samples if top == 0.0 else samples * (peak / top)
