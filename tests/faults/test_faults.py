"""Faults, each in a test, with the same invariant: no job lost, no reply twice, backoff
respected. A worker process killed mid-job (the embedded pool and a Redis worker);
PostgreSQL and Redis going away mid-run (behind a TCP proxy the test cuts and restores: the
machine's servers are left alone); the fake Telegram and Discord servers answering 429, 500
or not at all; SIGTERM to `singsong serve` while a job runs. Small fake runners stand in for
the engine where it is not the point."""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import re
import secrets
import signal
import sqlite3
import subprocess
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from redis.asyncio import Redis
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.commands import Message, Person, Place, Reply, Target
from bot.jobs import (
    LOOSE_LIMITS,
    JobEngine,
    JobResult,
    close_worker_threads,
    constants,
    run_worker,
)
from bot.service import Service, open_service
from storage.database import create_engine, session_factory
from storage.models import Job, Track
from storage.queries import user_for
from tests.bot.adapters.test_discord import discord_settings, running
from tests.bot.adapters.test_telegram import replying
from tests.bot.service import service_settings
from tests.bot.test_serve import SINGSONG, free_port, until_listening
from tests.database import POSTGRES_SERVER
from tests.fakes.discord_api import Call, FakeDiscord
from tests.fakes.tcp_proxy import TcpProxy
from tests.fakes.telegram_api import ApiCall, FakeTelegram
from tests.faults import (
    WAIT_S,
    crashing_runner,
    held_redis_worker,
    killable_runner,
    quick_runner,
    redis_worker,
)
from tests.faults.conftest import Store
from tests.faults.services import telegram_bot, telegram_settings

REDIS_PORT, POSTGRES_PORT = 6379, 5432
REDIS_URL = f"redis://127.0.0.1:{REDIS_PORT}/0"
TELEGRAM_TOKEN = "987654:SECRET-fault-token"
ALICE = 1001  # in a private chat, the chat id is the user's id
OutcomeLog = list[tuple[int, str]]


class Gate:
    """A runner (in a thread) that tells when it started and waits until let through."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.open = threading.Event()
        self.runs = 0

    def __call__(self, kind: str, data: bytes | None,
                 parameters: dict[str, Any]) -> JobResult:
        self.runs += 1
        self.started.set()
        if not self.open.wait(WAIT_S):
            raise AssertionError("the gate was never opened")
        return quick_runner(kind, data, parameters)

    async def until_started(self) -> None:
        assert await asyncio.to_thread(self.started.wait, WAIT_S), "the job never started"
        self.started.clear()


# --- Helpers ------------------------------------------------------------------------------


def recorder() -> tuple[OutcomeLog, Callable[[int, str], Awaitable[None]]]:
    finished: OutcomeLog = []

    async def note(job_id: int, outcome: str) -> None:
        finished.append((job_id, outcome))
    return finished, note


def spawn_pool(workers: int = 1) -> ProcessPoolExecutor:
    return ProcessPoolExecutor(max_workers=workers,
                               mp_context=multiprocessing.get_context("spawn"))


async def until(condition: Callable[[], bool], what: str) -> None:
    """For what another process does, which no event here announces: look every 50 ms."""
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < deadline, f"waited {WAIT_S:.0f} s for {what}"
        await asyncio.sleep(0.05)


async def job_rows(sessions: async_sessionmaker[AsyncSession]) -> dict[int, tuple[str, int]]:
    async with sessions() as session:
        rows = await session.execute(select(Job.id, Job.status, Job.attempts))
        return {job_id: (status, attempts) for job_id, status, attempts in rows}


async def track_count(sessions: async_sessionmaker[AsyncSession], job_id: int) -> int:
    async with sessions() as session:
        return int((await session.execute(select(func.count()).select_from(Track)
                                          .where(Track.job_id == job_id))).scalar_one())


class CountingOutbox:
    """A platform that takes every reply: who got what, in order."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, Reply]] = []

    async def deliver(self, target: Target, reply: Reply) -> None:
        self.sent.append((target.chat_id, reply))


def melody_request(person: str, message_id: str) -> Message:
    return Message(Person("telegram", person), Place("telegram", person), message_id,
                   command="melody")


