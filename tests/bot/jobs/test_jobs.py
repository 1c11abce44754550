"""The job engine on SQLite and PostgreSQL, in a real process pool and over the real Redis."""

import asyncio
import dataclasses
import io
import json
import logging
import multiprocessing
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis
from sqlalchemy import func, select
from sqlalchemy.pool import QueuePool

from bot import jobs
from bot.errors import SlowDown
from bot.jobs import JobEngine, JobResult, Limits, constants, execute_job, run_worker
from bot.jobs import worker as worker_module
from bot.logs import JsonFormatter, PlainFormatter, job_context
from engine.errors import InvalidRequest
from storage.models import Job, Track
from storage.queries import idempotency_key, submit_job, user_for
from tests.database import Database

REDIS_URL = "redis://127.0.0.1:6379/0"
LOOSE = Limits(per_user_per_minute=1000, per_user_active=1000, queued_total=10_000)


def quick_runner(kind: str, data: bytes | None, parameters: dict[str, Any]) -> JobResult:
    return JobResult(audio=f"{kind}:{parameters.get('n')}".encode(), midi=b"MThd",
                     duration_s=1.0, key="C major", tempo_bpm=100.0,
                     timings_s={"total": 0.001})


def flaky_runner(kind: str, data: bytes | None, parameters: dict[str, Any]) -> JobResult:
    marker = Path(parameters["marker"])
    if not marker.exists():
        marker.write_text("failed once")
        raise RuntimeError("a passing fault")
    return quick_runner(kind, data, parameters)


def poison_runner(kind: str, data: bytes | None, parameters: dict[str, Any]) -> JobResult:
    raise RuntimeError("this job breaks every time")


def mistaken_runner(kind: str, data: bytes | None, parameters: dict[str, Any]) -> JobResult:
    raise InvalidRequest("there is no sound in this file")


def stuck_runner(kind: str, data: bytes | None, parameters: dict[str, Any]) -> JobResult:
    time.sleep(120)
    raise AssertionError("should have been killed")


def spawn_pool(workers: int = 2) -> ProcessPoolExecutor:
    return ProcessPoolExecutor(max_workers=workers,
                               mp_context=multiprocessing.get_context("spawn"))


def engine_for(database: Database, runner=quick_runner, **options: Any) -> JobEngine:
    options.setdefault("limits", LOOSE)
    return JobEngine(database.sessions, database.blobs, database.url, database.data_dir,
                     runner=runner, **options)


async def counts(database: Database) -> dict[str, int]:
    async with database.sessions() as session:
        rows = await session.execute(select(Job.status, func.count()).group_by(Job.status))
        tracks = (await session.execute(select(func.count()).select_from(Track))).scalar_one()
    return {**{status: n for status, n in rows}, "tracks": tracks}


async def test_many_people_at_once_none_lost_none_doubled(database: Database) -> None:
    """200 messages from 50 people, each delivered twice, through a real process pool."""
    engine = engine_for(database, executor=spawn_pool())
    await engine.start()

    async def send(person: int, message: int) -> bool:
        async with database.sessions() as session:
            user = await user_for(session, "telegram", str(person))
        _, created = await engine.submit(
            key=idempotency_key("telegram", str(person), str(message)), kind="melody",
            user=user, parameters={"n": message})
        return created

    created = await asyncio.gather(*(send(i % 50, i) for _ in range(2) for i in range(200)))
    await engine.wait()
    await engine.stop()
    assert sum(created) == 200
    assert await counts(database) == {"done": 200, "tracks": 200}


