import io
import shutil
import subprocess
import wave
from typing import Any

import numpy as np
import pytest

from engine import singer
from engine.errors import InvalidRequest, ToolMissing
from engine.singer import (
    CONFIDENT,
    LINE_PAUSE_S,
    SUPPORTED,
    WORDS_PER_MINUTE,
    clean_lyrics,
    detect_language,
    lyric_lines,
    speak,
    supported_language,
)

# One line each, which the detector is sure of.
LYRICS = {
    "en": "We were dancing in the rain until the morning came",
    "es": "Bailando bajo la luna toda la noche",
    "de": "Ich liebe dich mehr als alles auf der Welt",
    "fr": "Sous le ciel de Paris il pleut encore",
    "ru": "Мы танцуем под дождём до самого утра",
    "hi": "हम सुबह तक बारिश में नाचते रहे",
}


def pcm(data: bytes) -> tuple[int, np.ndarray]:
    """(rate, 16-bit samples) of WAV bytes."""
    with wave.open(io.BytesIO(data)) as heard:
        assert (heard.getnchannels(), heard.getsampwidth()) == (1, 2)
        rate, frames = heard.getframerate(), heard.readframes(heard.getnframes())
    return rate, np.frombuffer(frames[: len(frames) // 2 * 2], dtype="<i2")


def espeak_reading(text: str, voice: str) -> np.ndarray:
    """espeak-ng itself reading `text` in `voice`, as speak runs it."""
    result = subprocess.run(["espeak-ng", "-v", voice, "-s", str(WORDS_PER_MINUTE), "--stdout",
                             "--stdin"], input=text.encode(), capture_output=True, check=True)
    return pcm(result.stdout)[1]


@pytest.mark.parametrize("code", LYRICS)
def test_lyrics_are_read_by_their_languages_voice(code: str) -> None:
    speech = speak(LYRICS[code])
    assert (speech.language, speech.chosen_by) == (code, "text")
    assert speech.language_name == SUPPORTED[code][1]
    _, heard = pcm(speech.audio)
    # One line: exactly espeak-ng's reading in the language's voice, not the English one.
    assert np.array_equal(heard, espeak_reading(LYRICS[code], SUPPORTED[code][0]))
    if code != "en":
        assert not np.array_equal(heard, espeak_reading(LYRICS[code], "en-us"))


def test_the_setting_decides_when_the_text_is_too_short_to_tell() -> None:
    assert detect_language("la la")[1] < CONFIDENT
    speech = speak("la la", language="es-ES")
    assert (speech.language, speech.language_name, speech.chosen_by) == ("es", "Spanish",
                                                                        "setting")
    assert (speak("la la").language, speak("la la").chosen_by) == ("en", "default")
    assert speak("la la", language="").chosen_by == "default"  # a blank setting is none


def test_a_clearly_spanish_text_wins_over_the_setting() -> None:
    speech = speak("Te quiero más que a mi vida, corazón", language="en")
    assert (speech.language, speech.chosen_by) == ("es", "text")


def test_an_unsupported_language_is_refused_with_what_is_sung() -> None:
    with pytest.raises(InvalidRequest, match=r"cannot sing in 'ja'; it sings in English \(en\), "
                                             r"Spanish \(es\), .* and Vietnamese \(vi\)$"):
        speak("la la la", language="ja")


@pytest.mark.parametrize(("setting", "code"), [
    ("pt-br", "pt"), ("es-ES", "es"), ("de_DE", "de"), (" FR-ca ", "fr"), ("en", "en"),
    ("ja", None), ("zh-Hans-CN", None), ("", None), (None, None),
])
def test_platform_settings_are_normalised(setting: str | None, code: str | None) -> None:
    assert supported_language(setting) == code


def test_line_breaks_are_kept_and_long_lines_split_at_sentence_ends() -> None:
    text = ("First line here\r\nsecond line\n\n   \n🎵🎵🎵\n"
            "I see the stars tonight. They shine so bright! Do you see them too? Oh. Yes you do")
    assert lyric_lines(text) == ("First line here", "second line", "I see the stars tonight.",
                                 "They shine so bright!", "Do you see them too?",
                                 "Oh. Yes you do")
    assert lyric_lines("Oh! Yeah! Go on!") == ("Oh! Yeah! Go on!",)  # a short line stays whole
    two = "Line one\tis here\x07\nand line two"
    assert " ".join(lyric_lines(two)) == clean_lyrics(two) == "Line one is here and line two"


@pytest.mark.parametrize(("text", "message"), [
    ("", "no words"), ("\n\n🎵\n", "no words"), ("la\n" * 120, "the limit is 300"),
])
def test_lines_refuse_what_clean_lyrics_refuses(text: str, message: str) -> None:
    with pytest.raises(InvalidRequest, match=message):
        lyric_lines(text)
    with pytest.raises(InvalidRequest, match=message):
        speak(text)


def test_line_spans_cover_each_lines_sound() -> None:
    speech = speak("Here is the first line of the song\nand the second one\nla la la\nla la la")
    rate, samples = pcm(speech.audio)
    assert len(speech.line_spans_s) == len(speech.lines) == 4
    edges = [round(t * rate) for span in speech.line_spans_s for t in span]
    assert edges == sorted(edges) and edges[0] >= 0 and edges[-1] <= samples.size
    for start, end in zip(edges[::2], edges[1::2], strict=True):
        line = samples[start:end].astype(float) / 32768
        assert end - start > 0.3 * rate and np.sqrt(np.mean(line**2)) > 0.02
        assert samples[start] != 0 and samples[end - 1] != 0  # from its first sound to its last
    for end, start in zip(edges[1:-1:2], edges[2::2], strict=True):  # a pause, silent
        assert start - end == round(LINE_PAUSE_S * rate) and not samples[end:start].any()
    chorus = [b - a for a, b in speech.line_spans_s[2:]]
    assert chorus[0] == pytest.approx(chorus[1])
    assert edges[-1] < samples.size  # the last line keeps espeak-ng's tail


def test_the_text_never_reaches_espeaks_arguments(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[list[str], bytes]] = []
    run = subprocess.run

    def spy(args: list[str], **kwargs: Any) -> subprocess.CompletedProcess[bytes]:
        calls.append((list(args), kwargs["input"]))
        return run(args, **kwargs)

    monkeypatch.setattr(subprocess, "run", spy)
    speech = speak("--help -v de")
    assert [given for _, given in calls] == [b"--help -v de"]
    assert not any("help" in arg or arg == "de" for arg in calls[0][0])
    assert speech.language == "en"  # "-v de" was read out, not obeyed
    assert np.array_equal(pcm(speech.audio)[1], espeak_reading("--help -v de", "en-us"))


def test_same_text_same_bytes() -> None:
    text = "Uno dos tres, la vida es bella\ncuatro cinco seis, canta conmigo"
    assert speak(text) == speak(text)


def test_a_missing_espeak_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda _: None)
    with pytest.raises(ToolMissing, match="apt-get install espeak-ng"):
        singer.speak("la la la")


def test_the_language_detector_keeps_only_the_languages_sung() -> None:
    """Once lyrics have been read, a worker keeps py3langid's model for the languages
    SingSong sings, not the whole model it was cut from (78 MB held before, 52 MB now)."""
    import gc
    import tracemalloc

    singer._detector.cache_clear()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        singer._detector()
        gc.collect()
        held_mb = (tracemalloc.get_traced_memory()[0] - before) / 2**20
    finally:
        tracemalloc.stop()
    assert held_mb < 60
    assert all(detect_language(text)[0] == code for code, text in LYRICS.items())
