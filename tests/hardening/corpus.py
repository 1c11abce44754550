"""The corpus of bad input, made deterministically at test time (nothing big is committed).

Audio cases are cut from one real recording (LibriSpeech, ../shared/data/speech) or made by
ffmpeg and numpy; each says what SingSong must do with it: sing it, or refuse it with a
sentence matching `says`. Text cases are lyrics; names are display names and file names.
"""

from __future__ import annotations

import functools
import io
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from tests.conftest import SHARED_DATA, ffmpeg_make

SPEECH = SHARED_DATA / "speech" / "198-209-0000.ogg"
CLIP_S = 1.5  # enough words to sing, short enough to keep the tests quick
RATE = 16000


@dataclass(frozen=True)
class Case:
    """One bad input: its bytes (or text), the name it came with, and what must happen."""

    name: str
    data: bytes
    filename: str
    outcome: str  # "sung", or "refused" with a reply matching `says` (a regex)
    says: str = ""


def speech_samples() -> np.ndarray:
    """The first CLIP_S seconds of the recording, mono float at RATE Hz."""
    from engine.audio import decode

    return decode(SPEECH.read_bytes(), sample_rate=RATE, max_duration_s=CLIP_S).samples


def _convert(*args: str, suffix: str) -> bytes:
    """The recording's first CLIP_S seconds through ffmpeg with these output options."""
    return ffmpeg_make("-i", str(SPEECH), "-t", f"{CLIP_S}", *args, suffix=suffix)


def _float_wav(samples: np.ndarray, rate: int = RATE) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, samples.astype(np.float32), rate, subtype="FLOAT", format="WAV")
    return buffer.getvalue()


def _claims_hours(wav: bytes) -> bytes:
    """A WAV whose RIFF and data sizes claim 4 GB (75 hours of 8 kHz 16-bit sound) while
    the file holds seconds."""
    data_at = wav.index(b"data")
    huge = struct.pack("<I", 0xFFFF_FFF0)
    return b"RIFF" + huge + wav[8:data_at + 4] + huge + wav[data_at + 8:]


def _with_bad_floats(samples: np.ndarray) -> np.ndarray:
    """Runs of NaN (a broken recorder), and a few infinite samples."""
    spoiled = samples.copy()
    for start in range(RATE // 4, len(spoiled), RATE // 2):
        spoiled[start:start + 80] = np.nan
    spoiled[RATE // 3::RATE] = np.inf
    spoiled[RATE // 5::RATE] = -np.inf
    return spoiled


def _zip_of(name: str, data: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(name, data)
    return buffer.getvalue()


def _playlist(target: Path) -> bytes:
    """An HLS playlist naming a file on the server: sent as a voice note, ffmpeg would open
    that file and SingSong would sing it back."""
    return (f"#EXTM3U\n#EXT-X-TARGETDURATION:20\n#EXTINF:14.0,\n{target}\n"
            "#EXT-X-ENDLIST\n").encode()


AUDIO_NAMES = ("truncated-ogg", "ogg-named-png", "wav-named-mp3", "zero-bytes", "png", "zip",
               "wav-claims-hours", "8-khz", "96-khz", "8-channels", "wav-nan-and-inf",
               "wav-all-nan", "playlist-of-a-server-file")
NOT_AUDIO = "not audio SingSong can read"
NO_SOUND = "no sound in this file"


@functools.cache
def audio_cases() -> tuple[Case, ...]:
    """Every bad or odd audio input, once per test process (about a second to make)."""
    speech = speech_samples()
    ogg = _convert("-c:a", "libopus", suffix=".ogg")
    wav16 = _convert("-ar", "8000", "-c:a", "pcm_s16le", suffix=".wav")
    png = ffmpeg_make("-f", "lavfi", "-i", "color=c=red:s=32x32", "-frames:v", "1",
                      suffix=".png")
    return (
        Case("truncated-ogg", ogg[: len(ogg) * 2 // 3], "voice.ogg", "sung"),
        Case("ogg-named-png", ogg, "holiday.png", "sung"),
        Case("wav-named-mp3", wav16, "voice.mp3", "sung"),
        Case("zero-bytes", b"", "voice.ogg", "refused", "the file is empty"),
        Case("png", png, "voice.ogg", "refused", f"{NO_SOUND}|{NOT_AUDIO}"),
        Case("zip", _zip_of("voice.wav", wav16), "voice.zip", "refused", NOT_AUDIO),
        Case("wav-claims-hours", _claims_hours(wav16), "long.wav", "sung"),
        Case("8-khz", wav16, "voice.wav", "sung"),
        Case("96-khz", _convert("-ar", "96000", "-c:a", "flac", suffix=".flac"), "voice.flac",
             "sung"),
        Case("8-channels", _convert("-ac", "8", "-c:a", "pcm_s16le", suffix=".wav"),
             "surround.wav", "sung"),
        Case("wav-nan-and-inf", _float_wav(_with_bad_floats(speech)), "float.wav", "sung"),
        Case("wav-all-nan", _float_wav(np.full(RATE * 2, np.nan)), "nan.wav", "refused",
             "could not hear a voice"),
        Case("playlist-of-a-server-file", _playlist(SPEECH), "voice.m3u8", "refused",
             NOT_AUDIO),
    )


def audio_case(name: str) -> Case:
    """One audio case by name (test ids are names, so collecting makes nothing)."""
    (case,) = (c for c in audio_cases() if c.name == name)
    return case


LYRICS_LIMIT = "the limit is 300"


def lyrics_cases() -> tuple[Case, ...]:
    """Lyrics (as UTF-8 in `data`): control characters, too long, right-to-left, emoji."""
    def lyric(name: str, text: str, outcome: str, says: str = "") -> Case:
        return Case(name, text.encode(), "", outcome, says)

    return (
        lyric("control-characters", "la la\x00 land\x1b[31m is\r\nwhere\x07 I stand\u202e\ufeff",
              "sung"),
        lyric("10000-characters", ("la " * 3334)[:10_000], "refused", LYRICS_LIMIT),
        lyric("right-to-left", "שלום עולם", "sung"),
        lyric("right-to-left-marks", "\u202eHello there\u202c my friend \u200fשלום", "sung"),
        lyric("emoji-and-words", "🎤🎶 sing me a song tonight 🎸👍🏽", "sung"),
        lyric("emoji-only", "🎤🎶🎸👍🏽🇺🇦", "refused", "there are no words to sing"),
    )


# Display names and file names that look like SQL or paths; stored and shown as they are.
NAMES = (
    "Robert'); DROP TABLE users;--",
    "../../etc/passwd",
    "/etc/passwd",
    "..\\..\\windows\\system32",
    "%s %n {0} ${HOME} $(reboot)",
    "<script>alert(1)</script>",
    "שלום 🎤 \u202eevil",
)


@functools.cache
def header_seeds() -> tuple[bytes, ...]:
    """Short real files whose headers the fuzzers mutate: OGG/Opus, 16-bit and float WAV."""
    speech = speech_samples()[: RATE // 2]
    ogg = ffmpeg_make("-i", str(SPEECH), "-t", "0.5", "-c:a", "libopus", suffix=".ogg")
    pcm = ffmpeg_make("-i", str(SPEECH), "-t", "0.25", "-ar", "8000", suffix=".wav")
    return ogg, pcm, _float_wav(speech)