async def delete_redis_keys(prefix: str) -> None:
    redis = Redis.from_url(REDIS_URL)
    try:
        leftovers = [key async for key in redis.scan_iter(f"{prefix}*")]
        if leftovers:
            await redis.delete(*leftovers)
    finally:
        await redis.aclose()


# --- (1) A worker process killed mid-job ---------------------------------------------------


async def test_a_pool_worker_killed_mid_job_gets_a_new_pool_and_the_job_is_done(
        sqlite_store: Store, tmp_path: Path, quick_retries: None) -> None:
    """The embedded engine: SIGKILL breaks the process pool; the engine starts a new one,
    the job runs again there and is answered once; the next job runs on the new pool."""
    finished, note = recorder()
    engine = JobEngine(sqlite_store.sessions, sqlite_store.blobs, sqlite_store.url,
                       sqlite_store.data_dir, workers=1, limits=LOOSE_LIMITS,
                       runner=killable_runner, executor=spawn_pool(), on_finished=note)
    await engine.start()
    pid_file = tmp_path / "pid"
    try:
        async with sqlite_store.sessions() as session:
            user = await user_for(session, "web", "killed")
        first, _ = await engine.submit(key="web:k:1", kind="melody", user=user,
                                       parameters={"pid_file": str(pid_file), "n": 1})
        await until(pid_file.exists, "the job to start in a worker process")
        os.kill(int(pid_file.read_text()), signal.SIGKILL)
        async with asyncio.timeout(WAIT_S):
            await engine.wait()
        second, _ = await engine.submit(key="web:k:2", kind="melody", user=user,
                                        parameters={"pid_file": str(pid_file), "n": 2})
        async with asyncio.timeout(WAIT_S):
            await engine.wait()
    finally:
        await engine.stop()
    rows = await job_rows(sqlite_store.sessions)
    assert rows == {first.id: ("done", 2), second.id: ("done", 1)}
    assert finished == [(first.id, "done"), (second.id, "done")]
    assert [await track_count(sqlite_store.sessions, job.id) for job in (first, second)] == [
        1, 1]


async def test_a_job_that_kills_its_worker_every_time_fails_after_its_attempts(
        sqlite_store: Store, quick_retries: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """No endless loop of new pools: the last attempt's crash ends the job, with our
    apology (two attempts here, to start fewer pools)."""
    monkeypatch.setattr(constants, "MAX_ATTEMPTS", 2)
    finished, note = recorder()
    engine = JobEngine(sqlite_store.sessions, sqlite_store.blobs, sqlite_store.url,
                       sqlite_store.data_dir, workers=1, limits=LOOSE_LIMITS,
                       runner=crashing_runner, executor=spawn_pool(), on_finished=note)
    await engine.start()
    try:
        async with sqlite_store.sessions() as session:
            user = await user_for(session, "web", "poison")
        job, _ = await engine.submit(key="web:p:1", kind="melody", user=user)
        async with asyncio.timeout(WAIT_S):
            await engine.wait()
    finally:
        await engine.stop()
    async with sqlite_store.sessions() as session:
        failed = await session.get(Job, job.id)
    assert failed is not None and failed.status == "failed"
    assert failed.attempts == constants.MAX_ATTEMPTS
    assert (failed.error or "").startswith(constants.INTERNAL_ERROR)
    assert finished == [(job.id, "failed")]


async def test_a_killed_redis_worker_s_job_runs_again_within_about_10_s(
        sqlite_store: Store, tmp_path: Path) -> None:
    """Scale-out: two `singsong worker` processes; the one running the job is killed. Its
    heartbeat stops, so when its lease runs out (LEASE_S, 7 s; the stale timer stays at its
    600 s) the row goes back in the queue and the other worker does it, once."""
    queue = f"singsong-fault-{secrets.token_hex(4)}"
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=redis_worker, args=(
        REDIS_URL, sqlite_store.url, str(sqlite_store.data_dir), queue)) for _ in range(2)]
    for worker in workers:
        worker.start()
    finished, note = recorder()
    engine = JobEngine(sqlite_store.sessions, sqlite_store.blobs, sqlite_store.url,
                       sqlite_store.data_dir, redis_url=REDIS_URL, queue_name=queue,
                       limits=LOOSE_LIMITS, on_finished=note)
    pid_file = tmp_path / "pid"
    try:
        await engine.start()
        async with sqlite_store.sessions() as session:
            user = await user_for(session, "discord", "killed")
        job, _ = await engine.submit(key="discord:k:1", kind="melody", user=user,
                                     parameters={"pid_file": str(pid_file), "n": 1})
        await until(pid_file.exists, "a worker to take the job")
        killed = int(pid_file.read_text())
        assert killed in [worker.pid for worker in workers]
        os.kill(killed, signal.SIGKILL)
        killed_at = time.monotonic()
        async with asyncio.timeout(WAIT_S):
            await engine.wait()
        recovered_s = time.monotonic() - killed_at
    finally:
        await engine.stop()
        for worker in workers:
            worker.kill()
            worker.join(WAIT_S)
        await delete_redis_keys(queue)
        close_worker_threads()
    assert recovered_s < constants.LEASE_S + 2 * constants.SWEEP_S + 1.0
    assert await job_rows(sqlite_store.sessions) == {job.id: ("done", 2)}
    assert finished == [(job.id, "done")]
    assert await track_count(sqlite_store.sessions, job.id) == 1


