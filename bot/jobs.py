"""The job engine: jobs are recorded, then run by a worker, and the job row stays the truth.

Embedded default: an in-process queue feeding a process pool (one worker per core).
Scale-out (SINGSONG_REDIS_URL set): taskiq over Redis, run by `singsong worker` processes on
any number of machines. Both call `execute_job`, which claims a queued job, runs the engine
while renewing the job's lease (a heartbeat every HEARTBEAT_S), stores the result and marks
the job done (or queued again for a retry, or failed).

Over Redis, the engine sweeps every SWEEP_S: a running job whose lease ran out (its worker
died) goes back in the queue, a queued job whose message Redis no longer holds (Redis
restarted empty) is sent again, and a job whose row says it ended is finished even when its
result never reached Redis.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from concurrent.futures import (
    BrokenExecutor,
    Executor,
    ProcessPoolExecutor,
    ThreadPoolExecutor,
)
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot import outages
from bot.errors import SlowDown
from bot.outages import is_outage, outlast
from storage import queries
from storage.blobs import BlobStore
from storage.database import create_engine, session_factory
from storage.models import Chat, Job, User, now
from storage.queries import AttemptSuperseded, save_track, submit_job

log = logging.getLogger("singsong.jobs")

MAX_ATTEMPTS = 3
RETRY_BASE_S = 2.0  # a failed attempt waits 2, then 4 seconds before the next
STALE_RUNNING_S = 600.0  # a job running this long is given up, however alive its worker
HEARTBEAT_S = 2.0  # a worker renews the lease of the job it runs this often
LEASE_S = 7.0  # a running job with no heartbeat for this long belongs to a dead worker
SWEEP_S = 2.0  # over Redis: how often leases, the queue in Redis and the rows are compared
ABSENT_SWEEPS = 2  # a queued job missing from Redis in this many sweeps in a row is resent
LISTEN_BLOCK_S = 2  # a worker's blocking wait on the queue, well under the socket timeout
TASK_NAME = "singsong.run_job"
QUEUE_NAME = "singsong-jobs"
RESULT_POLL_S = 0.25  # how often a waiting client looks for a worker's result in Redis
INTERNAL_ERROR = "internal: "  # starts Job.error when the fault was ours, not the sender's
WORKER_STOPPED = f"{INTERNAL_ERROR}its worker stopped"


@dataclass(frozen=True)
class Limits:
    per_user_per_minute: int = 6
    per_user_per_day: int = 100
    per_user_active: int = 2
    queued_total: int = 200
    seconds_per_job: float = 1.0  # for "try again in N s"


LOOSE_LIMITS = Limits(per_user_per_minute=10_000, per_user_per_day=1_000_000,
                      per_user_active=10_000, queued_total=100_000)
"""For benchmarks and load tests that are the only users."""


async def check_limits(session: AsyncSession, user: User, limits: Limits, workers: int) -> None:
    """Raise SlowDown when this person asked too often (in a minute, or in a day), has too
    much running, or when the service is full."""
    minute_ago = now() - timedelta(minutes=1)
    recent = (await session.execute(select(func.count()).select_from(Job).where(
        Job.user_id == user.id, Job.created_at >= minute_ago))).scalar_one()
    if recent >= limits.per_user_per_minute:
        raise SlowDown("that is a lot of songs in a minute: try again in a minute", 60)
    day_ago = now() - timedelta(days=1)
    today = (await session.execute(select(func.count()).select_from(Job).where(
        Job.user_id == user.id, Job.created_at >= day_ago))).scalar_one()
    if today >= limits.per_user_per_day:
        raise SlowDown(f"that is {today} songs in a day, my limit for one person: try again "
                       "tomorrow", 3600)
    active = (await session.execute(select(func.count()).select_from(Job).where(
        Job.user_id == user.id, Job.status.in_(("queued", "running"))))).scalar_one()
    if active >= limits.per_user_active:
        raise SlowDown("I am still working on your last songs: send this again when they "
                       "arrive", 30)
    queued = (await session.execute(select(func.count()).select_from(Job).where(
        Job.status == "queued"))).scalar_one()
    if queued >= limits.queued_total:
        wait = math.ceil(queued * limits.seconds_per_job / max(workers, 1))
        raise SlowDown(f"I am busy right now: try again in {wait} s", wait)


Runner = Callable[[str, bytes | None, dict[str, Any]], dict[str, Any]]
"""Runs one job's engine work: (kind, input bytes, parameters) -> outputs (see run_engine)."""