async def test_a_passing_fault_is_retried_and_a_poisoned_job_fails(
        database: Database, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(constants, "RETRY_BASE_S", 0.01)
    finished: list[tuple[int, str]] = []

    async def note(job_id: int, outcome: str) -> None:
        finished.append((job_id, outcome))

    flaky = engine_for(database, flaky_runner, executor=spawn_pool(1), on_finished=note)
    await flaky.start()
    async with database.sessions() as session:
        user = await user_for(session, "web", "x")
    job, _ = await flaky.submit(key="web:x:1", kind="melody", user=user,
                                parameters={"marker": str(tmp_path / "marker"), "n": 1})
    await flaky.wait()
    await flaky.stop()

    poisoned = engine_for(database, poison_runner, executor=spawn_pool(1), on_finished=note)
    await poisoned.start()
    bad, _ = await poisoned.submit(key="web:x:2", kind="melody", user=user)
    await poisoned.wait()
    await poisoned.stop()

    async with database.sessions() as session:
        done = await session.get(Job, job.id)
        failed = await session.get(Job, bad.id)
    assert done is not None and done.status == "done" and done.attempts == 2
    assert failed is not None and failed.status == "failed"
    assert failed.attempts == constants.MAX_ATTEMPTS and "breaks every time" in (failed.error or "")
    assert finished == [(job.id, "done"), (bad.id, "failed")]


async def test_a_mistake_fails_at_once_with_its_message(database: Database) -> None:
    engine = engine_for(database, mistaken_runner, executor=spawn_pool(1))
    await engine.start()
    async with database.sessions() as session:
        user = await user_for(session, "web", "y")
    job, _ = await engine.submit(key="web:y:1", kind="sing", user=user, data=b"not audio")
    await engine.wait()
    await engine.stop()
    async with database.sessions() as session:
        failed = await session.get(Job, job.id)
    assert failed is not None and failed.status == "failed" and failed.attempts == 1
    assert failed.error == "there is no sound in this file"


async def test_limits_answer_slow_down(database: Database) -> None:
    engine = engine_for(database, limits=Limits(per_user_per_minute=3, per_user_active=10,
                                                queued_total=5, seconds_per_job=2.0),
                        executor=spawn_pool(1), workers=1)
    async with database.sessions() as session:
        ann = await user_for(session, "web", "ann")
        # Fill the queue with jobs nobody is running yet.
        for i in range(5):
            other = await user_for(session, "web", f"other{i}")
            await submit_job(session, key=f"web:o:{i}", kind="melody", user=other)
    with pytest.raises(SlowDown, match=r"busy right now: try again in 10 s"):
        await engine.submit(key="web:ann:1", kind="melody", user=ann)
    engine.limits = Limits(per_user_per_minute=3, per_user_active=10, queued_total=100)
    async with database.sessions() as session:
        for i in range(3):
            await submit_job(session, key=f"web:ann:old{i}", kind="melody", user=ann)
    with pytest.raises(SlowDown, match="a lot of songs in a minute") as raised:
        await engine.submit(key="web:ann:2", kind="melody", user=ann)
    assert raised.value.retry_after_s == 60
    await engine.stop()


async def test_a_worker_killed_mid_job_finishes_after_restart(database: Database) -> None:
    async with database.sessions() as session:
        user = await user_for(session, "telegram", "7")
        job, _ = await submit_job(session, key="telegram:7:99", kind="melody", user=user)
    worker = multiprocessing.get_context("spawn").Process(
        target=execute_job, args=(job.id, database.url, str(database.data_dir), stuck_runner))
    worker.start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        async with database.sessions() as session:
            status = (await session.execute(select(Job.status).where(Job.id == job.id))
                      ).scalar_one()
        if status == "running":
            break
        await asyncio.sleep(0.05)
    assert status == "running"
    os.kill(worker.pid or 0, signal.SIGKILL)
    worker.join()

    restarted = engine_for(database, executor=spawn_pool(1))
    assert await restarted.start() == 1
    await restarted.wait()
    await restarted.stop()
    async with database.sessions() as session:
        finished = await session.get(Job, job.id)
        tracks = (await session.execute(select(Track).where(Track.job_id == job.id))).all()
    assert finished is not None and finished.status == "done" and finished.attempts == 2
    assert len(tracks) == 1


async def test_taskiq_workers_over_redis(database: Database) -> None:
    queue = f"singsong-test-{secrets.token_hex(4)}"
    workers = [asyncio.create_task(run_worker(REDIS_URL, database.url,
                                              str(database.data_dir), quick_runner, queue))
               for _ in range(2)]
    engine = engine_for(database, redis_url=REDIS_URL, queue_name=queue)
    await engine.start()
    async with database.sessions() as session:
        users = [await user_for(session, "discord", str(i)) for i in range(5)]
    for i in range(20):
        await engine.submit(key=f"discord:c:{i}", kind="melody", user=users[i % 5],
                            parameters={"n": i})
    await asyncio.wait_for(engine.wait(), timeout=60)
    await engine.stop()
    for worker in workers:
        worker.cancel()
    await asyncio.gather(*workers, return_exceptions=True)
    assert await counts(database) == {"done": 20, "tracks": 20}
    redis = Redis.from_url(REDIS_URL)
    leftovers = [key async for key in redis.scan_iter(f"{queue}*")]
    if leftovers:
        await redis.delete(*leftovers)
    await redis.aclose()


async def test_the_real_engine_makes_a_melody(database: Database) -> None:
    engine = engine_for(database, runner=jobs.run_engine, executor=spawn_pool(1))
    await engine.start()
    async with database.sessions() as session:
        user = await user_for(session, "web", "z")
    job, _ = await engine.submit(key="web:z:1", kind="melody", user=user,
                                 parameters={"seed": 3})
    await engine.wait()
    await engine.stop()
    async with database.sessions() as session:
        track = (await session.execute(select(Track).where(Track.job_id == job.id))
                 ).scalar_one()
    assert database.blobs.get(track.audio_blob)[:4] == b"OggS"
    assert database.blobs.get(track.midi_blob or "")[:4] == b"MThd"
    assert track.duration_s > 5 and track.key
    # Measured in the worker's process after the track was stored: the pool's shutdown waited.
    assert track.features is not None and track.features["key"] == track.key


class HeldMeasure:
    """A job's curation measuring that waits until the test lets it go."""

    def __init__(self, features: dict[str, Any]) -> None:
        self.features, self.go = features, threading.Event()

    def __call__(self) -> dict[str, Any]:
        assert self.go.wait(30), "never let go"
        return self.features


async def test_the_reply_does_not_wait_for_the_curation_features(database: Database) -> None:
    """The track is stored and on_finished called while the song is still being measured;
    the features and the measuring's time come after, and wait() waits for them."""
    held = HeldMeasure({"key": "C major"})
    finished: list[tuple[int, str]] = []

    async def on_finished(job_id: int, outcome: str) -> None:
        finished.append((job_id, outcome))

    def runner(kind: str, data: bytes | None, parameters: dict[str, Any]) -> JobResult:
        return dataclasses.replace(quick_runner(kind, data, parameters), measure=held)

    executor = ThreadPoolExecutor(1)
    engine = engine_for(database, runner, executor=executor, on_finished=on_finished)
    try:
        await engine.start()
        async with database.sessions() as session:
            user = await user_for(session, "web", "measured")
        job, _ = await engine.submit(key="web:measured:1", kind="melody", user=user)
        async with asyncio.timeout(30):
            while not finished:
                await asyncio.sleep(0.01)
        assert finished == [(job.id, "done")]
        async with database.sessions() as session:
            track = (await session.execute(select(Track))).scalar_one()
            assert track.features is None
        held.go.set()
        await engine.wait()
        await engine.stop()
    finally:
        held.go.set()
        executor.shutdown()
        await asyncio.to_thread(jobs.close_worker_threads)
    async with database.sessions() as session:
        track = (await session.execute(select(Track))).scalar_one()
        stored = await session.get(Job, job.id)
    assert track.features == {"key": "C major"}
    assert stored is not None and set(stored.timings_s) == {"total", "measure"}


async def test_features_measured_meanwhile_or_of_a_forgotten_song_are_left_alone(
        database: Database) -> None:
    """The nightly curation measured the track first: its features stay. The song was
    forgotten (its track deleted): nothing is stored, and nothing fails."""
    helds = [HeldMeasure({"key": "late"}), HeldMeasure({"key": "late"})]

    def runner(kind: str, data: bytes | None, parameters: dict[str, Any]) -> JobResult:
        return dataclasses.replace(quick_runner(kind, data, parameters),
                                   measure=helds[parameters["n"]])

    executor = ThreadPoolExecutor(1)
    engine = engine_for(database, runner, executor=executor)
    try:
        await engine.start()
        async with database.sessions() as session:
            user = await user_for(session, "web", "curated")
        made = [(await engine.submit(key=f"web:curated:{n}", kind="melody", user=user,
                                     parameters={"n": n}))[0] for n in range(2)]
        async with asyncio.timeout(30):
            while (await counts(database)).get("tracks") != 2:
                await asyncio.sleep(0.01)
        async with database.sessions() as session:
            curated, forgotten = [(await session.execute(
                select(Track).where(Track.job_id == job.id))).scalar_one() for job in made]
            curated.features = {"key": "nightly"}
            await session.delete(forgotten)
            await session.commit()
        for held in helds:
            held.go.set()
        await engine.wait()
        await engine.stop()
    finally:
        for held in helds:
            held.go.set()
        executor.shutdown()
        await asyncio.to_thread(jobs.close_worker_threads)
    async with database.sessions() as session:
        tracks = list((await session.execute(select(Track))).scalars())
        kept = await session.get(Job, made[0].id)
    assert [track.features for track in tracks] == [{"key": "nightly"}]
    assert kept is not None and "measure" not in kept.timings_s


def test_a_warmed_worker_is_connected_to_the_database(database: Database) -> None:
    """warm_worker (which the pool runs in each new worker) leaves the thread's database
    engine made and a connection in its pool, for the first job's claim."""
    def warm() -> tuple[int, int]:
        jobs.warm_worker(database.url, str(database.data_dir))
        state = worker_module._workers[(database.url, str(database.data_dir),
                                        threading.get_ident())]
        pool = state.database.pool
        assert isinstance(pool, QueuePool)
        return pool.checkedin(), pool.checkedout()

    with ThreadPoolExecutor(1) as executor:
        assert executor.submit(warm).result() == (1, 0)
    jobs.close_worker_threads()


def logging_runner(kind: str, data: bytes | None, parameters: dict[str, Any]) -> JobResult:
    logging.getLogger("singsong.test_jobs").warning("working on it")
    return quick_runner(kind, data, parameters)


async def test_every_line_a_job_logs_carries_its_job_and_person(database: Database) -> None:
    """Logged by the engine's runner in a worker thread, without passing any id along."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("singsong.test_jobs")
    logger.addHandler(handler)
    executor = ThreadPoolExecutor(1)
    engine = engine_for(database, logging_runner, executor=executor)
    try:
        await engine.start()
        async with database.sessions() as session:
            user = await user_for(session, "web", "logged")
        job, _ = await engine.submit(key="web:logged:1", kind="melody", user=user)
        await engine.wait()
        await engine.stop()
    finally:
        logger.removeHandler(handler)
        executor.shutdown()
        await asyncio.to_thread(jobs.close_worker_threads)
    entry = json.loads(stream.getvalue())
    assert entry["message"] == "working on it"
    assert (entry["job_id"], entry["person_id"]) == (job.id, user.id)


def test_plain_lines_end_with_the_job_context_and_extras_win() -> None:
    record = logging.LogRecord("singsong.jobs", logging.INFO, __file__, 1, "made it", None,
                               None)
    formatter = PlainFormatter()
    assert formatter.format(record).endswith("INFO singsong.jobs made it")
    with job_context(7, 3):
        assert formatter.format(record).endswith("made it [job_id=7 person_id=3]")
        record.job_id = 8  # passed in extra=: the call's own value is kept
        assert json.loads(JsonFormatter().format(record))["job_id"] == 8
        assert json.loads(JsonFormatter().format(record))["person_id"] == 3
    assert formatter.format(record).endswith("made it")


def test_a_worker_limits_itself_to_one_malloc_arena() -> None:
    """glibc takes the limit (mallopt answers 1); in a process of its own, so this one keeps
    its arenas."""
    answer = subprocess.run(
        [sys.executable, "-c", "from bot.jobs.worker import one_malloc_arena as one; "
         "print(one())"], capture_output=True, text=True, check=True, timeout=60)
    assert answer.stdout.strip() == "True"
