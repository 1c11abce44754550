"""Lyrics to a spoken voice with espeak-ng, ready to be sung by the voice path."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import unicodedata
from pathlib import Path

from engine.errors import InvalidRequest, ToolMissing

MAX_LYRICS_CHARS = 300
SPEAK_TIMEOUT_S = 30.0
WORDS_PER_MINUTE = 150


def clean_lyrics(text: str) -> str:
    """Printable text on one line; refuses empty or over-long lyrics with a clear message."""
    kept = "".join(" " if unicodedata.category(c)[0] in "CZ" else c for c in text)
    words = " ".join(kept.split())
    if not any(c.isalnum() for c in words):
        raise InvalidRequest("there are no words to sing: send some lyrics")
    if len(words) > MAX_LYRICS_CHARS:
        raise InvalidRequest(f"the lyrics are {len(words)} characters long; the limit is "
                             f"{MAX_LYRICS_CHARS} (about four lines)")
    return words


def speak(text: str, voice: str = "en-us") -> bytes:
    """WAV bytes of espeak-ng reading the (cleaned) lyrics. The text goes in on stdin, never
    as an argument, so nothing in it can be read as an option."""
    espeak = shutil.which("espeak-ng")
    if espeak is None:
        raise ToolMissing("espeak-ng is not installed (Debian: apt-get install espeak-ng)")
    words = clean_lyrics(text)
    with tempfile.TemporaryDirectory(prefix="singsong-speak-") as folder:
        target = Path(folder, "speech.wav")
        result = subprocess.run(
            [espeak, "-v", voice, "-s", str(WORDS_PER_MINUTE), "-w", str(target), "--stdin"],
            input=words.encode(), capture_output=True, timeout=SPEAK_TIMEOUT_S, check=False,
        )
        if result.returncode != 0 or not target.exists():
            raise RuntimeError(f"espeak-ng failed: {result.stderr.decode()[-300:]}")
        return target.read_bytes()