def run_engine(kind: str, data: bytes | None, parameters: dict[str, Any]) -> dict[str, Any]:
    """The engine call for each kind of job: bytes out, plus what to record (the song's
    curation features among it: measured here, at ingest, while the worker has it; a piano
    version is never an album candidate, so it is not measured)."""
    made = _make(kind, data, parameters)
    started = time.perf_counter()
    samples = made.pop("samples", None)
    pitch_accuracy = made.pop("pitch_accuracy", None)
    if kind != "piano":
        # SingSong's own songs and melodies start on a downbeat.
        made["features"] = measure(made["audio"], made.get("key"), made.get("tempo_bpm"),
                                   samples=samples, pitch_accuracy=pitch_accuracy,
                                   downbeat_s=0.0)
    made["timings_s"] = {**made["timings_s"],
                         "measure": round(time.perf_counter() - started, 4)}
    return made


def warm_up() -> None:
    """Import the engine and load what it keeps per process (the melody model, the
    soundfont), by making one short melody."""
    from engine import pipeline

    pipeline.melody(seed=0, bars=1, formats=("ogg",))


FEATURE_RATE = 22050  # engine.curate's frames are sized for 22.05 kHz


def measure(data: bytes, key: str | None, tempo_bpm: float | None, *,
            samples: tuple[Any, int] | None = None, pitch_accuracy: float | None = None,
            downbeat_s: float | None = None) -> dict[str, Any]:
    """A stored song's curation features as JSON, or {"failed": why} when it cannot be
    measured (such a song stays out of albums). `samples`: the song already decoded
    (samples, rate), which saves decoding `data` again. SingSong's own songs start on a
    downbeat (downbeat_s=0.0); a piano transcription keeps the singer's timing (None)."""
    from engine import audio, curate

    try:
        if samples is None:
            decoded = audio.decode(data, sample_rate=FEATURE_RATE)
            samples = (decoded.samples, decoded.sample_rate)
        return curate.features(samples[0], samples[1], key=key,
                               tempo_bpm=tempo_bpm, downbeat_s=downbeat_s,
                               pitch_accuracy=pitch_accuracy).to_json()
    except Exception as error:
        log.warning("measuring a song failed: %s: %s", type(error).__name__, error)
        return {"failed": f"{type(error).__name__}: {error}"[:500]}


