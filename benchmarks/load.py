"""Load on the scale-out path, through the fake Telegram server: 300 voice notes from 100
people over 5 minutes (arrival times drawn at random, seeded), PostgreSQL, taskiq over Redis
and `singsong worker` processes; once during the run a worker is killed (SIGKILL, then
started again) and once Redis "restarts" (every connection to it dropped, and refused for a
few seconds, through a proxy). Prints JSON: latency from update to reply (p50, p95, max),
throughput, and the replies lost or doubled (both must be 0).

    .venv/bin/python -m benchmarks.load [--notes 300] [--people 100] [--minutes 5]
                                        [--workers 2] [--seed 1]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import random
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from sqlalchemy import text

from benchmarks import print_json
from benchmarks.e2e import CLIPS, SPEECH, percentile, replying_to
from bot.adapters.telegram import TelegramAdapter
from bot.config import Settings
from bot.jobs import LOOSE_LIMITS
from bot.service import open_service
from storage.database import create_engine
from tests.fakes.tcp_proxy import TcpProxy
from tests.fakes.telegram_api import FakeTelegram

POSTGRES_SERVER = "postgresql+asyncpg://postgres@127.0.0.1:5432"
REDIS_PORT = 6379
SINGSONG = Path(sys.executable).parent / "singsong"
STALE_AFTER_S = 30.0  # a job running this long lost its worker (the longest takes ~10 s)
REDIS_AWAY_S = 5.0
WORKER_AWAY_S = 5.0
DRAIN_TIMEOUT_S = 900.0


class Workers:
    """`singsong worker` processes on the same database, data and Redis."""

    def __init__(self, count: int, environment: dict[str, str], log_folder: Path) -> None:
        self.environment, self.log_folder = environment, log_folder
        self.processes = [self._start(i) for i in range(count)]

    def _start(self, index: int) -> subprocess.Popen[bytes]:
        log = (self.log_folder / f"worker-{index}.log").open("ab")
        return subprocess.Popen([str(SINGSONG), "worker"], env=self.environment,
                                stdout=log, stderr=subprocess.STDOUT)

    def kill(self, index: int) -> None:
        self.processes[index].send_signal(signal.SIGKILL)
        self.processes[index].wait(timeout=30)

    def restart(self, index: int) -> None:
        self.processes[index] = self._start(index)

    def stop(self) -> None:
        for process in self.processes:
            process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()


async def temporary_database() -> str:
    name = f"singsong_load_{secrets.token_hex(4)}"
    admin = create_engine(f"{POSTGRES_SERVER}/test")
    async with admin.connect() as connection:
        await connection.execution_options(isolation_level="AUTOCOMMIT")
        await connection.execute(text(f"CREATE DATABASE {name}"))
    await admin.dispose()
    return name


async def drop_database(name: str) -> None:
    admin = create_engine(f"{POSTGRES_SERVER}/test")
    async with admin.connect() as connection:
        await connection.execution_options(isolation_level="AUTOCOMMIT")
        await connection.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
    await admin.dispose()


async def measure(notes: int, people: int, minutes: float, worker_count: int,
                  seed: int) -> dict[str, Any]:
    clips = [(SPEECH / name).read_bytes() for name in CLIPS]
    draw = random.Random(seed)
    duration_s = minutes * 60
    plan = sorted((draw.uniform(0, duration_s), 1 + index % people) for index in range(notes))
    database = await temporary_database()
    queue = f"singsong-load-{secrets.token_hex(4)}"
    try:
        with tempfile.TemporaryDirectory(prefix="singsong-load-") as folder:
            async with FakeTelegram() as fake, TcpProxy(REDIS_PORT) as redis:
                redis_url = f"redis://127.0.0.1:{redis.port}/0"
                settings = Settings(  # type: ignore[call-arg]
                    _env_file=None, data_dir=Path(folder) / "data",
                    database_url=f"{POSTGRES_SERVER}/{database}", redis_url=redis_url,
                    redis_queue=queue, job_stale_s=STALE_AFTER_S,
                    telegram_token=SecretStr(fake.token),
                    telegram_base_url=fake.base_url, telegram_base_file_url=fake.base_file_url)
                service = await open_service(settings, limits=LOOSE_LIMITS)
                environment = {k: v for k, v in os.environ.items()
                               if not k.startswith("SINGSONG_")}
                environment |= {"SINGSONG_DATA_DIR": str(settings.data_dir),
                                "SINGSONG_DATABASE_URL": settings.effective_database_url,
                                "SINGSONG_REDIS_URL": redis_url,
                                "SINGSONG_REDIS_QUEUE": queue}
                workers = Workers(worker_count, environment, Path(folder))
                adapter = TelegramAdapter(service.commands, settings)
                await adapter.start()
                service.commands.attach("telegram", adapter)
                await service.start()
                try:
                    result = await _run(fake, redis, workers, plan, clips, duration_s)
                finally:
                    await adapter.stop()
                    await service.close()
                    workers.stop()
    finally:
        await drop_database(database)
    return result


async def _run(fake: FakeTelegram, redis: TcpProxy, workers: Workers,
               plan: list[tuple[float, int]], clips: list[bytes],
               duration_s: float) -> dict[str, Any]:
    started = time.monotonic()
    latencies: list[float] = []
    events: list[dict[str, Any]] = []

    async def send(at_s: float, user: int, index: int) -> None:
        await asyncio.sleep(max(0.0, started + at_s - time.monotonic()))
        sent = time.monotonic()
        message_id = await fake.voice(user, user, clips[index % len(clips)], duration=15)
        await fake.wait_for(lambda call: replying_to(call) == (user, message_id),
                            timeout=DRAIN_TIMEOUT_S)
        latencies.append(time.monotonic() - sent)

    async def faults() -> None:
        await asyncio.sleep(duration_s / 3)
        workers.kill(0)
        events.append({"at_s": round(time.monotonic() - started, 1), "fault": "worker killed"})
        await asyncio.sleep(WORKER_AWAY_S)
        workers.restart(0)
        await asyncio.sleep(duration_s / 3 - WORKER_AWAY_S)
        redis.cut()
        events.append({"at_s": round(time.monotonic() - started, 1), "fault": "Redis away"})
        await asyncio.sleep(REDIS_AWAY_S)
        redis.restore()

    fault_task = asyncio.create_task(faults())
    results = await asyncio.gather(*(send(at, user, i) for i, (at, user) in enumerate(plan)),
                                   return_exceptions=True)
    await fault_task
    elapsed = time.monotonic() - started
    await asyncio.sleep(2.0)  # a doubled reply would arrive now
    answers = Counter(key for call in fake.calls if (key := replying_to(call)))
    return {
        "voice_notes": len(plan),
        "people": len({user for _, user in plan}),
        "run_s": round(elapsed, 1),
        "latency_s": {"p50": round(statistics.median(latencies), 2),
                      "p95": round(percentile(latencies, 0.95), 2),
                      "max": round(max(latencies), 2)} if latencies else None,
        "replies_per_minute": round(len(latencies) / elapsed * 60, 1),
        "replies_lost": len(plan) - len(answers),
        "replies_doubled": sum(n - 1 for n in answers.values() if n > 1),
        "unanswered_in_time": sum(isinstance(r, BaseException) for r in results),
        "faults": events,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notes", type=int, default=300)
    parser.add_argument("--people", type=int, default=100)
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    result = asyncio.run(measure(args.notes, args.people, args.minutes, args.workers,
                                 args.seed))
    print_json(result)


if __name__ == "__main__":
    main()
