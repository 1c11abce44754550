"""A worker's side of a job: claim it (queued becomes running), run the engine while
renewing the job's lease, then store the track and mark it done, or end the attempt (queued
again for a retry, or failed). Runs in a pool process, or in a `singsong worker`.

The song's curation features are measured after the track is stored, in a thread of the
worker's process, while the reply is sent: a worker that dies in between leaves the track
unmeasured, and the nightly curation measures it from its file."""

from __future__ import annotations

import asyncio
import contextvars
import ctypes
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_for_futures
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.jobs import constants
from bot.jobs.constants import INTERNAL_ERROR, Outcome
from bot.jobs.tasks import Runner, run_engine, warm_up
from bot.logs import job_context
from bot.outages import is_outage
from storage import job_queries, queries
from storage.blobs import BlobStore
from storage.database import create_engine, session_factory
from storage.models import Job, JobStatus
from storage.queries import AttemptSuperseded, save_track

log = logging.getLogger("singsong.jobs")


def execute_job(job_id: int, database_url: str, data_dir: str,
                runner: Runner = run_engine) -> Outcome:
    """Run one job in this process: done, retry, failed, or skipped when the job
    was not queued (another worker has it, or it is finished). Each worker thread keeps one
    event loop and one database engine for all its jobs, so a job does not pay for a new
    connection."""
    worker = _worker_state(database_url, data_dir)
    return worker.loop.run_until_complete(_execute(job_id, worker, runner))


def warm_worker(database_url: str, data_dir: str) -> None:
    """Ready this process for its first job: one malloc arena, the engine warmed up
    (tasks.warm_up) and the database engine its jobs use connected. The pool runs it once in
    each new worker."""
    one_malloc_arena()
    warm_up()
    worker = _worker_state(database_url, data_dir)
    worker.loop.run_until_complete(_connect(worker))


M_ARENA_MAX = -8  # glibc's mallopt parameter: how many malloc arenas a process may have


def one_malloc_arena() -> bool:
    """Let this process's threads (the band renders in one beside the voice) share glibc's
    one malloc arena. Measured over three songs in one process, twice each way: peak RSS
    448-463 MB against 487-491 MB, CPU 6.56-6.71 against 6.72-6.94 s. Nothing happens where
    the C library is not glibc. Returns whether the limit was set."""
    try:
        return bool(ctypes.CDLL("libc.so.6").mallopt(M_ARENA_MAX, 1))
    except (OSError, AttributeError):
        log.info("not glibc: malloc arenas left as they are")
        return False


async def _connect(worker: _Worker) -> None:
    async with worker.database.connect():
        pass


@dataclass
class _Worker:
    loop: asyncio.AbstractEventLoop
    database: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    blobs: BlobStore
    database_url: str
    data_dir: str


_workers: dict[tuple[str, str, int], _Worker] = {}


def _worker_state(database_url: str, data_dir: str) -> _Worker:
    key = (database_url, data_dir, threading.get_ident())
    if key not in _workers:
        loop = asyncio.new_event_loop()
        database = create_engine(database_url)
        _workers[key] = _Worker(loop, database, session_factory(database),
                                BlobStore(Path(data_dir) / "blobs"), database_url, data_dir)
    return _workers[key]


def close_worker_threads() -> None:
    """Close the event loops and database engines that worker threads of this process keep
    (once their executor has shut down: tests, or a process that runs jobs in threads),
    after the features being measured are stored."""
    finish_measuring()

    def close(worker: _Worker) -> None:
        worker.loop.run_until_complete(worker.database.dispose())
        worker.loop.close()

    while _workers:
        _, worker = _workers.popitem()
        # In a thread of its own: the caller may be running an event loop of its own.
        closer = threading.Thread(target=close, args=(worker,))
        closer.start()
        closer.join()


async def _execute(job_id: int, worker: _Worker, runner: Runner) -> Outcome:
    async with worker.sessions() as session:
        # The session hands its connection back while the engine works: the save checks one
        # out again, and the pool's ping replaces it if the database restarted meanwhile.
        job = await job_queries.claim_job(session, job_id)
    if job is None:
        return Outcome.SKIPPED
    with job_context(job_id, job.user_id):
        return await _attempt(job, worker, runner)