def _make(kind: str, data: bytes | None, parameters: dict[str, Any]) -> dict[str, Any]:
    from engine import arrange, pipeline
    from engine.form import DEFAULT_FORM
    from engine.singer import supported_language
    from engine.theory import parse_key

    seed = int(parameters.get("seed", 0))
    title = parameters.get("title")  # the picture's headline
    if kind in ("sing", "lyrics"):
        style = parameters.get("style", arrange.DEFAULT_STYLE)
        form = parameters.get("form", DEFAULT_FORM)
        song = (pipeline.sing(data or b"", seed=seed, style=style, form=form, title=title)
                if kind == "sing" else
                # A platform's setting SingSong does not sing in ("ja") counts as none: the
                # person did not choose it for this song, so it must not fail it.
                pipeline.lyrics(parameters.get("text", ""), seed=seed, style=style, form=form,
                                language=supported_language(parameters.get("language")),
                                title=title))
        return {"audio": song.audio, "midi": song.melody_midi, "picture": song.picture,
                "duration_s": song.summary["duration_s"], "key": song.summary["key"],
                "tempo_bpm": song.summary["tempo_bpm"], "timings_s": song.timings_s,
                "pitch_accuracy": song.summary.get("pitch_accuracy"),
                "samples": (song.samples, arrange.SAMPLE_RATE), "sung": sung_as(song.summary)}
    if kind == "melody":
        key = parse_key(parameters["key"]) if parameters.get("key") else None
        piece = pipeline.melody(seed=seed, key=key, style=parameters.get("style"),
                                formats=("ogg", "mid", "png"), title=title)
        # Stored as long as its audio is (the notes end before the band stops ringing).
        return {"audio": piece.files["ogg"], "midi": piece.files["mid"],
                "picture": piece.files["png"], "duration_s": piece.audio_duration_s,
                "key": piece.melody.key.name, "tempo_bpm": piece.melody.tempo_bpm,
                "timings_s": piece.timings_s}
    if kind == "group":
        return _group_song(data or b"", parameters)
    if kind == "piano":
        result = pipeline.piano(data or b"", formats=("ogg", "mid", "png"))
        return {"audio": result.files["ogg"], "midi": result.files["mid"],
                "picture": result.files["png"], "duration_s": result.duration_s,
                "key": None, "tempo_bpm": result.tempo_bpm, "timings_s": result.timings_s}
    raise ValueError(f"unknown job kind {kind!r}")


def _group_song(data: bytes, parameters: dict[str, Any]) -> dict[str, Any]:
    """A group song from its voices (bot.together packs them, in the order they joined)."""
    from bot.group_bundle import unpack_voices
    from engine import arrange, pipeline

    voices, names = unpack_voices(data)
    song = pipeline.group_song(voices, seed=int(parameters.get("seed", 0)),
                               style=parameters.get("style", arrange.DEFAULT_STYLE))
    summary = song.summary
    heard = {int(voice["index"]): voice for voice in summary.get("voices", [])}
    sung = {"form": "group", "sections": sung_as(summary)["sections"],
            "voices": [{"name": name, "sung": bool(heard.get(index, {}).get("sung", True)),
                        "reason": heard.get(index, {}).get("reason")}
                       for index, name in enumerate(names)]}
    return {"audio": song.audio, "midi": song.melody_midi, "picture": song.picture or None,
            "duration_s": summary["duration_s"], "key": summary["key"],
            "tempo_bpm": summary["tempo_bpm"], "timings_s": song.timings_s,
            # Curation measures one channel: the two, averaged.
            "samples": (song.samples.mean(axis=1), arrange.SAMPLE_RATE), "sung": sung}


def sung_as(summary: dict[str, Any]) -> dict[str, Any]:
    """What a song's reply tells of it, from the engine's summary: its form, its sections
    (name and start) and, for lyrics, the language it was sung in."""
    sung: dict[str, Any] = {"form": summary.get("form"),
                            "sections": [{"name": s["name"], "start_s": round(s["start_s"], 2)}
                                         for s in summary.get("sections") or ()]}
    if summary.get("language"):
        sung["language"] = {k: summary["language"][k] for k in ("code", "name", "chosen_by")
                            if k in summary["language"]}
    if summary.get("syllables_sung", 0) < summary.get("syllables", 0):
        sung["sung_s"] = summary["input_sung_s"]
    return sung


def execute_job(job_id: int, database_url: str, data_dir: str,
                runner: Runner = run_engine) -> str:
    """Run one job in this process: 'done', 'retry', 'failed', or 'skipped' when the job
    was not queued (another worker has it, or it is finished). Each worker thread keeps one
    event loop and one database engine for all its jobs, so a job does not pay for a new
    connection."""
    worker = _worker_state(database_url, data_dir)
    return worker.loop.run_until_complete(_execute(job_id, worker, runner))


@dataclass
class _Worker:
    loop: asyncio.AbstractEventLoop
    database: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    blobs: BlobStore


_workers: dict[tuple[str, str, int], _Worker] = {}