async def test_sigterm_to_a_redis_worker_finishes_its_job_and_sends_the_outcome(
        sqlite_store: Store, tmp_path: Path) -> None:
    """SIGTERM while a `singsong worker` runs a job: it takes no new one, finishes this one,
    sends its outcome (the engine hears it at once, long before the stale time) and exits 0."""
    queue = f"singsong-fault-{secrets.token_hex(4)}"
    worker = multiprocessing.get_context("spawn").Process(target=held_redis_worker, args=(
        REDIS_URL, sqlite_store.url, str(sqlite_store.data_dir), queue))
    worker.start()
    finished, note = recorder()
    engine = JobEngine(sqlite_store.sessions, sqlite_store.blobs, sqlite_store.url,
                       sqlite_store.data_dir, redis_url=REDIS_URL, queue_name=queue,
                       limits=LOOSE_LIMITS, on_finished=note, stale_after_s=WAIT_S * 2)
    pid_file, go_file = tmp_path / "pid", tmp_path / "go"
    try:
        await engine.start()
        async with sqlite_store.sessions() as session:
            user = await user_for(session, "discord", "stopped")
        job, _ = await engine.submit(key="discord:s:1", kind="melody", user=user, parameters={
            "pid_file": str(pid_file), "go_file": str(go_file), "n": 1})
        await until(pid_file.exists, "the worker to take the job")
        os.kill(worker.pid or 0, signal.SIGTERM)
        go_file.touch()
        async with asyncio.timeout(WAIT_S):
            await engine.wait()
        await asyncio.to_thread(worker.join, WAIT_S)
        assert worker.exitcode == 0
    finally:
        await engine.stop()
        worker.kill()
        worker.join(WAIT_S)
        await delete_redis_keys(queue)
    assert await job_rows(sqlite_store.sessions) == {job.id: ("done", 1)}
    assert finished == [(job.id, "done")]


# --- (2) PostgreSQL restarted mid-run ------------------------------------------------------


