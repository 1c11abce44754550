"""The job engine's supervisor: records jobs and follows each to its end, running it in a
process pool here, or handing it to `singsong worker`s over Redis (bot.jobs.broker) and
sweeping every SWEEP_S for what Redis or a dead worker lost.

Over Redis, a sweep compares the rows, the workers' leases and the queue in Redis: a running
job whose lease ran out (its worker died) goes back in the queue, a queued job whose message
Redis no longer holds (Redis restarted empty) is sent again, and a job whose row says it
ended is finished even when its result never reached Redis.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import BrokenExecutor, Executor, ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    retry_if_result,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential,
    wait_fixed,
)

from bot import outages
from bot.jobs import constants
from bot.jobs.broker import make_broker
from bot.jobs.constants import QUEUE_NAME, TASK_NAME, WORKER_STOPPED, Outcome
from bot.jobs.limits import DEFAULT_LIMITS, Limits, check_limits
from bot.jobs.tasks import Runner, run_engine
from bot.jobs.worker import execute_job, finish_measuring, warm_worker
from bot.logs import job_context
from bot.outages import is_outage, outlast
from storage import job_queries, queries
from storage.blobs import BlobStore
from storage.models import Chat, Job, JobStatus, User
from storage.queries import submit_job

log = logging.getLogger("singsong.jobs")


@dataclass
class _Flight:
    """A job handed to the workers over Redis, and what the engine knows of it."""

    task: Any = None  # taskiq's handle of the message sent for it; None: send one
    answered: bool = False  # its message's outcome came (skipped): now only the row tells
    absent_sweeps: int = 0  # sweeps in a row that found it queued and its message gone
    ended: Outcome | None = None  # the row says it ended: done, failed or gone


class JobEngine:
    """Submits jobs and sees them run: in a process pool here, or via taskiq over Redis.
    A worker process that dies (the pool breaks: a new one starts; over Redis its lease runs
    out), a database or Redis that goes away for a while (Redis may come back empty): the
    job goes back in the queue and runs again, a job that kills its worker every time fails
    after MAX_ATTEMPTS, and every job ends in one call of on_finished."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], blobs: BlobStore,
                 database_url: str, data_dir: Path, *, redis_url: str | None = None,
                 workers: int | None = None, limits: Limits = DEFAULT_LIMITS,
                 runner: Runner = run_engine, executor: Executor | None = None,
                 queue_name: str = QUEUE_NAME,
                 on_finished: Callable[[int, str], Awaitable[None]] | None = None,
                 stale_after_s: float = constants.STALE_RUNNING_S,
                 lease_s: float = constants.LEASE_S,
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
            # Start every worker now, and load the model and soundfont there and connect to
            # the database, so that the first people after a start do not wait for it.
            self._warm_workers()
        async with self.sessions() as session:
            over_redis = self._broker is not None
            await self._give_up_lost(session, lease_s=self.lease_s if over_redis else 0.0)
            waiting = await job_queries.unfinished_jobs(session, running=over_redis)
        for job_id, person_id in waiting:
            self._spawn(job_id, person_id)
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
                     data: bytes | None = None, parameters: dict[str, Any] | None = None,
                     reply_to: dict[str, Any] | None = None,
                     private: bool | None = None) -> tuple[Job, bool]:
        """Record and start a job (`parameters` for the engine; `reply_to` and `private`: how
        to answer); a redelivered message (same key) gets its job back and starts nothing.
        Raises SlowDown when a limit says wait."""
        async with self.sessions() as session:
            existing = await job_queries.job_by_key(session, key)
            if existing is not None:
                return existing, False
            await check_limits(session, user, self.limits, self.workers)
            blob = self.blobs.put(data) if data is not None else None
            job, created = await submit_job(session, key=key, kind=kind, user=user, chat=chat,
                                            input_blob=blob, parameters=parameters,
                                            reply_to=reply_to, private=private)
        if created:
            self._spawn(job.id, user.id)
        return job, created

    async def wait(self) -> None:
        """Until every job this engine started has finished (tests, shutdown), and the
        curation features that workers in this process measure are stored."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks))
        await asyncio.to_thread(finish_measuring)

    def _spawn(self, job_id: int, person_id: int) -> None:
        with job_context(job_id, person_id):  # the task logs with the job's context
            task = asyncio.create_task(self._follow(job_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _follow(self, job_id: int) -> None:
        """Run the job until it ends: an attempt that says retry is tried again after
        RETRY_BASE_S, then twice that, ..., MAX_ATTEMPTS + 1 times at most (the worker counts
        the attempts that fail in the engine; this counts those whose worker gave up too)."""
        retrying = AsyncRetrying(
            retry=retry_if_result(lambda outcome: outcome == Outcome.RETRY),
            wait=wait_exponential(multiplier=constants.RETRY_BASE_S, min=0),
            stop=stop_after_attempt(constants.MAX_ATTEMPTS + 1),
            retry_error_callback=lambda state: Outcome.RETRY)
        outcome: Outcome = await retrying(self._attempt, job_id)
        if self.on_finished is not None:
            await self.on_finished(job_id, outcome)

    async def _attempt(self, job_id: int) -> Outcome:
        try:
            return await self._run_once(job_id)
        except Exception as error:
            # The worker went away (a killed process breaks the pool), or the database or
            # Redis did mid-job: whatever the row says now is the truth.
            log.warning("job %d: its worker gave up (%s: %s)", job_id,
                        type(error).__name__, error)
            if isinstance(error, BrokenExecutor):
                self._replace_pool()
            return await self._give_back(job_id)

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
            self._warm_workers()

    def _warm_workers(self) -> None:
        assert self._executor is not None
        for _ in range(self.workers):
            self._executor.submit(warm_worker, self.database_url, str(self.data_dir))

    async def _give_back(self, job_id: int) -> Outcome:
        """After its worker gave up: the job goes back in the queue (or fails, when that was
        its last attempt); retry, or how it ended when it did. Waits out a database that is
        away (up to outage_s), and says lost after that (a restart takes the job up)."""
        async def given_back() -> Outcome:
            async with self.sessions() as session:
                if self._broker is None:  # here no other process can be running it
                    await queries.end_attempt(session, job_id, constants.MAX_ATTEMPTS,
                                              status=JobStatus.FAILED, error=WORKER_STOPPED,
                                              at_least=True)
                    await queries.end_attempt(session, job_id, 0, status=JobStatus.QUEUED,
                                              error=WORKER_STOPPED, at_least=True)
                status = (await queries.job_statuses(session, [job_id])).get(job_id)
            if status is None:
                return Outcome.GONE  # deleted (/forget) meanwhile
            return Outcome.RETRY if status in JobStatus.unfinished() else Outcome(status)

        try:
            return await outlast(given_back, f"job {job_id}", outage_s=self.outage_s)
        except Exception as error:
            if not is_outage(error):
                raise
            log.error("job %d: the database did not come back (%s); a restart takes the job "
                      "up", job_id, error)
            return Outcome.LOST

    async def _run_once(self, job_id: int) -> Outcome:
        if self._broker is not None:
            return await self._run_on_worker(job_id)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, execute_job, job_id,
                                          self.database_url, str(self.data_dir), self.runner)

    async def _run_on_worker(self, job_id: int) -> Outcome:
        """Hand the job to whichever worker takes it from Redis and wait for its outcome,
        through Redis restarts. The sweep (every SWEEP_S) watches the row and the queue in
        Redis: it resends the message that Redis lost (or whose worker died), and ends the
        wait when the row says the job ended though no outcome came. Results are looked for
        every RESULT_POLL_S: taskiq's Redis result backend has no way to be told."""
        flight = self._flights[job_id] = _Flight()
        try:
            while flight.ended is None:
                outcome = await self._through_redis_outage(job_id, flight)
                if outcome is not None:
                    return outcome
                await asyncio.sleep(constants.RESULT_POLL_S)
            return flight.ended
        finally:
            del self._flights[job_id]

    async def _through_redis_outage(self, job_id: int, flight: _Flight) -> Outcome | None:
        """One look at the job's message (_look), tried again every RECONNECT_S while Redis is
        away (the sweep may resend meanwhile), until the row says the job ended (None) or
        Redis has been away for outage_s (its error is raised)."""
        from redis.exceptions import RedisError
        from taskiq.exceptions import TaskiqError

        def waiting(state: RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome else None
            log.warning("job %d: Redis is away (%s: %s)", job_id, type(error).__name__,
                        (error.__cause__ or error) if error else None)

        def ended_or_raise(state: RetryCallState) -> None:
            if flight.ended is None and state.outcome is not None:
                state.outcome.result()  # raises the last error
            return None

        too_long = stop_after_delay(self.outage_s)

        def stop(state: RetryCallState) -> bool:
            return flight.ended is not None or too_long(state)

        retrying = AsyncRetrying(
            retry=retry_if_exception(lambda error: isinstance(
                error, RedisError | OSError | TaskiqError)),
            wait=wait_fixed(outages.RECONNECT_S), stop=stop,
            before_sleep=waiting, retry_error_callback=ended_or_raise)
        outcome: Outcome | None = await retrying(self._look, job_id, flight)
        return outcome

    async def _look(self, job_id: int, flight: _Flight) -> Outcome | None:
        """Send the job's message when it has none to wait for; else its outcome, once its
        worker sent one (None: not yet, or only a skipped that says another has the job)."""
        if flight.task is None:
            flight.answered, flight.absent_sweeps = False, 0
            flight.task = await self._broker.find_task(TASK_NAME).kiq(job_id)
        elif not flight.answered and await flight.task.is_ready():
            result = await flight.task.get_result()
            outcome = Outcome(str(result.return_value)) if not result.is_err else Outcome.RETRY
            if outcome != Outcome.SKIPPED:
                return outcome
            flight.answered = True  # another message's worker has it, or had
        return None

    # -- The sweep, over Redis -------------------------------------------------------------

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(constants.SWEEP_S)
            try:
                await self.sweep()
            except Exception as error:
                if not is_outage(error):
                    log.exception("the sweep failed; trying again in %.0f s",
                                  constants.SWEEP_S)

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
                self._judge(job_id, flight, statuses.get(job_id, Outcome.GONE), in_redis,
                            given_up)

    def _judge(self, job_id: int, flight: _Flight, status: str, in_redis: set[int],
               given_up: set[int]) -> None:
        if status in (Outcome.DONE, Outcome.FAILED, Outcome.GONE):
            flight.ended = Outcome(status)
        elif status != JobStatus.QUEUED or flight.task is None or job_id in in_redis:
            flight.absent_sweeps = 0
        else:
            flight.absent_sweeps += 1
            if job_id in given_up or flight.absent_sweeps >= constants.ABSENT_SWEEPS:
                log.warning("job %d: %s; sending it again", job_id,
                            "its worker stopped" if job_id in given_up
                            else "its message is no longer in Redis")
                flight.task = None

    async def _give_up_lost(self, session: AsyncSession,
                            lease_s: float | None = None) -> list[int]:
        return await queries.give_up_lost_jobs(
            session, lease_s=self.lease_s if lease_s is None else lease_s,
            stale_s=self.stale_after_s if self._broker is not None else 0.0,
            max_attempts=constants.MAX_ATTEMPTS, error=WORKER_STOPPED)

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
