"""Throughput of the job engine: sing jobs per minute with the in-process pool (embedded
default, SQLite) and with two taskiq workers over Redis (scale-out, PostgreSQL), against the
ideal (cores / the time of one job alone); and the queue's own cost per job (a job that does
nothing, submitted and awaited one at a time). Prints JSON.

    .venv/bin/python -m benchmarks.jobs [--jobs 12]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from sqlalchemy import text

from bot.jobs import LOOSE_LIMITS, JobEngine, JobResult, run_engine
from storage.blobs import BlobStore
from storage.database import create_engine, migrate, session_factory
from storage.queries import user_for

CLIP = (Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "speech" /
        "198-209-0000.ogg")
REDIS_URL = "redis://127.0.0.1:6379/0"
POSTGRES_SERVER = "postgresql+asyncpg://postgres@127.0.0.1:5432"


def nothing(kind: str, data: bytes | None, parameters: dict[str, Any]) -> JobResult:
    """A job with no work in it: what is left is the queue's own cost."""
    return JobResult(audio=b"-", duration_s=0.0, timings_s={})


async def through_engine(engine: JobEngine, url: str, count: int, kind: str,
                         data: bytes | None, tag: str, one_at_a_time: bool = False
                         ) -> list[float]:
    """Submit `count` jobs (all at once, or each after the last finished); wall times."""
    sessions = engine.sessions
    async with sessions() as session:
        users = [await user_for(session, "bench", f"{tag}{i}") for i in range(count)]
    started = time.perf_counter()
    times = []
    for i, user in enumerate(users):
        begin = time.perf_counter()
        await engine.submit(key=f"bench:{tag}:{i}", kind=kind, user=user, data=data,
                            parameters={"seed": i})
        if one_at_a_time:
            await engine.wait()
            times.append(time.perf_counter() - begin)
    await engine.wait()
    return times or [time.perf_counter() - started]


def sing_job(data: bytes, seed: int) -> None:
    """A worker's whole work for one sing job: the song, then its curation features (which
    the worker measures after storing the track)."""
    result = run_engine("sing", data, {"seed": seed})
    if result.measure is not None:
        result.measure()


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    cores = os.cpu_count() or 1
    data = CLIP.read_bytes()
    sing_job(data, 0)  # models loaded
    single = []
    for seed in range(3):
        start = time.perf_counter()
        sing_job(data, seed)
        single.append(time.perf_counter() - start)
    one_job_s = statistics.median(single)
    ideal = cores * 60.0 / one_job_s
    results: dict[str, Any] = {"cores": cores, "one_sing_job_s": round(one_job_s, 3),
                               "ideal_jobs_per_minute": round(ideal, 1)}

    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite+aiosqlite:///{folder}/bench.db"
        database = create_engine(url)
        await migrate(database)
        pool = ProcessPoolExecutor(cores, mp_context=multiprocessing.get_context("spawn"))
        engine = JobEngine(session_factory(database), BlobStore(Path(folder) / "blobs"), url,
                           Path(folder), executor=pool, limits=LOOSE_LIMITS, workers=cores)
        await engine.start()
        await through_engine(engine, url, cores, "sing", data, "warm")
        wall = (await through_engine(engine, url, args.jobs, "sing", data, "pool"))[0]
        pool_rate = args.jobs * 60.0 / wall
        engine.runner = nothing
        overhead = await through_engine(engine, url, 30, "melody", None, "idle", True)
        await engine.stop()
        await database.dispose()
        results["in_process_pool"] = {
            "jobs": args.jobs, "wall_s": round(wall, 2),
            "jobs_per_minute": round(pool_rate, 1), "share_of_ideal": round(pool_rate / ideal, 3),
            "queue_overhead_per_job_ms": round(1000 * statistics.median(overhead), 1)}

    results["taskiq_redis_two_workers"] = await measure_redis(args, ideal, data)
    results["targets_met"] = {
        "pool_at_least_85pct_of_ideal":
            results["in_process_pool"]["share_of_ideal"] >= 0.85,
        "redis_at_least_85pct_of_ideal":
            results["taskiq_redis_two_workers"]["share_of_ideal"] >= 0.85,
        "queue_overhead_at_most_20_ms":
            results["in_process_pool"]["queue_overhead_per_job_ms"] <= 20,
    }
    return results


async def measure_redis(args: argparse.Namespace, ideal: float, data: bytes) -> dict[str, Any]:
    name = f"singsong_bench_{secrets.token_hex(4)}"
    admin = create_engine(f"{POSTGRES_SERVER}/test")
    async with admin.connect() as connection:
        await connection.execution_options(isolation_level="AUTOCOMMIT")
        await connection.execute(text(f"CREATE DATABASE {name}"))
    url = f"{POSTGRES_SERVER}/{name}"
    queue = f"singsong-bench-{secrets.token_hex(4)}"
    database = create_engine(url)
    workers: list[subprocess.Popen[bytes]] = []
    try:
        await migrate(database)
        with tempfile.TemporaryDirectory() as folder:
            code = ("import asyncio,sys; from bot.jobs import run_worker; "
                    "asyncio.run(run_worker(*sys.argv[1:4], queue_name=sys.argv[4]))")
            workers = [subprocess.Popen([sys.executable, "-c", code, REDIS_URL, url, folder,
                                         queue]) for _ in range(2)]
            engine = JobEngine(session_factory(database), BlobStore(Path(folder) / "blobs"),
                               url, Path(folder), redis_url=REDIS_URL, queue_name=queue,
                               limits=LOOSE_LIMITS, workers=2)
            await engine.start()
            await through_engine(engine, url, 2, "sing", data, "warm")
            wall = (await through_engine(engine, url, args.jobs, "sing", data, "redis"))[0]
            await engine.stop()
    finally:
        for worker in workers:
            worker.terminate()
            worker.wait()
        await _delete_redis_keys(queue)
        await database.dispose()
        async with admin.connect() as connection:
            await connection.execution_options(isolation_level="AUTOCOMMIT")
            await connection.execute(text(f"DROP DATABASE {name} WITH (FORCE)"))
        await admin.dispose()
    rate = args.jobs * 60.0 / wall
    return {"jobs": args.jobs, "wall_s": round(wall, 2), "jobs_per_minute": round(rate, 1),
            "share_of_ideal": round(rate / ideal, 3)}


async def _delete_redis_keys(prefix: str) -> None:
    from redis.asyncio import Redis

    redis = Redis.from_url(REDIS_URL)
    keys = [key async for key in redis.scan_iter(f"{prefix}*")]
    if keys:
        await redis.delete(*keys)
    await redis.aclose()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=12)
    args = parser.parse_args(argv)
    print(json.dumps(asyncio.run(measure(args)), indent=2))


if __name__ == "__main__":
    main()