async def test_postgresql_going_away_mid_job_loses_nothing(
        postgres_name: str, tmp_path: Path, quick_retries: None) -> None:
    """The service on PostgreSQL through a proxy. A restart while a job runs: the pool's
    ping finds new connections and the job saves on its first attempt. Down while a job
    saves: the attempt fails, the engine waits for the database, then the job runs again.
    Each is answered exactly once."""
    direct = create_engine(f"{POSTGRES_SERVER}/{postgres_name}")  # the test's own view
    gate = Gate()
    outbox = CountingOutbox()
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="singsong-job")
    async with TcpProxy(POSTGRES_PORT) as proxy:
        settings = service_settings(
            tmp_path, database_url=f"postgresql+asyncpg://postgres@127.0.0.1:{proxy.port}/"
                                   f"{postgres_name}")
        service = await open_service(settings, runner=gate, executor=executor,
                                     limits=LOOSE_LIMITS, seed=1)
        service.commands.attach("telegram", outbox)
        try:
            await service.start()
            # A restart while the engine works.
            first = await service.commands.handle(melody_request("1", "m1"))
            await gate.until_started()
            proxy.cut()
            proxy.restore()
            gate.open.set()
            assert first.job_id is not None
            async with asyncio.timeout(WAIT_S):
                await service.commands.answered(first.job_id)
            # Down while the job saves, and for a while after.
            gate.open.clear()
            second = await service.commands.handle(melody_request("2", "m2"))
            await gate.until_started()
            proxy.cut()
            gate.open.set()
            await proxy.until_refused(3)  # the worker, then the engine, knocking
            proxy.restore()
            async with asyncio.timeout(WAIT_S):
                await service.jobs.wait()
        finally:
            gate.open.set()
            proxy.restore()
            await service.close()
            # In threads: the worker threads' connections go through the proxy, which runs
            # on this loop.
            await asyncio.to_thread(executor.shutdown, wait=True)
            await asyncio.to_thread(close_worker_threads)
    sessions = session_factory(direct)
    try:
        rows = await job_rows(sessions)
        assert second.job_id is not None
        assert rows == {first.job_id: ("done", 1), second.job_id: ("done", 2)}
        async with sessions() as session:
            replied = (await session.execute(select(func.count()).select_from(Job)
                                             .where(Job.replied.is_(True)))).scalar_one()
        assert replied == 2
        assert [await track_count(sessions, job_id) for job_id in rows] == [1, 1]
    finally:
        await direct.dispose()
    assert sorted(chat for chat, _ in outbox.sent) == ["1", "2"]
    assert all(reply.text.startswith("A new melody") for _, reply in outbox.sent)


# --- (3) Redis restarted -------------------------------------------------------------------


async def test_redis_going_away_loses_no_job_and_doubles_none(
        sqlite_store: Store, quick_retries: None) -> None:
    """Engine and workers reach Redis through a proxy. Cut while a job runs (its result is
    lost with the connection) and while a job is submitted (its message cannot be sent):
    after the restore both are done once, and a job sent afterwards is too."""
    queue = f"singsong-fault-{secrets.token_hex(4)}"
    gate = Gate()
    finished, note = recorder()
    async with TcpProxy(REDIS_PORT) as proxy:
        redis_url = f"redis://127.0.0.1:{proxy.port}/0"
        workers = [asyncio.create_task(run_worker(redis_url, sqlite_store.url,
                                                  str(sqlite_store.data_dir), gate, queue,
                                                  stop_on_signals=False))
                   for _ in range(2)]
        engine = JobEngine(sqlite_store.sessions, sqlite_store.blobs, sqlite_store.url,
                           sqlite_store.data_dir, redis_url=redis_url, queue_name=queue,
                           limits=LOOSE_LIMITS, on_finished=note)
        try:
            await engine.start()
            async with sqlite_store.sessions() as session:
                user = await user_for(session, "telegram", "r")

            async def submit(n: int) -> int:
                job, _ = await engine.submit(key=f"telegram:r:{n}", kind="melody", user=user,
                                             parameters={"n": n})
                return job.id

            running = await submit(1)
            await gate.until_started()
            proxy.cut()
            gate.open.set()  # it finishes and stores its row; its result cannot reach Redis
            sent_while_down = await submit(2)
            await proxy.until_refused(3)
            proxy.restore()
            async with asyncio.timeout(WAIT_S):
                await engine.wait()
            after = await submit(3)
            async with asyncio.timeout(WAIT_S):
                await engine.wait()
        finally:
            gate.open.set()
            await engine.stop()
            for worker in workers:
                worker.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            close_worker_threads()
            await delete_redis_keys(queue)
    assert await job_rows(sqlite_store.sessions) == {
        running: ("done", 1), sent_while_down: ("done", 1), after: ("done", 1)}
    assert sorted(finished) == [(running, "done"), (sent_while_down, "done"), (after, "done")]
    assert gate.runs == 3


# --- (4) The platforms answering 429, 500, or not at all -----------------------------------


class TelegramWatch:
    """Around the fake Bot API: when each call arrived, and a stall on demand (a call that
    gets no answer until the client gave up; the fake never sees it)."""

    def __init__(self, fake: FakeTelegram) -> None:
        self.arrivals: list[tuple[str, float]] = []
        self.stall_next: set[str] = set()
        self.stalled = asyncio.Event()
        self.released = asyncio.Event()
        self._handler = fake._on_api
        fake._on_api = self._on_api  # type: ignore[method-assign]  # before start()

    async def _on_api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        self.arrivals.append((method, time.monotonic()))
        if method in self.stall_next:
            self.stall_next.discard(method)
            self.stalled.set()
            await asyncio.wait_for(self.released.wait(), WAIT_S)
            return web.json_response({"ok": False, "error_code": 502,
                                      "description": "Bad Gateway"}, status=502)
        return await self._handler(request)

    def times(self, method: str) -> list[float]:
        return [at for name, at in self.arrivals if name == method]


