"""The corpus of bad input (tests/hardening/corpus.py) through the engine, the whole bot and
the web API: each gets a clear one-sentence answer, nothing crashes, every job ends, nothing
is left in the temporary folder or written outside the data directory, and names that look
like SQL or paths are stored as they are and do no harm."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import secrets
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import func, select
from sqlalchemy import text as sql

from bot.commands import WORKING, Clip, Message, Person, Place, Reply
from bot.jobs import INTERNAL_ERROR, LOOSE_LIMITS, JobResult, close_worker_threads
from bot.service import Service, open_service
from engine import pipeline
from engine.audio import decode
from engine.errors import InvalidRequest
from storage.database import create_engine
from storage.models import Job, User
from tests.bot import service as bot_service
from tests.bot.adapters.test_web import browser, clip_form, running_web
from tests.bot.commands.test_commands import RecordingOutbox
from tests.bot.service import service_settings
from tests.conftest import ffmpeg_make
from tests.database import POSTGRES_SERVER
from tests.hardening.corpus import (
    AUDIO_NAMES,
    CLIP_S,
    LYRICS_LIMIT,
    NAMES,
    NOT_AUDIO,
    SPEECH,
    Case,
    audio_case,
    audio_cases,
    lyrics_cases,
)

service = bot_service.service  # the fixture: the whole service, real engine in threads
TIMEOUT_S = 120  # every wait is bounded: a stuck job fails the test instead of hanging it
LEAKS = ("traceback", "internal", "exception", "error:", 'file "', "errno", "0x")
BLOB = re.compile(r"^blobs/[0-9a-f]{2}/[0-9a-f]{2}/[0-9a-f]{64}$")


def assert_clear(text: str) -> None:
    """One sentence for a person: capitalised, ended, on one line, not long, and nothing of
    a program's insides in it."""
    assert text and text[0].isupper() and text.endswith((".", "!", "?")), text
    assert "\n" not in text and len(text) <= 300, text
    assert len(re.findall(r"[.!?](?:\s|$)", text)) == 1, text
    assert_engine_message(text)


def assert_engine_message(text: str) -> None:
    """An engine refusal: one line saying what was wrong and what to do instead."""
    assert text and "\n" not in text and len(text) <= 300, text
    assert not any(leak in text.lower() for leak in LEAKS), text
    assert not re.search(r"\bNone\b", text), text