async def _attempt(job: Job, worker: _Worker, runner: Runner) -> Outcome:
    """One attempt at a claimed job, from the engine's work to the stored track."""
    from engine.errors import InvalidRequest

    job_id, attempt, blobs = job.id, job.attempts, worker.blobs
    data = blobs.get(job.input_blob) if job.input_blob else None
    heartbeat = asyncio.create_task(_keep_lease(worker, job_id, attempt))
    try:
        made = await asyncio.to_thread(runner, job.kind, data, dict(job.parameters))
    except InvalidRequest as mistake:
        return await _end_attempt(worker, job_id, attempt, JobStatus.FAILED, str(mistake))
    except Exception as error:  # a bug or a passing fault: retry, then give up
        log.exception("job %d attempt %d failed", job_id, attempt)
        status = JobStatus.FAILED if attempt >= constants.MAX_ATTEMPTS else JobStatus.QUEUED
        return await _end_attempt(worker, job_id, attempt, status,
                                  f"{INTERNAL_ERROR}{type(error).__name__}: {error}")
    finally:
        heartbeat.cancel()
        await asyncio.gather(heartbeat, return_exceptions=True)
    if made.sung:  # kept with the job (its reply says it), saved with the track
        job.parameters = {**job.parameters, "sung": made.sung}
    async with worker.sessions() as session:
        try:
            track = await save_track(
                session, job, audio_blob=blobs.put(made.audio),
                midi_blob=blobs.put(made.midi) if made.midi else None,
                picture_blob=blobs.put(made.picture) if made.picture else None,
                picture_card_blob=blobs.put(made.picture_card) if made.picture_card else None,
                duration_s=float(made.duration_s), key=made.key, tempo_bpm=made.tempo_bpm,
                timings_s=made.timings_s, features=made.features, attempt=attempt)
        except AttemptSuperseded:
            log.warning("job %d attempt %d finished after it was given up: not stored",
                        job_id, attempt)
            return Outcome.SKIPPED
    if made.measure is not None:
        _measure_later(worker, job_id, track.id, made.timings_s, made.measure)
    return Outcome.DONE


async def _end_attempt(worker: _Worker, job_id: int, attempt: int, status: JobStatus,
                       error: str) -> Outcome:
    """An attempt that made nothing: the job fails or goes back in the queue (status:
    failed, or retry), unless it was given up meanwhile (skipped)."""
    async with worker.sessions() as session:
        ended = await queries.end_attempt(session, job_id, attempt, status=status.value,
                                          error=error[:1000])
    if not ended:
        return Outcome.SKIPPED
    return Outcome.FAILED if status == JobStatus.FAILED else Outcome.RETRY


async def _keep_lease(worker: _Worker, job_id: int, attempt: int) -> None:
    """Renew the job's lease every HEARTBEAT_S while the engine works on it. A database that
    is away misses beats (the lease is generous); a job given up meanwhile ends the beat."""
    while True:
        await asyncio.sleep(constants.HEARTBEAT_S)
        try:
            async with worker.sessions() as session:
                if not await queries.renew_lease(session, job_id, attempt):
                    return
        except Exception as error:
            if not is_outage(error):
                raise
            log.debug("job %d: heartbeat missed (%s)", job_id, type(error).__name__)


# -- Curation features, measured once the track is stored ----------------------------------

_measuring_lock = threading.Lock()
_measuring: ThreadPoolExecutor | None = None  # one thread a process, started on first use
_measures: set[Future[None]] = set()  # measures of this process not finished yet


def _measure_later(worker: _Worker, job_id: int, track_id: int, timings_s: dict[str, float],
                   measure: Callable[[], dict[str, Any]]) -> None:
    """Measure the stored track's curation features in this process's measuring thread
    (its log lines carry the job's context), and store them with the job's timings."""
    global _measuring
    with _measuring_lock:
        if _measuring is None:
            _measuring = ThreadPoolExecutor(max_workers=1,
                                            thread_name_prefix="singsong-measure")
        future = _measuring.submit(contextvars.copy_context().run, _measure_and_store,
                                   worker.database_url, worker.data_dir, job_id, track_id,
                                   timings_s, measure)
        _measures.add(future)
    future.add_done_callback(_measured)


def _measured(future: Future[None]) -> None:
    with _measuring_lock:
        _measures.discard(future)


def _measure_and_store(database_url: str, data_dir: str, job_id: int, track_id: int,
                       timings_s: dict[str, float],
                       measure: Callable[[], dict[str, Any]]) -> None:
    started = time.perf_counter()
    features = measure()  # {"failed": why} when the song cannot be measured
    timings_s = {**timings_s, "measure": round(time.perf_counter() - started, 4)}
    try:
        worker = _worker_state(database_url, data_dir)  # the measuring thread's own
        worker.loop.run_until_complete(_store_features(worker, job_id, track_id, features,
                                                       timings_s))
    except Exception as error:  # unmeasured, the track waits for the nightly curation
        log.warning("job %d: its curation features were not stored (%s: %s)", job_id,
                    type(error).__name__, error)


async def _store_features(worker: _Worker, job_id: int, track_id: int,
                          features: dict[str, Any], timings_s: dict[str, float]) -> None:
    async with worker.sessions() as session:
        await job_queries.store_features(session, track_id, features, job_id, timings_s)


def finish_measuring() -> None:
    """Until the curation features this process is measuring are stored (tests; a worker
    that stops: its process also waits for them on its way out)."""
    with _measuring_lock:
        pending = list(_measures)
    wait_for_futures(pending)
