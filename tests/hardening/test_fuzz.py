"""Bounded fuzzing of what people send: bytes into the decoder, text into the parsers.

Hypothesis runs a fixed number of examples (derandomized: the same ones every run, so CI is
repeatable), with no deadline (ffmpeg start-up varies on a busy machine); every decode runs
ffmpeg under its own timeout, so nothing can hang. The decoder may only answer with audio or
BadAudio; the text parsers only with a result or InvalidRequest; the bot only with a Reply.

A short atheris (libFuzzer) run over the decoder goes too, in a process of its own
(libFuzzer ends the process when it is done). Run it by hand for longer:
`.venv/bin/python -m tests.hardening.test_fuzz -runs=100000 CORPUS_DIR`.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import os
import re
import resource
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from bot.commands import Message, Person, Place, Reply, melody_options
from bot.jobs import LOOSE_LIMITS, close_worker_threads
from bot.service import Service, open_service
from engine.arrange import STYLES
from engine.audio import BadAudio, decode
from engine.errors import InvalidRequest
from engine.singer import MAX_LYRICS_CHARS, clean_lyrics
from tests.bot.service import service_settings
from tests.hardening.corpus import header_seeds

ROOT = Path(__file__).resolve().parents[2]
FUZZ = settings(max_examples=20, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
TEXT_FUZZ = settings(FUZZ, max_examples=150)
SAMPLE_RATE = 16000
MAX_S = 2.0
ATHERIS_RUNS = 30


@contextlib.contextmanager
def private_temp() -> Iterator[Path]:
    """tempfile's folder (and TMPDIR) moved to an empty folder; it must be empty again at
    the end (the decoder leaves nothing behind)."""
    saved, saved_env = tempfile.tempdir, os.environ.get("TMPDIR")
    with tempfile.TemporaryDirectory(prefix="singsong-fuzz-") as folder:
        tempfile.tempdir = os.environ["TMPDIR"] = folder
        try:
            yield Path(folder)
            assert os.listdir(folder) == [], "the decoder left temporary files behind"
        finally:
            tempfile.tempdir = saved
            if saved_env is None:
                os.environ.pop("TMPDIR", None)
            else:
                os.environ["TMPDIR"] = saved_env


def decodes_or_refuses(data: bytes) -> None:
    """The decoder's whole contract on any bytes: bounded, finite mono audio, or BadAudio
    with one line for the person; never another exception."""
    try:
        audio = decode(data, sample_rate=SAMPLE_RATE, max_duration_s=MAX_S)
    except BadAudio as refusal:
        message = str(refusal)
        assert message and "\n" not in message and len(message) <= 300, message
        return
    samples = audio.samples
    assert samples.dtype == np.float32 and samples.ndim == 1 and samples.size > 0
    assert samples.size <= round(MAX_S * SAMPLE_RATE)
    assert np.isfinite(samples).all() and np.abs(samples).max() <= 1.0


@st.composite
def mutated_headers(draw: st.DrawFn) -> bytes:
    """A real OGG or WAV with some of its first 64 bytes changed, maybe cut short."""
    data = bytearray(draw(st.sampled_from(header_seeds())))
    for position, value in draw(st.lists(st.tuples(st.integers(0, 63), st.integers(0, 255)),
                                         min_size=1, max_size=6)):
        data[position] = value
    if draw(st.booleans()):
        data = data[:draw(st.integers(0, len(data)))]
    return bytes(data)


def test_random_bytes_are_audio_or_bad_audio() -> None:
    with private_temp():
        @FUZZ
        @given(st.binary(max_size=4096))
        @example(b"")
        @example(b"OggS")
        @example(b"RIFF\xff\xff\xff\xffWAVEfmt ")
        @example(b"#EXTM3U\n#EXTINF:1,\n/etc/passwd\n")
        def fuzz(data: bytes) -> None:
            decodes_or_refuses(data)

        fuzz()


def test_mutated_ogg_and_wav_headers_are_audio_or_bad_audio() -> None:
    with private_temp():
        @FUZZ
        @given(mutated_headers())
        def fuzz(data: bytes) -> None:
            decodes_or_refuses(data)

        fuzz()


# --- Text --------------------------------------------------------------------------------

# Every kind of character (control, format, right-to-left, emoji, combining marks), short
# and long.
ANY_TEXT = st.text(max_size=400) | st.text(st.characters(codec="utf-8"), min_size=280,
                                           max_size=12_000)


@TEXT_FUZZ
@given(ANY_TEXT)
@example("la\x00 la\x1b[2J\u202e\u200f")
@example("🎤" * 301)
def test_lyrics_are_cleaned_or_refused(text: str) -> None:
    try:
        words = clean_lyrics(text)
    except InvalidRequest as refusal:
        assert str(refusal) and "\n" not in str(refusal)
        return
    assert words.isprintable() and words == words.strip() and "  " not in words
    assert 0 < len(words) <= MAX_LYRICS_CHARS and any(c.isalnum() for c in words)


@TEXT_FUZZ
@given(ANY_TEXT | st.sampled_from(["A minor lofi", "F#m Ballad", "bb", "C ROBOT"]))
def test_melody_options_are_options_or_refused(text: str) -> None:
    try:
        options = melody_options(text)
    except InvalidRequest as refusal:
        assert str(refusal) and "\n" not in str(refusal)
        return
    assert set(options) <= {"key", "style"}
    assert options.get("style", "pop") in STYLES


@contextlib.contextmanager
def commands_loop(tmp_path: Path) -> Iterator[tuple[asyncio.AbstractEventLoop, Service]]:
    """A service (SQLite under tmp_path) and the event loop it runs on, for fuzzing the
    commands from a plain function (hypothesis calls it once per example)."""
    loop = asyncio.new_event_loop()
    executor = ThreadPoolExecutor(1)
    service = loop.run_until_complete(open_service(
        service_settings(tmp_path), executor=executor, limits=LOOSE_LIMITS, seed=1))
    try:
        yield loop, service
    finally:
        loop.run_until_complete(service.close())
        loop.close()
        executor.shutdown()
        close_worker_threads()


def _fuzz_commands(tmp_path: Path, commands: list[str]) -> None:
    with commands_loop(tmp_path) as (loop, service):
        person, place = Person("test", "fuzzer", "Fuzzer"), Place("test", "fuzz")

        @settings(FUZZ, max_examples=50)
        @given(st.sampled_from(commands), ANY_TEXT)
        @example(commands[-1], "²")
        def fuzz(command: str, text: str) -> None:
            reply = loop.run_until_complete(service.commands.handle(
                Message(person, place, "1", command, text)))
            assert isinstance(reply, Reply) and reply.text and reply.job_id is None

        fuzz()


def test_style_and_album_arguments_get_a_reply(tmp_path: Path) -> None:
    _fuzz_commands(tmp_path, ["style", "album"])


def test_share_arguments_get_a_reply(tmp_path: Path) -> None:
    _fuzz_commands(tmp_path, ["share"])


# --- atheris -----------------------------------------------------------------------------


def test_a_short_atheris_run_over_the_decoder(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for number, seed in enumerate(header_seeds()):
        (corpus / f"seed-{number}").write_bytes(seed)
    temp = tmp_path / "tmp"
    temp.mkdir()
    # The child starts with this process's peak memory as its own (Linux keeps the high-water
    # mark across fork and exec), so libFuzzer's 2 GB limit is counted from there.
    rss_limit_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024 + 2048
    run = subprocess.run(
        [sys.executable, "-m", "tests.hardening.test_fuzz", f"-runs={ATHERIS_RUNS}",
         "-seed=1", "-max_len=4096", f"-rss_limit_mb={rss_limit_mb}",
         f"-artifact_prefix={tmp_path}/", str(corpus)],
        cwd=ROOT, env={**os.environ, "TMPDIR": str(temp)}, capture_output=True, text=True,
        timeout=300, check=False)
    assert run.returncode == 0, run.stderr[-3000:]
    # libFuzzer counts the seed files' runs too: at least ATHERIS_RUNS were made.
    done = re.search(r"Done (\d+) runs", run.stderr)
    assert done is not None and int(done[1]) >= ATHERIS_RUNS, run.stderr[-3000:]
    assert list(temp.iterdir()) == []


def _atheris_main() -> None:
    """libFuzzer over decode(): only audio or BadAudio may come out."""
    atheris: Any = importlib.import_module("atheris")  # it has no type hints
    atheris.instrument_func(decodes_or_refuses)
    atheris.Setup(sys.argv, decodes_or_refuses)
    atheris.Fuzz()


if __name__ == "__main__":
    _atheris_main()
