"""Faults on the scale-out path as it runs in production: PostgreSQL and Redis servers of this
run's own (the machine's servers stay untouched) that really restart (Redis keeps nothing on
disk, so its queue is really gone), the service with the Telegram adapter behind the fake
Bot API, and `singsong worker` processes. Voice notes from many people arrive at seeded
random times; three faults are timed to meet them:

1. PostgreSQL restarts (fast shutdown, 0.15 s down) while notes arrive;
2. a worker is killed (SIGKILL) while every worker runs a job, and started again 2 s later;
3. a burst of notes is queued in Redis when it dies (killed, empty when it comes back 1 s
   later).

Prints JSON: notes sent, answered once, lost, doubled (songs and "working on it" answers);
for each fault, the notes it hit and the time from the fault's end to their last reply;
latency from note to song (p50, p95, max). Targets: 0 lost, 0 doubled, every recovered reply
within 15 s of its fault's end.

    .venv/bin/python -m benchmarks.faults [--notes 40] [--people 20] [--seconds 240]
                                          [--workers 2] [--seed 1]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import random
import secrets
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from redis.asyncio import Redis
from sqlalchemy import select

from benchmarks import print_json
from benchmarks.e2e import SPEECH, percentile, replying_to
from benchmarks.load import Workers
from bot.adapters.telegram import TelegramAdapter
from bot.commands import WORKING
from bot.config import Settings
from bot.jobs import LOOSE_LIMITS
from bot.service import Service, open_service
from storage.models import Job
from tests.fakes.telegram_api import ApiCall, FakeTelegram
from tests.servers import OwnPostgres, OwnRedis, own_postgres, own_redis

CLIPS = sorted((SPEECH / "cmu_arctic").glob("*.wav"))  # 1.5-4 s voice notes
REPLY_TIMEOUT_S = 300.0
DURING_RESTART = 3  # notes sent while PostgreSQL restarts
BURST = 6  # notes queued in Redis when it dies
POSTGRES_AWAY_S = 0.15
REDIS_AWAY_S = 1.0
WORKER_AWAY_S = 2.0
BUSY_WAIT_S = 30.0  # the longest wait for every worker to be busy before the kill
RECOVERY_TARGET_S = 15.0


@dataclass
class Note:
    user: int
    clip: bytes
    message_id: int = 0
    sent_at: float = 0.0
    answered_at: float | None = None


@dataclass
class Fault:
    name: str
    started_at: float = 0.0
    ended_at: float = 0.0
    notes: list[Note] = field(default_factory=list)


class Run:
    def __init__(self, fake: FakeTelegram, service: Service, postgres: OwnPostgres,
                 redis: OwnRedis, workers: Workers, queue: str) -> None:
        self.fake, self.service, self.postgres, self.redis = fake, service, postgres, redis
        self.workers, self.queue = workers, queue
        self.started = time.monotonic()
        self.notes: list[Note] = []
        self._waits: list[asyncio.Task[None]] = []

    async def send(self, note: Note) -> None:
        """Send a voice note now, and note when its song comes."""
        note.sent_at = time.monotonic()
        note.message_id = await self.fake.voice(note.user, note.user, note.clip, duration=3)
        self.notes.append(note)
        self._waits.append(asyncio.create_task(self._answer(note)))

    async def _answer(self, note: Note) -> None:
        with_song = (note.user, note.message_id)
        await self.fake.wait_for(lambda call: replying_to(call) == with_song,
                                 timeout=REPLY_TIMEOUT_S)
        note.answered_at = time.monotonic()

    async def drain(self) -> None:
        await asyncio.gather(*self._waits, return_exceptions=True)

    async def postgres_restart(self, clip: bytes, user: int) -> Fault:
        """PostgreSQL restarts while notes arrive."""
        fault = Fault("postgresql restart")
        fault.started_at = time.monotonic()
        restart = asyncio.create_task(asyncio.to_thread(self.postgres.restart, POSTGRES_AWAY_S))
        await asyncio.sleep(0.05)  # it is going down: the notes meet it
        for offset in range(DURING_RESTART):
            note = Note(user + offset, clip)
            await self.send(note)
            fault.notes.append(note)
        await restart
        fault.ended_at = time.monotonic()
        return fault

    async def worker_killed(self) -> Fault:
        """A worker killed mid-job, once every worker is busy; started again 2 s later. The
        notes it hit are those whose job needed a second attempt."""
        fault = Fault("worker killed mid-job")
        deadline = time.monotonic() + BUSY_WAIT_S
        while await self._running_jobs() < len(self.workers.processes):
            if time.monotonic() > deadline:
                break
            await asyncio.sleep(0.05)
        fault.started_at = fault.ended_at = time.monotonic()
        self.workers.kill(0)
        await asyncio.sleep(WORKER_AWAY_S)
        self.workers.restart(0)
        return fault

    async def redis_dies_with_a_burst(self, clips: list[bytes], first_user: int) -> Fault:
        """A burst of notes from different people, queued in Redis when it dies."""
        fault = Fault("redis restart with a burst queued")
        for offset in range(BURST):
            note = Note(first_user + offset, clips[offset % len(clips)])
            await self.send(note)
            fault.notes.append(note)
        deadline = time.monotonic() + 10.0
        while await self._waiting_in_redis() < BURST // 2 and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        fault.started_at = time.monotonic()
        await asyncio.to_thread(self.redis.restart, REDIS_AWAY_S)
        fault.ended_at = time.monotonic()
        return fault

    async def notes_retried(self) -> list[Note]:
        """The notes whose job ran more than once (a killed worker's)."""
        async with self.service.sessions() as session:
            keys = set((await session.execute(select(Job.idempotency_key)
                                              .where(Job.attempts > 1))).scalars())
        return [note for note in self.notes
                if f"telegram:{note.user}:{note.message_id}" in keys]

    async def _running_jobs(self) -> int:
        async with self.service.sessions() as session:
            rows = await session.execute(select(Job.id).where(Job.status == "running"))
            return len(rows.all())

    async def _waiting_in_redis(self) -> int:
        client = Redis.from_url(self.redis.url)
        try:
            return int(await client.llen(self.queue))
        finally:
            await client.aclose()


async def measure(notes: int, people: int, seconds: float, worker_count: int,
                  seed: int) -> dict[str, Any]:
    queue = f"singsong-faults-{secrets.token_hex(4)}"
    with (own_postgres() as postgres, own_redis() as redis,
          tempfile.TemporaryDirectory(prefix="singsong-faults-") as folder):
        async with FakeTelegram() as fake:
            settings = Settings(  # type: ignore[call-arg]
                _env_file=None, data_dir=Path(folder) / "data", database_url=postgres.url,
                redis_url=redis.url, redis_queue=queue,
                telegram_token=SecretStr(fake.token), telegram_base_url=fake.base_url,
                telegram_base_file_url=fake.base_file_url)
            service = await open_service(settings, limits=LOOSE_LIMITS)
            environment = {k: v for k, v in os.environ.items()
                           if not k.startswith("SINGSONG_")}
            environment |= {"SINGSONG_DATA_DIR": str(settings.data_dir),
                            "SINGSONG_DATABASE_URL": postgres.url,
                            "SINGSONG_REDIS_URL": redis.url, "SINGSONG_REDIS_QUEUE": queue}
            workers = Workers(worker_count, environment, Path(folder))
            adapter = TelegramAdapter(service.commands, settings)
            try:
                await service.start()
                await adapter.start()
                service.commands.attach("telegram", adapter)
                run = Run(fake, service, postgres, redis, workers, queue)
                return await _run(run, notes, people, seconds, seed)
            finally:
                await adapter.stop()
                await service.close()
                workers.stop()


async def _run(run: Run, count: int, people: int, seconds: float,
               seed: int) -> dict[str, Any]:
    draw = random.Random(seed)
    clips = [path.read_bytes() for path in CLIPS]
    steady = count - DURING_RESTART - BURST
    plan = sorted((draw.uniform(0, seconds), 1 + index % people) for index in range(steady))

    async def steady_notes() -> None:
        for at_s, user in plan:
            await asyncio.sleep(max(0.0, run.started + at_s - time.monotonic()))
            await run.send(Note(user, draw.choice(clips)))

    async def faults() -> list[Fault]:
        await asyncio.sleep(seconds * 0.2)
        restart = await run.postgres_restart(clips[0], 1)
        await asyncio.sleep(seconds * 0.25)
        killed = await run.worker_killed()
        await asyncio.sleep(seconds * 0.25)
        burst = await run.redis_dies_with_a_burst(clips, 1 + DURING_RESTART)
        return [restart, killed, burst]

    sending = asyncio.create_task(steady_notes())
    happened = await faults()
    await sending
    await run.drain()
    await asyncio.sleep(2.0)  # a doubled reply would arrive now
    happened[1].notes = await run.notes_retried()
    return report(run, happened)


def report(run: Run, faults: list[Fault]) -> dict[str, Any]:
    songs = Counter(key for call in run.fake.calls if (key := replying_to(call)))
    working = Counter(key for call in run.fake.calls if (key := _working_reply(call)))
    latencies = [note.answered_at - note.sent_at for note in run.notes
                 if note.answered_at is not None]
    return {
        "notes_sent": len(run.notes),
        "people": len({note.user for note in run.notes}),
        "answered_once": sum(songs[(n.user, n.message_id)] == 1 for n in run.notes),
        "lost": sum(songs[(n.user, n.message_id)] == 0 for n in run.notes),
        "doubled": sum(max(0, songs[(n.user, n.message_id)] - 1) for n in run.notes),
        "working_answers_doubled": sum(max(0, c - 1) for c in working.values()),
        "faults": [_fault_report(fault) for fault in faults],
        "latency_s": {"p50": round(statistics.median(latencies), 2),
                      "p95": round(percentile(latencies, 0.95), 2),
                      "max": round(max(latencies), 2)} if latencies else None,
        "recovery_target_s": RECOVERY_TARGET_S,
    }


def _fault_report(fault: Fault) -> dict[str, Any]:
    answered = [note.answered_at for note in fault.notes if note.answered_at is not None]
    recovered = round(max(answered) - fault.ended_at, 2) if answered else None
    return {"fault": fault.name, "down_s": round(fault.ended_at - fault.started_at, 2),
            "notes_hit": len(fault.notes), "notes_answered": len(answered),
            "last_reply_after_fault_s": recovered,
            "within_target": recovered is not None and recovered <= RECOVERY_TARGET_S
            and len(answered) == len(fault.notes)}


def _working_reply(call: ApiCall) -> tuple[int, int] | None:
    """(chat, message) a "working on it" answer replies to."""
    if call.method != "sendMessage" or not call.ok:
        return None
    if call.params.get("text") not in WORKING.values():
        return None
    parameters = call.params.get("reply_parameters") or {}
    return int(call.params["chat_id"]), int(parameters.get("message_id", 0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notes", type=int, default=40)
    parser.add_argument("--people", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=240.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    result = asyncio.run(measure(args.notes, args.people, args.seconds, args.workers,
                                 args.seed))
    print_json(result)


if __name__ == "__main__":
    main()
