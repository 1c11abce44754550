"""Lyrics to a spoken voice with espeak-ng, in the lyrics' own language and line by line,
ready to be sung by the voice path."""

from __future__ import annotations

import io
import re
import shutil
import subprocess
import unicodedata
import wave
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache, partial
from typing import Any

import numpy as np

from engine.errors import InvalidRequest, ToolMissing

MAX_LYRICS_CHARS = 300
SPEAK_TIMEOUT_S = 30.0
WORDS_PER_MINUTE = 150

# ISO 639-1 code -> (espeak-ng voice, English name): the languages whose espeak-ng voice reads
# ordinary text natively (Japanese is left out: its voice spells every kanji out as "Chinese
# letter"; Mandarin, Hebrew and Thai read much of their text wrongly). Where a language has
# several voices, the variety with the most speakers (American English, Latin American
# Spanish, Brazilian Portuguese).
SUPPORTED: dict[str, tuple[str, str]] = {
    "en": ("en-us", "English"),
    "es": ("es-419", "Spanish"),
    "fr": ("fr-fr", "French"),
    "de": ("de", "German"),
    "it": ("it", "Italian"),
    "pt": ("pt-br", "Portuguese"),
    "nl": ("nl", "Dutch"),
    "pl": ("pl", "Polish"),
    "sv": ("sv", "Swedish"),
    "tr": ("tr", "Turkish"),
    "ru": ("ru", "Russian"),
    "uk": ("uk", "Ukrainian"),
    "id": ("id", "Indonesian"),
    "hi": ("hi", "Hindi"),
    "cs": ("cs", "Czech"),
    "ro": ("ro", "Romanian"),
    "el": ("el", "Greek"),
    "fi": ("fi", "Finnish"),
    "hu": ("hu", "Hungarian"),
    "vi": ("vi", "Vietnamese"),
}
DEFAULT_LANGUAGE = "en"
# The detector's probability (among SUPPORTED) from which the text decides the voice. On the
# labelled lines of benchmarks/language_detection.py nothing at or above 0.7 was wrong, even
# on a line's first word or two; 0.8 leaves a margin (engine/README.md).
CONFIDENT = 0.8

LINE_PAUSE_S = 0.35  # silence between two lines' sound
LONG_LINE_CHARS = 40  # a longer line is split at its sentence ends...
MIN_PHRASE_WORDS = 3  # ...into phrases of at least this many words
# A sentence end: its punctuation (Devanagari's danda too), any closing quotes or brackets,
# and the space after them.
_SENTENCE_END = re.compile(r"[.!?;…।]+[\"'”’»)\]]*\s")
SPEAK_WORKERS = 4  # espeak-ng processes at once (each takes about 10 ms)


@dataclass(frozen=True)
class Speech:
    """Lyrics read aloud by espeak-ng."""

    audio: bytes  # WAV, 16-bit mono at espeak-ng's rate: the lines joined by LINE_PAUSE_S
    language: str  # ISO 639-1 code of the voice used: "en", "es", "de", ...
    language_name: str  # in English: "Spanish"
    chosen_by: str  # "text" (detected), "setting" (the `language` given) or "default"
    lines: tuple[str, ...]  # the lyrics' lines, cleaned, in order
    line_spans_s: tuple[tuple[float, float], ...]  # each line's sound in `audio`: (start, end)


def clean_lyrics(text: str) -> str:
    """Printable text on one line; refuses empty or over-long lyrics with a clear message.

    Control characters and every kind of space become single spaces.

    Parameters
    ----------
    text : str
        The lyrics as sent.

    Returns
    -------
    words : str
        At most MAX_LYRICS_CHARS (300) characters, with a letter or digit.

    Raises
    ------
    InvalidRequest
        When there is no letter or digit, or the cleaned text is over MAX_LYRICS_CHARS.
    """
    words = _one_line(text)
    if not _has_words(words):
        raise InvalidRequest("there are no words to sing: send some lyrics")
    if len(words) > MAX_LYRICS_CHARS:
        raise InvalidRequest(f"the lyrics are {len(words)} characters long; the limit is "
                             f"{MAX_LYRICS_CHARS} (about four lines)")
    return words


def lyric_lines(text: str) -> tuple[str, ...]:
    """The lyrics' lines, cleaned like clean_lyrics (which refuses the same texts).

    The sender's line breaks are kept, a line longer than LONG_LINE_CHARS (40 characters) is
    split at its sentence ends (. ! ? ; ...) into phrases of at least MIN_PHRASE_WORDS words,
    and lines without a letter or digit are left out. Joined by spaces they give
    clean_lyrics(text) when every line has a word.

    Parameters
    ----------
    text : str
        The lyrics as sent, lines separated by line breaks.

    Returns
    -------
    lines : tuple of str, non-empty

    Raises
    ------
    InvalidRequest
        For empty or over-long lyrics (clean_lyrics).
    """
    clean_lyrics(text)
    lines = (_one_line(line) for line in text.splitlines())
    return tuple(phrase for line in lines if _has_words(line) for phrase in _phrases(line))