@pytest.fixture()
def temp_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """tempfile's folder (and TMPDIR, for ffmpeg and espeak-ng) moved to an empty folder of
    this test's, so that anything left in it is known to be ours."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    monkeypatch.setenv("TMPDIR", str(folder))
    assert tempfile.gettempdir() == str(folder)
    yield folder


def assert_nothing_left(temp_dir: Path) -> None:
    assert list(temp_dir.iterdir()) == [], "the engine left temporary files behind"


def test_the_corpus_is_complete() -> None:
    assert tuple(c.name for c in audio_cases()) == AUDIO_NAMES
    assert all(c.outcome in ("sung", "refused") for c in (*audio_cases(), *lyrics_cases()))


# --- (a) the engine ----------------------------------------------------------------------


def _outcome(make: Callable[[], object]) -> tuple[str, str]:
    """("made", "") or ("refused", the message); anything but InvalidRequest propagates."""
    try:
        make()
    except InvalidRequest as refusal:
        return "refused", str(refusal)
    return "made", ""


@pytest.mark.parametrize("name", AUDIO_NAMES)
def test_the_engine_sings_or_refuses_each_clip(name: str, temp_dir: Path) -> None:
    case = audio_case(name)
    sung, why = _outcome(lambda: pipeline.sing(case.data, seed=1, extras=False,
                                                  audio_format="wav"))
    assert sung == ("made" if case.outcome == "sung" else "refused"), why
    if case.outcome == "refused":
        assert re.search(case.says, why), why
        assert_engine_message(why)
    # The piano hears notes in whatever can be sung, and refuses what cannot be read in the
    # same words as the voice path.
    played, why_not = _outcome(lambda: pipeline.piano(case.data, formats=("mid",)))
    if case.outcome == "sung":
        assert played == "made", why_not
    else:
        assert played == "refused"
        assert_engine_message(why_not)
        if case.says in (NOT_AUDIO, "the file is empty"):
            assert why_not == why
    assert_nothing_left(temp_dir)


def test_a_header_claiming_hours_is_read_for_what_is_there() -> None:
    """Nothing is sized from the header: the clip decodes to the seconds it holds."""
    clip = decode(audio_case("wav-claims-hours").data, sample_rate=16000)
    assert clip.duration_s == pytest.approx(CLIP_S, abs=0.1) and not clip.truncated


@pytest.mark.parametrize(("suffix", "args"), [
    (".aiff", []), (".caf", []), (".wma", []), (".mkv", ["-c:a", "libopus"]), (".ts", []),
    (".au", [])])
def test_the_containers_ffmpeg_may_read_still_decode(suffix: str, args: list[str]) -> None:
    """decode() reads only the demuxers it names (no playlists): every container a phone or
    a computer saves audio in is among them."""
    data = ffmpeg_make("-i", str(SPEECH), "-t", "1", *args, suffix=suffix)
    assert decode(data, sample_rate=16000).duration_s == pytest.approx(1.0, abs=0.15)


@pytest.mark.parametrize("case", lyrics_cases(), ids=lambda c: c.name)
def test_the_engine_sings_or_refuses_each_lyric(case: Case, temp_dir: Path) -> None:
    text = case.data.decode()
    song = None
    try:
        song = pipeline.lyrics(text, seed=1, extras=False, audio_format="wav")
    except InvalidRequest as refusal:
        assert case.outcome == "refused" and re.search(case.says, str(refusal)), refusal
        assert_engine_message(str(refusal))
    else:
        assert case.outcome == "sung"
        sung_words = song.summary["lyrics"]
        assert sung_words.isprintable() and sung_words == sung_words.strip()
        assert song.audio[:4] == b"RIFF"
    assert_nothing_left(temp_dir)


# --- (b) the whole bot -------------------------------------------------------------------


def _messages() -> list[tuple[Case, Message]]:
    """Each case from a person of its own whose display name is one of NAMES (SQL and
    paths), in a chat of its own; clips keep the file name they came with."""
    cases = [*audio_cases(), *lyrics_cases()]
    made = []
    for number, case in enumerate(cases):
        person = Person("test", f"user-{number}", NAMES[number % len(NAMES)])
        place = Place("test", f"chat-{case.name}")
        if case.filename:
            message = Message(person, place, str(number), None, "",
                              Clip(case.data, case.filename), {"message_id": number})
        else:
            message = Message(person, place, str(number), "sing", case.data.decode(), None,
                              {"message_id": number})
        made.append((case, message))
    return made


def _files_outside_data(root: Path, data_dir: Path) -> list[str]:
    """Files under root that are not the database, a blob, or our temporary folder."""
    strays = []
    for path in root.rglob("*"):
        if path.is_dir():
            continue
        inside = path.relative_to(root)
        if inside.parts[0] == "tmp":
            strays.append(str(inside))  # must be empty: listed so that a leak shows
            continue
        try:
            stored = path.relative_to(data_dir).as_posix()
        except ValueError:
            strays.append(str(inside))
            continue
        if not (BLOB.match(stored) or re.match(r"^singsong\.db(-wal|-shm|-journal)?$",
                                                stored)):
            strays.append(str(inside))
    return strays


async def test_the_bot_answers_every_bad_input_once_with_a_clear_sentence(
        service: Service, temp_dir: Path, tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    outbox = RecordingOutbox()
    service.commands.attach("test", outbox)
    sent = _messages()
    first: dict[str, Reply] = {}
    for case, message in sent:
        first[case.name] = await service.commands.handle(message)
    async with asyncio.timeout(TIMEOUT_S):
        for reply in first.values():
            if reply.job_id is not None:
                await service.commands.answered(reply.job_id)
        await service.jobs.wait()

    answers: dict[str, list[Reply]] = {}
    for target, reply in outbox.sent:
        answers.setdefault(target.chat_id.removeprefix("chat-"), []).append(reply)
    for case, _ in sent:
        started = first[case.name]
        if started.job_id is None:  # refused at once (the lyrics' mistakes)
            assert_clear(started.text)
            assert case.outcome == "refused" and re.search(case.says, started.text, re.I), (
                case.name, started.text)
            assert case.name not in answers
            continue
        assert started.text in WORKING.values()
        (answer,) = answers.pop(case.name)  # exactly one reply per job
        if case.outcome == "sung":
            assert answer.voice is not None and answer.voice.data[:4] == b"OggS", (
                case.name, answer.text)
            # A clear sentence, then a short line of what is in the song and its language.
            song, *about = answer.text.split("\n")
            assert_clear(song)
            assert song.startswith("Here is your song"), (case.name, answer.text)
            assert len(about) <= 1, answer.text
            for line in about:
                assert_engine_message(line)
        else:
            assert_clear(answer.text)
            assert answer.voice is None and not answer.buttons, case.name
            assert re.search(case.says, answer.text, re.I), (case.name, answer.text)
    assert answers == {}, "replies nobody asked for"

    async with service.sessions() as session:
        jobs = list((await session.execute(select(Job))).scalars())
        users = {u.platform_user_id: u.display_name
                 for u in (await session.execute(select(User))).scalars()}
    assert jobs and {job.status for job in jobs} <= {"done", "failed"}
    assert len(jobs) == sum(r.job_id is not None for r in first.values())
    # Each was the sender's mistake or a song, at the first attempt: none of our own faults.
    assert all(job.attempts == 1 and not (job.error or "").startswith(INTERNAL_ERROR)
               for job in jobs), [(job.attempts, job.error) for job in jobs]
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
    for case, message in sent:  # every name kept exactly as it came
        if first[case.name].job_id is None:
            continue  # refused before anything was stored
        assert users[message.person.user_id] == message.person.display_name, case.name
    assert_nothing_left(temp_dir)
    assert _files_outside_data(tmp_path, service.settings.data_dir) == []


def refusing_runner(kind: str, data: bytes | None, parameters: dict[str, Any]
                    ) -> JobResult:
    """An engine that turns every job down at once (these tests are about the names)."""
    raise InvalidRequest("this test's engine sings nothing: send it again later")


@contextlib.asynccontextmanager
async def service_on(backend: str, tmp_path: Path) -> AsyncIterator[Service]:
    """The service with the refusing engine, on SQLite or on a PostgreSQL database of its
    own (dropped afterwards)."""
    options: dict[str, Any] = {}
    admin = create_engine(f"{POSTGRES_SERVER}/test")
    name = f"singsong_{secrets.token_hex(6)}"
    if backend == "postgresql":
        async with admin.connect() as connection:
            await connection.execution_options(isolation_level="AUTOCOMMIT")
            await connection.execute(sql(f"CREATE DATABASE {name}"))
        options["database_url"] = f"{POSTGRES_SERVER}/{name}"
    executor = ThreadPoolExecutor(1)
    try:
        running = await open_service(service_settings(tmp_path, **options),
                                     runner=refusing_runner, executor=executor,
                                     limits=LOOSE_LIMITS, seed=1)
        await running.start()
        try:
            yield running
        finally:
            await running.close()
    finally:
        executor.shutdown()
        close_worker_threads()
        if backend == "postgresql":
            async with admin.connect() as connection:
                await connection.execution_options(isolation_level="AUTOCOMMIT")
                await connection.execute(sql(f"DROP DATABASE {name} WITH (FORCE)"))
        await admin.dispose()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_names_that_look_like_sql_or_paths_are_only_names(
        backend: str, temp_dir: Path, tmp_path: Path) -> None:
    """Such names, as user ids and display names, and as the arguments of /style, /share,
    /history, /album and /melody, on SQLite and on PostgreSQL: every message is answered,
    the tables are still there holding the names exactly as they came, and no file is made
    from a name."""
    async with service_on(backend, tmp_path) as running:
        commands = running.commands
        outbox = RecordingOutbox()
        commands.attach("test", outbox)
        place = Place("test", "names")
        jobs = []
        for number, name in enumerate(NAMES):
            person = Person("test", name, name)
            for command in ("style", "share", "history", "album", "melody"):
                reply = await commands.handle(Message(person, place, f"{number}-{command}",
                                                      command, name))
                assert reply.job_id is None, (command, name)
                assert_engine_message(reply.text)
            # A job stores the display name (and is turned down by this engine).
            started = await commands.handle(Message(person, place, f"{number}-sing", "sing",
                                                    "la la la"))
            assert started.job_id is not None, started.text
            jobs.append(started.job_id)
        async with asyncio.timeout(TIMEOUT_S):
            for job_id in jobs:
                await commands.answered(job_id)
        async with running.sessions() as session:
            users = [(u.platform_user_id, u.display_name)
                     for u in (await session.execute(select(User))).scalars()]
            count = (await session.execute(select(func.count()).select_from(Job))).scalar_one()
        assert sorted(users) == sorted((name, name) for name in NAMES)
        assert count == len(NAMES)
        assert len(outbox.sent) == len(NAMES)
        for _, reply in outbox.sent:
            assert_clear(reply.text)
        data_dir = running.settings.data_dir
    assert_nothing_left(temp_dir)
    assert _files_outside_data(tmp_path, data_dir) == []


# --- and the web API --------------------------------------------------------------------


async def test_the_web_api_answers_bad_uploads_with_a_sentence(
        service: Service, temp_dir: Path, tmp_path: Path) -> None:
    uploads = [(audio_case(name), filename) for name, filename in (
        ("zip", "../../etc/passwd"), ("playlist-of-a-server-file", "/etc/passwd"),
        ("wav-claims-hours", "Robert'); DROP TABLE users;--"), ("png", "..\\..\\x.ogg"))]
    async with running_web(service) as web, browser(web) as alice:
        for body, status, says in (
                (clip_form("sing", b"", "empty.ogg"), 400, "empty"),
                ({"kind": "lyrics", "text": ("la " * 3334)[:10_000]}, 400, LYRICS_LIMIT),
                ({"kind": "lyrics", "text": "🎤🎶🎸"}, 400, "no words")):
            form = body if isinstance(body, aiohttp.FormData) else None
            json = body if isinstance(body, dict) else None
            async with alice.post("/api/jobs", data=form, json=json) as response:
                answer = await response.json()
                assert response.status == status, answer
                assert says in answer["error"].lower()
                assert_clear(answer["error"])
        jobs = []
        for case, filename in uploads:
            async with alice.post("/api/jobs", data=clip_form("sing", case.data,
                                                              filename)) as response:
                assert response.status == 202, await response.text()
                jobs.append((case, await response.json()))
        async with asyncio.timeout(TIMEOUT_S):
            for _, job in jobs:
                await service.commands.answered(job["id"])
        for case, job in jobs:
            async with alice.get(job["url"]) as response:
                seen = await response.json()
            assert seen["status"] == ("done" if case.outcome == "sung" else "failed"), seen
            if case.outcome == "refused":
                assert_clear(seen["error"])
                assert re.search(case.says, seen["error"], re.I), seen["error"]
    assert_nothing_left(temp_dir)
    assert _files_outside_data(tmp_path, service.settings.data_dir) == []


@pytest.mark.parametrize("command", [
    "sing", "style", "share", "album", "melody"])
async def test_ten_thousand_characters_get_a_short_answer(service: Service,
                                                          command: str) -> None:
    text = next(c for c in lyrics_cases() if c.name == "10000-characters").data.decode()
    reply = await service.commands.handle(Message(Person("test", "long"),
                                                  Place("test", "long"), "1", command, text))
    assert reply.job_id is None and reply.text and len(reply.text) <= 300, reply.text[:400]