def sent_ok(fake: FakeTelegram, method: str, message_id: int) -> list[ApiCall]:
    return [call for call in fake.calls_to(method) if call.ok
            and call.params.get("reply_parameters", {}).get("message_id") == message_id]


async def replied_flags(service: Service) -> dict[int, bool]:
    async with service.sessions() as session:
        rows = await session.execute(select(Job.id, Job.replied).where(Job.status == "done"))
        return {job_id: replied for job_id, replied in rows}


async def test_telegram_429_500_and_a_stall_each_end_in_exactly_one_song(
        tmp_path: Path) -> None:
    """429: the client waits retry_after (measured between the attempts), then sends once.
    500, and a stall past the client's timeout: the song is not sent, the job keeps its
    reply, and the redelivery (commands.deliver_unsent, as at every start) sends it once."""
    fake = FakeTelegram(TELEGRAM_TOKEN)
    watch = TelegramWatch(fake)
    async with fake, telegram_bot(telegram_settings(tmp_path, fake)) as (service, _):
        fake.fail_next("sendVoice", status=429, retry_after=1)
        limited = await fake.text(ALICE, ALICE, "/melody")
        await fake.wait_for(replying("sendVoice", limited), WAIT_S)
        first, again = watch.times("sendVoice")
        assert again - first >= 1.0  # retry_after: 1 s

        for fault in ("500", "stall"):
            if fault == "500":
                fake.fail_next("sendVoice", status=500, description="Internal Server Error")
            else:
                watch.stall_next.add("sendVoice")
            asked = await fake.text(ALICE, ALICE, "/melody")
            await fake.wait_for(replying("sendMessage", asked), WAIT_S)  # a job is under way
            async with asyncio.timeout(WAIT_S):
                await service.jobs.wait()  # the job is done and its sending failed
            assert not sent_ok(fake, "sendVoice", asked)
            assert sorted((await replied_flags(service)).values()).count(False) == 1
            if fault == "stall":
                assert watch.stalled.is_set() and not watch.released.is_set()
                watch.released.set()  # the stalled request ends: never reached the fake
            assert await service.commands.deliver_unsent() == 1
            assert await service.commands.deliver_unsent() == 0
            assert len(sent_ok(fake, "sendVoice", asked)) == 1
        assert watch.stalled.is_set()
        assert all((await replied_flags(service)).values())
        assert len([call for call in fake.calls_to("sendVoice") if call.ok]) == 3


def posts_so_far(fake: FakeDiscord, path: str, count: int) -> Callable[[Call], bool]:
    """Matches once `count` posts to `path` were made (the last one being looked at)."""
    def matches(call: Call) -> bool:
        return call.method == "POST" and len(fake.sent(path)) >= count and (
            call is fake.sent(path)[count - 1])
    return matches


async def test_discord_429_and_500_on_the_song_end_in_exactly_one_post(
        tmp_path: Path) -> None:
    """discord.py waits a 429's retry_after (measured) and tries a 500 again: each song is
    posted once."""
    fake = FakeDiscord()
    arrivals: list[tuple[Call, float]] = []
    record = fake._record

    async def timed(call: Call) -> None:
        arrivals.append((call, time.monotonic()))
        await record(call)
    fake._record = timed  # type: ignore[method-assign]
    await fake.start()
    gate = Gate()
    try:
        async with running(discord_settings(tmp_path, fake), gate):
            bob = fake.user("bob")
            posts = rf"^/channels/{fake.dm_channel_id(bob)}/messages$"
            for round_, (status, retry_after_s) in enumerate(((429, 0.5), (500, 0.0))):
                gate.open.clear()
                await fake.message(bob, content="/melody", dm=True)
                await gate.until_started()
                # the answer "Composing..." is out; the song fails once
                await fake.wait_for(posts_so_far(fake, posts, 2 * round_ + 1), WAIT_S)
                before = len(fake.sent(posts))
                fake.fail_next("POST", posts, status=status, retry_after_s=retry_after_s)
                gate.open.set()
                song = await fake.wait_for(posts_so_far(fake, posts, before + 2), WAIT_S)
                tries = [at for call, at in arrivals
                         if call.method == "POST" and re.search(posts, call.path)][before:]
                assert len(tries) == 2 and song.filenames[0].endswith(".ogg")
                assert tries[1] - tries[0] >= retry_after_s
    finally:
        await fake.close()
    songs = [call for call in fake.calls if call.method == "POST" and call.filenames]
    assert len(songs) == 4  # two songs, each refused once and posted once