def supported_language(setting: str | None) -> str | None:
    """The ISO 639-1 code of a platform's language setting when SingSong sings in it.

    Parameters
    ----------
    setting : str or None
        A language setting such as "pt-br", "es-ES" or "de_DE" (any case); only the part before
        the first - or _ counts.

    Returns
    -------
    code : str or None
        A key of SUPPORTED ("pt", "es", "de"); None for no setting or one SingSong does not
        sing in.
    """
    if setting is None:
        return None
    code = re.split(r"[-_]", setting.strip().lower(), maxsplit=1)[0]
    return code if code in SUPPORTED else None


def detect_language(text: str) -> tuple[str, float]:
    """The supported language the text is most likely in, and that probability.

    Parameters
    ----------
    text : str
        Lyrics; short or mixed text gets a low probability.

    Returns
    -------
    code : str
        An ISO 639-1 code in SUPPORTED.
    probability : float in 0..1
        Among the supported languages.
    """
    code, probability = _detector().classify(text)
    return str(code), float(probability)


def choose_language(text: str, setting: str | None = None) -> tuple[str, str]:
    """(ISO 639-1 code, chosen_by) for lyrics.

    The text's language when the detector is confident (probability >= CONFIDENT, 0.8), else the
    setting, else English.

    Parameters
    ----------
    text : str
        The lyrics.
    setting : str or None
        A language setting ("es", "pt-br", "de-DE"); a blank setting counts as none.

    Returns
    -------
    code : str
        A key of SUPPORTED.
    chosen_by : {"text", "setting", "default"}

    Raises
    ------
    InvalidRequest
        For a setting SingSong does not sing in.
    """
    if setting is not None and not setting.strip():
        setting = None
    wanted = supported_language(setting)
    if setting is not None and wanted is None:
        names = [f"{name} ({code})" for code, (_, name) in SUPPORTED.items()]
        raise InvalidRequest(f"SingSong cannot sing in {setting.strip()!r}; it sings in "
                             f"{', '.join(names[:-1])} and {names[-1]}")
    detected, probability = detect_language(text)
    if probability >= CONFIDENT:
        return detected, "text"
    if wanted is not None:
        return wanted, "setting"
    return DEFAULT_LANGUAGE, "default"


def speak(text: str, language: str | None = None) -> Speech:
    """The lyrics read aloud, one espeak-ng run a line, in the voice of their language.

    The text goes in on stdin, never as an argument, so nothing in it can be read as an
    option; lines are joined by LINE_PAUSE_S (0.35 s) of silence.

    Parameters
    ----------
    text : str
        The lyrics (at most MAX_LYRICS_CHARS, 300 characters, once on one line).
    language : str or None
        A language setting ("es", "pt-br", "de-DE"), used when the detector is unsure of the
        text's language; the text wins when it is confident.

    Returns
    -------
    speech : Speech
        16-bit mono WAV at espeak-ng's rate, the language used and how it was chosen, the lines
        and each line's span in the audio (s).

    Raises
    ------
    InvalidRequest
        For empty or over-long lyrics and an unsupported `language`.
    ToolMissing
        When espeak-ng is not installed.
    RuntimeError
        When espeak-ng fails, writes other than 16-bit mono, or reads lines at different rates.
    subprocess.TimeoutExpired
        When one line takes espeak-ng over SPEAK_TIMEOUT_S (30 s).
    """
    lines = lyric_lines(text)
    code, chosen_by = choose_language(" ".join(lines), language)
    voice, name = SUPPORTED[code]
    audio, spans = _read_lines(lines, voice)
    return Speech(audio, code, name, chosen_by, lines, spans)


def _one_line(text: str) -> str:
    kept = "".join(" " if unicodedata.category(c)[0] in "CZ" else c for c in text)
    return " ".join(kept.split())


def _has_words(text: str) -> bool:
    return any(c.isalnum() for c in text)


