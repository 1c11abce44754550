"""Recovery in seconds over Redis, on a redis-server of the test's own that really restarts
empty: the queued jobs whose messages it lost run again within seconds (not at the stale
timer); a result finished while it restarted still arrives (the connections heal); an idle
worker is not in an outage and takes a job the moment it comes."""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Iterator
from typing import Any

import pytest
from redis.asyncio import Redis

from bot import jobs
from bot.jobs import LOOSE_LIMITS, JobEngine, close_worker_threads, constants, run_worker
from storage.queries import user_for
from tests.faults import WAIT_S, quick_runner
from tests.faults.conftest import Store
from tests.faults.test_faults import Gate, job_rows, recorder, track_count
from tests.servers import OwnRedis, own_redis


@pytest.fixture()
def redis_server() -> Iterator[OwnRedis]:
    with own_redis() as server:
        yield server


def engine_on(store: Store, redis: OwnRedis, queue: str, **options: Any) -> JobEngine:
    return JobEngine(store.sessions, store.blobs, store.url, store.data_dir,
                     redis_url=redis.url, queue_name=queue, limits=LOOSE_LIMITS, **options)


def worker_on(store: Store, redis: OwnRedis, queue: str,
              runner: jobs.Runner = quick_runner) -> asyncio.Task[None]:
    return asyncio.create_task(run_worker(redis.url, store.url, str(store.data_dir), runner,
                                          queue, stop_on_signals=False))


async def stop_workers(*workers: asyncio.Task[None]) -> None:
    for worker in workers:
        worker.cancel()
    await asyncio.gather(*workers, return_exceptions=True)
    await asyncio.to_thread(close_worker_threads)


async def waiting_in_redis(redis: OwnRedis, queue: str) -> int:
    client = Redis.from_url(redis.url)
    try:
        return int(await client.llen(queue))
    finally:
        await client.aclose()


async def test_jobs_whose_messages_redis_lost_in_a_restart_run_again_within_seconds(
        sqlite_store: Store, redis_server: OwnRedis) -> None:
    """Three jobs wait in Redis (no worker yet); Redis restarts empty; a worker starts. The
    sweep finds the jobs queued in the database and missing from Redis, and sends them
    again: all done within 10 s of the restart, each once."""
    queue = f"singsong-recovery-{secrets.token_hex(4)}"
    finished, note = recorder()
    engine = engine_on(sqlite_store, redis_server, queue, on_finished=note)
    await engine.start()
    worker = None
    try:
        async with sqlite_store.sessions() as session:
            user = await user_for(session, "telegram", "burst")
        submitted = [(await engine.submit(key=f"telegram:b:{n}", kind="melody", user=user,
                                          parameters={"n": n}))[0].id for n in range(3)]
        async with asyncio.timeout(WAIT_S):
            while await waiting_in_redis(redis_server, queue) < 3:
                await asyncio.sleep(0.05)
        await asyncio.to_thread(redis_server.restart)
        restarted = time.monotonic()
        assert await waiting_in_redis(redis_server, queue) == 0
        worker = worker_on(sqlite_store, redis_server, queue)
        async with asyncio.timeout(WAIT_S):
            await engine.wait()
        recovered_s = time.monotonic() - restarted
    finally:
        await engine.stop()
        if worker is not None:
            await stop_workers(worker)
    assert recovered_s < 10.0
    assert await job_rows(sqlite_store.sessions) == {job_id: ("done", 1)
                                                     for job_id in submitted}
    assert sorted(finished) == [(job_id, "done") for job_id in submitted]


async def test_a_result_finished_while_redis_restarted_arrives_through_healed_connections(
        sqlite_store: Store, redis_server: OwnRedis, monkeypatch: pytest.MonkeyPatch) -> None:
    """Redis restarts while the worker runs a job, so every pooled connection is dead. The
    worker's result, and the engine's wait for it, reconnect: the outcome arrives at once
    (the sweep, which would also find it, is pushed out of the way), and the next job goes
    through the same pools."""
    monkeypatch.setattr(constants, "SWEEP_S", WAIT_S)
    queue = f"singsong-recovery-{secrets.token_hex(4)}"
    gate = Gate()
    finished, note = recorder()
    engine = engine_on(sqlite_store, redis_server, queue, on_finished=note)
    await engine.start()
    worker = worker_on(sqlite_store, redis_server, queue, gate)
    try:
        async with sqlite_store.sessions() as session:
            user = await user_for(session, "discord", "healed")
        first, _ = await engine.submit(key="discord:h:1", kind="melody", user=user,
                                       parameters={"n": 1})
        await gate.until_started()
        await asyncio.to_thread(redis_server.restart)
        opened = time.monotonic()
        gate.open.set()
        async with asyncio.timeout(WAIT_S):
            await engine.wait()
        heard_s = time.monotonic() - opened
        second, _ = await engine.submit(key="discord:h:2", kind="melody", user=user,
                                        parameters={"n": 2})
        async with asyncio.timeout(WAIT_S):
            await engine.wait()
    finally:
        gate.open.set()
        await engine.stop()
        await stop_workers(worker)
    assert heard_s < 3.0
    assert await job_rows(sqlite_store.sessions) == {first.id: ("done", 1),
                                                     second.id: ("done", 1)}
    assert finished == [(first.id, "done"), (second.id, "done")]
    assert await track_count(sqlite_store.sessions, first.id) == 1


async def test_an_idle_worker_is_not_in_an_outage_and_takes_a_job_at_once(
        sqlite_store: Store, redis_server: OwnRedis, caplog: pytest.LogCaptureFixture) -> None:
    """A worker waits on an empty queue for longer than the Redis client's socket timeout
    (5 s): it logs no outage, and the job that then comes is taken at once."""
    caplog.set_level(logging.INFO, logger="singsong.jobs")
    queue = f"singsong-recovery-{secrets.token_hex(4)}"
    engine = engine_on(sqlite_store, redis_server, queue)
    await engine.start()
    worker = worker_on(sqlite_store, redis_server, queue)
    try:
        await asyncio.sleep(6.5)
        async with sqlite_store.sessions() as session:
            user = await user_for(session, "web", "idle")
        sent = time.monotonic()
        job, _ = await engine.submit(key="web:i:1", kind="melody", user=user)
        async with asyncio.timeout(WAIT_S):
            await engine.wait()
        answered_s = time.monotonic() - sent
    finally:
        await engine.stop()
        await stop_workers(worker)
    assert not [record for record in caplog.records if record.levelno >= logging.WARNING]
    assert answered_s < 1.0
    assert await job_rows(sqlite_store.sessions) == {job.id: ("done", 1)}