# --- (5) SIGTERM to `singsong serve` while a job runs ---------------------------------------


def serve(tmp_path: Path, port: int, fake: FakeTelegram) -> subprocess.Popen[bytes]:
    environment = {key: value for key, value in os.environ.items()
                   if not key.startswith("SINGSONG_")}
    environment |= {"SINGSONG_DATA_DIR": str(tmp_path / "data"),
                    "SINGSONG_WEB_PORT": str(port),
                    "SINGSONG_TELEGRAM_TOKEN": TELEGRAM_TOKEN,
                    "SINGSONG_TELEGRAM_BASE_URL": fake.base_url,
                    "SINGSONG_TELEGRAM_BASE_FILE_URL": fake.base_file_url}
    return subprocess.Popen([str(SINGSONG), "serve"], cwd=tmp_path, env=environment,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


async def stop(server: subprocess.Popen[bytes]) -> str:
    """SIGTERM, then its exit: what it wrote to stderr."""
    server.send_signal(signal.SIGTERM)
    _, errors = await asyncio.to_thread(server.communicate, timeout=WAIT_S)
    return errors.decode()


async def test_sigterm_while_jobs_run_finishes_them_and_a_restart_answers_none_twice(
        tmp_path: Path) -> None:
    """The real `singsong serve` (process pool, real engine, web chat and Telegram against
    the fake): SIGTERM while a web job runs and a Telegram job is under way. The jobs finish
    and the song goes out before the exit (status 0); after a restart the web API shows the
    job done, and nothing is sent again."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    jar = aiohttp.CookieJar(unsafe=True)  # keep the browser's cookie on an IP address
    async with FakeTelegram(TELEGRAM_TOKEN) as fake:
        server = serve(tmp_path, port, fake)
        try:
            await until_listening(url + "/", server)
            async with aiohttp.ClientSession(url, cookie_jar=jar) as client:
                async with client.post("/api/jobs", json={"kind": "lyrics",
                                                          "text": "la la la"}) as made:
                    assert made.status == 202
                    job = await made.json()
                asked = await fake.text(ALICE, ALICE, "/melody")
                async with asyncio.timeout(WAIT_S):
                    while job["status"] != "running":
                        assert job["status"] == "queued", "the job ended before SIGTERM"
                        await asyncio.sleep(0.05)
                        async with client.get(job["url"]) as polled:
                            job = await polled.json()
            errors = await stop(server)
        finally:
            if server.poll() is None:
                server.kill()
                server.wait(WAIT_S)
        assert server.returncode == 0, errors
        assert "finishing the jobs under way" in errors
        with contextlib.closing(sqlite3.connect(tmp_path / "data" / "singsong.db")) as db:
            rows = db.execute("SELECT status, replied FROM jobs ORDER BY id").fetchall()
        assert rows == [("done", 1), ("done", 1)]
        assert len(fake.calls_to("sendVoice")) == 1
        assert [call.params["reply_parameters"]["message_id"]
                for call in fake.calls_to("sendVoice")] == [asked]

        again = serve(tmp_path, port, fake)
        try:
            await until_listening(url + "/", again)
            async with (aiohttp.ClientSession(url, cookie_jar=jar) as client,
                        client.get(job["url"]) as polled):
                shown = await polled.json()
            errors = await stop(again)  # after its start: every owed reply was sent
        finally:
            if again.poll() is None:
                again.kill()
                again.wait(WAIT_S)
        assert again.returncode == 0, errors
        assert shown["status"] == "done" and shown["track"] is not None
        assert len(fake.calls_to("sendVoice")) == 1