def _phrases(line: str) -> list[str]:
    if len(line) <= LONG_LINE_CHARS:
        return [line]
    cuts = [end.end() for end in _SENTENCE_END.finditer(line)]
    pieces = [line[a:b].strip() for a, b in zip([0, *cuts], [*cuts, len(line)], strict=True)]
    phrases: list[str] = []
    carried = ""
    for piece in pieces:  # a short piece ("Oh!", "Mr.") goes with the next one
        piece = f"{carried} {piece}".strip()
        if len(piece.split()) < MIN_PHRASE_WORDS or not _has_words(piece):
            carried = piece
            continue
        phrases.append(piece)
        carried = ""
    if carried and phrases:
        phrases[-1] = f"{phrases[-1]} {carried}"
    elif carried:
        phrases.append(carried)
    return phrases


@cache
def _detector() -> Any:
    """py3langid's identifier, loaded when lyrics first need it (not where the chat side
    only reads this module's limits), restricted to the languages SingSong sings, so its
    probabilities are shares among them."""
    # py3langid ships no type information.
    from py3langid.langid import (  # type: ignore[import-untyped]
        MODEL_FILE,
        LanguageIdentifier,
    )

    identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    identifier.set_languages(list(SUPPORTED))
    # The model for all 97 languages, kept only to restrict it again (27 MB of the 78 MB a
    # worker holds once it has read lyrics): this identifier is never restricted again.
    identifier._full_model = None
    return identifier


def _read_lines(lines: tuple[str, ...], voice: str) -> tuple[bytes, tuple[tuple[float, float],
                                                                            ...]]:
    espeak = shutil.which("espeak-ng")
    if espeak is None:
        raise ToolMissing("espeak-ng is not installed (Debian: apt-get install espeak-ng)")
    distinct = list(dict.fromkeys(lines))  # a chorus is read once
    with ThreadPoolExecutor(min(SPEAK_WORKERS, len(distinct))) as pool:
        read = dict(zip(distinct, pool.map(partial(_espeak, espeak, voice), distinct),
                        strict=True))
    rates = {rate for rate, _ in read.values()}
    if len(rates) != 1:
        raise RuntimeError(f"espeak-ng read the lines at different rates: {sorted(rates)}")
    rate = rates.pop()
    samples, spans = _join(
        [read[line][1] for line in lines], round(LINE_PAUSE_S * rate))
    with io.BytesIO() as buffer:
        with wave.open(buffer, "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(rate)
            out.writeframes(samples.astype("<i2").tobytes())
        return buffer.getvalue(), tuple((start / rate, end / rate) for start, end in spans)


def _espeak(espeak: str, voice: str, line: str) -> tuple[int, np.ndarray]:
    """(rate in Hz, 16-bit samples) of espeak-ng reading one line."""
    result = subprocess.run(
        [espeak, "-v", voice, "-s", str(WORDS_PER_MINUTE), "--stdout", "--stdin"],
        input=line.encode(), capture_output=True, timeout=SPEAK_TIMEOUT_S, check=False,
    )
    if result.returncode != 0 or not result.stdout:
        raise RuntimeError(f"espeak-ng failed: {result.stderr.decode(errors='replace')[-300:]}")
    # On stdout the header cannot know the length: the data run to the end of the stream.
    with wave.open(io.BytesIO(result.stdout)) as heard:
        if (heard.getnchannels(), heard.getsampwidth()) != (1, 2):
            raise RuntimeError("espeak-ng wrote something other than 16-bit mono")
        rate, data = heard.getframerate(), heard.readframes(heard.getnframes())
    return rate, np.frombuffer(data[: len(data) // 2 * 2], dtype="<i2")


def _join(readings: Iterable[np.ndarray], pause: int) -> tuple[np.ndarray,
                                                               list[tuple[int, int]]]:
    """The readings one after another, `pause` samples of silence between one's sound and the
    next's (the first keeps its lead-in and the last its tail), and each one's sound as
    (start, end) samples. espeak-ng's pauses are digital silence, so a reading's sound runs
    from its first to its last non-zero sample; a silent one gets an empty span."""
    readings = list(readings)
    sounds = [np.flatnonzero(r) for r in readings]
    sounding = [i for i, s in enumerate(sounds) if s.size]
    pieces: list[np.ndarray] = []
    spans: list[tuple[int, int]] = []
    at = 0
    for i, (reading, sound) in enumerate(zip(readings, sounds, strict=True)):
        if not sound.size:
            spans.append((at, at))
            continue
        if pieces:
            pieces.append(np.zeros(pause, dtype=np.int16))
            at += pause
        begin = 0 if i == sounding[0] else int(sound[0])
        end = len(reading) if i == sounding[-1] else int(sound[-1]) + 1
        spans.append((at + int(sound[0]) - begin, at + int(sound[-1]) + 1 - begin))
        pieces.append(reading[begin:end])
        at += end - begin
    return (np.concatenate(pieces) if pieces else np.zeros(0, np.int16)), spans