def _worker_state(database_url: str, data_dir: str) -> _Worker:
    key = (database_url, data_dir, threading.get_ident())
    if key not in _workers:
        loop = asyncio.new_event_loop()
        database = create_engine(database_url)
        _workers[key] = _Worker(loop, database, session_factory(database),
                                BlobStore(Path(data_dir) / "blobs"))
    return _workers[key]


def close_worker_threads() -> None:
    """Close the event loops and database engines that worker threads of this process keep
    (once their executor has shut down: tests, or a process that runs jobs in threads)."""
    def close(worker: _Worker) -> None:
        worker.loop.run_until_complete(worker.database.dispose())
        worker.loop.close()

    while _workers:
        _, worker = _workers.popitem()
        # In a thread of its own: the caller may be running an event loop of its own.
        closer = threading.Thread(target=close, args=(worker,))
        closer.start()
        closer.join()


async def _execute(job_id: int, worker: _Worker, runner: Runner) -> str:
    from engine.errors import InvalidRequest

    blobs = worker.blobs
    async with worker.sessions() as session:
        claimed = await session.execute(
            update(Job).where(Job.id == job_id, Job.status == "queued")
            .values(status="running", attempts=Job.attempts + 1, started_at=now(),
                    heartbeat_at=now()))
        await session.commit()
        if claimed.rowcount != 1:  # type: ignore[attr-defined]
            return "skipped"
        job = (await session.execute(select(Job).where(Job.id == job_id))).scalar_one()
        # Hand the connection back while the engine works: the save checks one out again,
        # and the pool's ping replaces it if the database restarted meanwhile.
        await session.commit()
    attempt = job.attempts
    data = blobs.get(job.input_blob) if job.input_blob else None
    heartbeat = asyncio.create_task(_keep_lease(worker, job_id, attempt))
    try:
        made = await asyncio.to_thread(runner, job.kind, data, dict(job.parameters))
    except InvalidRequest as mistake:
        return await _end_attempt(worker, job_id, attempt, "failed", str(mistake))
    except Exception as error:  # a bug or a passing fault: retry, then give up
        log.exception("job %d attempt %d failed", job_id, attempt)
        status = "failed" if attempt >= MAX_ATTEMPTS else "queued"
        ended = await _end_attempt(worker, job_id, attempt, status,
                                   f"{INTERNAL_ERROR}{type(error).__name__}: {error}")
        return "retry" if ended == "queued" else ended
    finally:
        heartbeat.cancel()
        await asyncio.gather(heartbeat, return_exceptions=True)
    if made.get("sung"):  # kept with the job (its reply says it), saved with the track
        job.parameters = {**job.parameters, "sung": made["sung"]}
    async with worker.sessions() as session:
        try:
            await save_track(
                session, job, audio_blob=blobs.put(made["audio"]),
                midi_blob=blobs.put(made["midi"]) if made.get("midi") else None,
                picture_blob=blobs.put(made["picture"]) if made.get("picture") else None,
                duration_s=float(made["duration_s"]), key=made.get("key"),
                tempo_bpm=made.get("tempo_bpm"), timings_s=made.get("timings_s"),
                features=made.get("features"), attempt=attempt)
        except AttemptSuperseded:
            log.warning("job %d attempt %d finished after it was given up: not stored",
                        job_id, attempt)
            return "skipped"
    return "done"


async def _end_attempt(worker: _Worker, job_id: int, attempt: int, status: str,
                       error: str) -> str:
    """An attempt that made nothing: the job fails or goes back in the queue (status),
    unless it was given up meanwhile ('skipped')."""
    async with worker.sessions() as session:
        ended = await queries.end_attempt(session, job_id, attempt, status=status,
                                          error=error[:1000])
    return status if ended else "skipped"


async def _keep_lease(worker: _Worker, job_id: int, attempt: int) -> None:
    """Renew the job's lease every HEARTBEAT_S while the engine works on it. A database that
    is away misses beats (the lease is generous); a job given up meanwhile ends the beat."""
    while True:
        await asyncio.sleep(HEARTBEAT_S)
        try:
            async with worker.sessions() as session:
                if not await queries.renew_lease(session, job_id, attempt):
                    return
        except Exception as error:
            if not is_outage(error):
                raise
            log.debug("job %d: heartbeat missed (%s)", job_id, type(error).__name__)


@dataclass
class _Flight:
    """A job handed to the workers over Redis, and what the engine knows of it."""

    task: Any = None  # taskiq's handle of the message sent for it; None: send one
    answered: bool = False  # its message's outcome came ('skipped'): now only the row tells
    absent_sweeps: int = 0  # sweeps in a row that found it queued and its message gone
    ended: str | None = None  # the row says it ended: 'done', 'failed' or 'gone'


class JobEngine:
    """Submits jobs and sees them run: in a process pool here, or via taskiq over Redis.
    A worker process that dies (the pool breaks: a new one starts; over Redis its lease runs
    out), a database or Redis that goes away for a while (Redis may come back empty): the
    job goes back in the queue and runs again, a job that kills its worker every time fails
    after MAX_ATTEMPTS, and every job ends in one call of on_finished."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], blobs: BlobStore,
                 database_url: str, data_dir: Path, *, redis_url: str | None = None,
                 workers: int | None = None, limits: Limits = Limits(),
                 runner: Runner = run_engine, executor: Executor | None = None,
                 queue_name: str = QUEUE_NAME,
                 on_finished: Callable[[int, str], Awaitable[None]] | None = None,
                 stale_after_s: float = STALE_RUNNING_S, lease_s: float = LEASE_S,
                 outage_s: float = outages.OUTAGE_S) -> None:
        self.sessions, self.blobs = sessions, blobs
        self.database_url, self.data_dir = database_url, data_dir
        self.workers = workers or os.cpu_count() or 1
        self.limits, self.runner = limits, runner
        self.redis_url, self.queue_name = redis_url, queue_name
        self.on_finished = on_finished
        # Over Redis: a running job whose heartbeat stopped for lease_s belongs to a worker
        # that died; one running longer than stale_after_s (longer than the longest job) to
        # a worker stuck in it.
        self.stale_after_s, self.lease_s, self.outage_s = stale_after_s, lease_s, outage_s
        self._executor = executor
        self._broker: Any = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._flights: dict[int, _Flight] = {}
        self._sweeper: asyncio.Task[None] | None = None
        self._database_back_at: float | None = None  # when the sweeps last found it again
        self.running = False  # between start() and stop()

    async def start(self) -> int:
        """Start the workers (or the taskiq client) and take up what a crash left behind.
        In-process, every job marked running belongs to a process that is gone; over Redis,
        those whose lease ran out do, and the others are followed to their end."""
        if self.redis_url:
            self._broker = make_broker(self.redis_url, queue_name=self.queue_name)
            await self._broker.startup()
        elif self._executor is None:
            # Spawned, not forked: a fork would copy this process's event loop and database
            # threads mid-flight.
            self._executor = self._new_pool()
            # Start every worker now, and load the model and soundfont there, so that the
            # first people after a start do not wait for it.
            for _ in range(self.workers):
                self._executor.submit(warm_up)
        async with self.sessions() as session:
            over_redis = self._broker is not None
            await self._give_up_lost(session, lease_s=self.lease_s if over_redis else 0.0)
            waiting = await queries.unfinished_job_ids(session, running=over_redis)
        for job_id in waiting:
            self._spawn(job_id)
        if self._broker is not None:
            self._sweeper = asyncio.create_task(self._sweep_forever(), name="singsong-sweep")
        self.running = True
        return len(waiting)

    async def stop(self) -> None:
        """Let the jobs under way finish, then close the workers (or the Redis client)."""
        self.running = False
        await self.wait()
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        if self._broker is not None:
            await self._broker.shutdown()
        if isinstance(self._executor, ProcessPoolExecutor):
            self._executor.shutdown(wait=True)

    async def submit(self, *, key: str, kind: str, user: User, chat: Chat | None = None,
                     data: bytes | None = None,
                     parameters: dict[str, Any] | None = None) -> tuple[Job, bool]:
        """Record and start a job; a redelivered message (same key) gets its job back and
        starts nothing. Raises SlowDown when a limit says wait."""
        async with self.sessions() as session:
            existing = (await session.execute(
                select(Job).where(Job.idempotency_key == key))).scalar_one_or_none()
            if existing is not None:
                return existing, False
            await check_limits(session, user, self.limits, self.workers)
            blob = self.blobs.put(data) if data is not None else None
            job, created = await submit_job(session, key=key, kind=kind, user=user, chat=chat,
                                            input_blob=blob, parameters=parameters)
        if created:
            self._spawn(job.id)
        return job, created

    async def wait(self) -> None:
        """Until every job this engine started has finished (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks))

    def _spawn(self, job_id: int) -> None:
        task = asyncio.create_task(self._follow(job_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _follow(self, job_id: int) -> None:
        outcome = "retry"
        for attempt in range(MAX_ATTEMPTS + 1):
            try:
                outcome = await self._run_once(job_id)
            except Exception as error:
                # The worker went away (a killed process breaks the pool), or the database or
                # Redis did mid-job: whatever the row says now is the truth.
                log.warning("job %d: its worker gave up (%s: %s)", job_id,
                            type(error).__name__, error)
                if isinstance(error, BrokenExecutor):
                    self._replace_pool()
                outcome = await self._give_back(job_id)
            if outcome != "retry":
                break
            await asyncio.sleep(RETRY_BASE_S * 2**attempt)
        if self.on_finished is not None:
            await self.on_finished(job_id, outcome)

    def _new_pool(self) -> ProcessPoolExecutor:
        """One worker process per core, spawned (a fork would copy this process's event loop
        and database threads mid-flight), logging as this process does."""
        from bot.logs import worker_logging

        return ProcessPoolExecutor(max_workers=self.workers,
                                   mp_context=multiprocessing.get_context("spawn"),
                                   initializer=worker_logging,
                                   initargs=(logging.getLogger().getEffectiveLevel(),))

    def _replace_pool(self) -> None:
        """A worker process died: its pool is broken for good, so start a new one (once,
        however many jobs it broke)."""
        broken = self._executor
        if not isinstance(broken, ProcessPoolExecutor) or not getattr(broken, "_broken", True):
            return
        log.warning("a worker process died: starting a new pool of %d", self.workers)
        self._executor = self._new_pool()
        broken.shutdown(wait=False, cancel_futures=True)
        if self.runner is run_engine:
            for _ in range(self.workers):
                self._executor.submit(warm_up)

    async def _give_back(self, job_id: int) -> str:
        """After its worker gave up: the job goes back in the queue (or fails, when that was
        its last attempt); 'retry', or how it ended when it did. Waits out a database that is
        away (up to outage_s), and says 'lost' after that (a restart takes the job up)."""
        async def given_back() -> str:
            async with self.sessions() as session:
                if self._broker is None:  # here no other process can be running it
                    await queries.end_attempt(session, job_id, MAX_ATTEMPTS, status="failed",
                                              error=WORKER_STOPPED, at_least=True)
                    await queries.end_attempt(session, job_id, 0, status="queued",
                                              error=WORKER_STOPPED, at_least=True)
                status = (await queries.job_statuses(session, [job_id])).get(job_id)
            if status is None:
                return "gone"  # deleted (/forget) meanwhile
            return "retry" if status in ("queued", "running") else status

        try:
            return await outlast(given_back, f"job {job_id}", outage_s=self.outage_s)
        except Exception as error:
            if not is_outage(error):
                raise
            log.error("job %d: the database did not come back (%s); a restart takes the job "
                      "up", job_id, error)
            return "lost"

    async def _run_once(self, job_id: int) -> str:
        if self._broker is not None:
            return await self._run_on_worker(job_id)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, execute_job, job_id,
                                          self.database_url, str(self.data_dir), self.runner)

    async def _run_on_worker(self, job_id: int) -> str:
        """Hand the job to whichever worker takes it from Redis and wait for its outcome,
        through Redis restarts. The sweep (every SWEEP_S) watches the row and the queue in
        Redis: it resends the message that Redis lost (or whose worker died), and ends the
        wait when the row says the job ended though no outcome came."""
        from redis.exceptions import RedisError
        from taskiq.exceptions import TaskiqError

        flight = self._flights[job_id] = _Flight()
        away_since: float | None = None
        try:
            while flight.ended is None:
                try:
                    if flight.task is None:
                        flight.answered, flight.absent_sweeps = False, 0
                        flight.task = await self._broker.find_task(TASK_NAME).kiq(job_id)
                    elif not flight.answered and await flight.task.is_ready():
                        result = await flight.task.get_result()
                        outcome = str(result.return_value) if not result.is_err else "retry"
                        if outcome != "skipped":
                            return outcome
                        flight.answered = True  # another message's worker has it, or had
                    away_since = None
                except (RedisError, OSError, TaskiqError) as error:
                    # Redis is away: wait for it (the sweep may resend meanwhile).
                    away_since = away_since or time.monotonic()
                    if time.monotonic() - away_since > self.outage_s:
                        raise
                    log.warning("job %d: Redis is away (%s: %s)", job_id,
                                type(error).__name__, error.__cause__ or error)
                    await asyncio.sleep(outages.RECONNECT_S)
                    continue
                await asyncio.sleep(RESULT_POLL_S)
            return flight.ended
        finally:
            del self._flights[job_id]

    # -- The sweep, over Redis -------------------------------------------------------------

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_S)
            try:
                await self.sweep()
            except Exception as error:
                if not is_outage(error):
                    log.exception("the sweep failed; trying again in %.0f s", SWEEP_S)

    async def sweep(self) -> None:
        """Over Redis, once: give up the running jobs whose lease ran out (their worker died),
        resend the jobs that are queued but whose message Redis no longer holds (seen so in
        ABSENT_SWEEPS sweeps in a row: a worker may be between taking a message and claiming
        its job), and end the wait for jobs whose row says they ended."""
        followed = list(self._flights)
        try:
            async with self.sessions() as session:
                # After an outage the workers' heartbeats did not get through either: wait a
                # lease before judging them.
                judge = (self._database_back_at is not None
                         and time.monotonic() - self._database_back_at >= self.lease_s)
                given_up = set(await self._give_up_lost(session)) if judge else set()
                statuses = await queries.job_statuses(session, followed)
        except Exception:
            self._database_back_at = None
            raise
        self._database_back_at = self._database_back_at or time.monotonic()
        in_redis = await self._job_ids_in_redis()
        for job_id in followed:
            flight = self._flights.get(job_id)
            if flight is not None:
                self._judge(job_id, flight, statuses.get(job_id, "gone"), in_redis, given_up)

    def _judge(self, job_id: int, flight: _Flight, status: str, in_redis: set[int],
               given_up: set[int]) -> None:
        if status in ("done", "failed", "gone"):
            flight.ended = status
        elif status != "queued" or flight.task is None or job_id in in_redis:
            flight.absent_sweeps = 0
        else:
            flight.absent_sweeps += 1
            if job_id in given_up or flight.absent_sweeps >= ABSENT_SWEEPS:
                log.warning("job %d: %s; sending it again", job_id,
                            "its worker stopped" if job_id in given_up
                            else "its message is no longer in Redis")
                flight.task = None

    async def _give_up_lost(self, session: AsyncSession,
                            lease_s: float | None = None) -> list[int]:
        return await queries.give_up_lost_jobs(
            session, lease_s=self.lease_s if lease_s is None else lease_s,
            stale_s=self.stale_after_s if self._broker is not None else 0.0,
            max_attempts=MAX_ATTEMPTS, error=WORKER_STOPPED)

    async def _job_ids_in_redis(self) -> set[int]:
        """The jobs whose messages wait in Redis's queue now."""
        from redis.asyncio import Redis

        async with Redis(connection_pool=self._broker.connection_pool) as redis:
            waiting = await redis.lrange(self.queue_name, 0, -1)
        ids = set()
        for raw in waiting:
            with contextlib.suppress(Exception):  # not one of ours
                ids.add(int(self._broker.formatter.loads(raw).args[0]))
        return ids


def make_broker(redis_url: str, runner: Runner = run_engine, database_url: str = "",
                data_dir: str = "", queue_name: str = QUEUE_NAME) -> Any:
    """The taskiq broker over Redis, with the one task: run a job by id. Its connections heal:
    a command on a connection that a Redis restart closed reconnects and runs again."""
    from redis.asyncio import Redis
    from redis.asyncio.retry import Retry
    from redis.backoff import ExponentialBackoff
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import RedisError
    from redis.exceptions import TimeoutError as RedisTimeoutError
    from taskiq_redis import ListQueueBroker, RedisAsyncResultBackend

    class Broker(ListQueueBroker):
        """Waits on the queue in blocking calls shorter than the socket timeout (an idle
        worker is not in an outage), and listens on through a Redis restart."""

        async def listen(self) -> AsyncGenerator[bytes, None]:
            away = False
            while True:
                try:
                    async with Redis(connection_pool=self.connection_pool) as redis:
                        popped = await redis.brpop([self.queue_name], timeout=LISTEN_BLOCK_S)
                except (RedisError, OSError) as error:
                    if not away:
                        log.warning("worker: Redis is away (%s): listening again every "
                                    "%.1f s", error, outages.RECONNECT_S)
                    away = True
                    await asyncio.sleep(outages.RECONNECT_S)
                    continue
                if away:
                    log.info("worker: Redis is back")
                    away = False
                if popped:
                    message = popped[1]
                    yield message.encode() if isinstance(message, str) else message

    healing: dict[str, Any] = {"retry": Retry(ExponentialBackoff(cap=1.0, base=0.05), 4),
               "retry_on_error": [RedisConnectionError, RedisTimeoutError]}
    # Results only say when a job has moved on (its outcome word); they are named after the
    # queue and expire in an hour.
    broker = Broker(redis_url, queue_name=queue_name, **healing).with_result_backend(
        RedisAsyncResultBackend(redis_url, result_ex_time=3600, prefix_str=queue_name,
                                **healing))

    async def run_job(job_id: int) -> str:
        return await asyncio.to_thread(execute_job, job_id, database_url, data_dir, runner)

    broker.register_task(run_job, task_name=TASK_NAME)
    return broker


async def run_worker(redis_url: str, database_url: str, data_dir: str,
                     runner: Runner = run_engine, queue_name: str = QUEUE_NAME, *,
                     stop_on_signals: bool = True) -> None:
    """`singsong worker`: take jobs from Redis one at a time until SIGTERM or SIGINT; then
    take no more, and finish the job under way (its outcome sent) before returning."""
    from taskiq.receiver import Receiver

    broker = make_broker(redis_url, runner, database_url, data_dir, queue_name)
    finish = asyncio.Event()
    loop = asyncio.get_running_loop()
    signals = (signal.SIGINT, signal.SIGTERM) if stop_on_signals else ()
    for signum in signals:
        loop.add_signal_handler(signum, finish.set)
    await broker.startup()
    broker.is_worker_process = True
    try:
        with ThreadPoolExecutor(max_workers=1) as executor:
            await Receiver(broker, executor, max_async_tasks=1,
                           run_startup=False).listen(finish)
        if finish.is_set():
            log.info("worker: stopped, the job under way finished")
    finally:
        for signum in signals:
            loop.remove_signal_handler(signum)
        await broker.shutdown()
