"""Health and metrics for operators: `GET /healthz` and `GET /metrics` on the web server.

`/healthz` answers 200 with {"status": "ok", ...} when the database answers and the job
engine runs, else 503 (what is wrong is named, never with an error's text, which could hold a
URL or a password). In scale-out mode it also pings Redis: a Redis that does not answer makes
the status "degraded" (still 200: restarting this process would not bring Redis back).

`/metrics` is the Prometheus text exposition format (0.0.4), written by prometheus-client:
each scrape reads the database first, then one custom collector (`Scrape`) gives what it
found. What comes from the database describes the whole deployment, whichever process or
worker ran the jobs: jobs by state, queue depth and the age of the oldest queued job, replies
sent and owed, albums built and posted. The histograms of stage timings and latency, and the
counter of finished jobs, follow the jobs table from the moment this process started (see
`FinishedJobs`): every job that finishes anywhere is counted once per serving process. With
several `singsong serve` processes behind a balancer, scrape one of them (or take `max`).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.registry import Collector
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage import metric_queries
from storage.models import JobStatus, as_utc, now

if TYPE_CHECKING:
    from bot.commands import Commands
    from bot.jobs import JobEngine

log = logging.getLogger("singsong.metrics")

CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
CHECK_TIMEOUT_S = 3.0  # a database or Redis slower than this to answer counts as down
STAGE_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
LATENCY_BUCKETS_S = (0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0)
ID_SLACK = 100  # the newest jobs looked at again on each scrape (ids commit out of order)
WINDOW = 10_000  # jobs looked at per scrape at most: a job stuck unfinished longer is let go
FINISHED = JobStatus.finished()


def exposition(*collectors: Collector) -> bytes:
    """The text format of what these collectors give now."""
    registry = CollectorRegistry(auto_describe=False)
    for collector in collectors:
        registry.register(collector)
    return generate_latest(registry)


# --- Finished jobs, followed through the jobs table -----------------------------------------


class FinishedJobs(Collector):
    """Stage timings, latency and outcomes of the jobs that finish while this process runs.

    Read from the jobs table, so jobs run by Redis workers on other machines count too, and
    by primary key, so a scrape reads only the jobs from the oldest unfinished one on (plus
    the newest ID_SLACK, since ids are handed out before their rows are committed; at most
    the newest WINDOW, so a job left unfinished for long does not widen every read). A job is
    counted once, when it is first seen done or failed; jobs that had finished before `since`
    (this process's start) are not counted."""

    def __init__(self, since: datetime | None = None) -> None:
        self.since = since or now()
        # Not in any registry: a scrape's registry takes this collector, which gives them.
        self.finished = Counter(
            "singsong_jobs_finished", "Jobs that finished since this process started, by "
            "kind and outcome (done or failed).", ("kind", "outcome"), registry=None)
        self.stages = Histogram(
            "singsong_stage_seconds", "Wall time of each stage of the jobs that finished "
            "(from Job.timings_s), by job kind and stage.", ("kind", "stage"),
            registry=None, buckets=STAGE_BUCKETS_S)
        self.latency = Histogram(
            "singsong_job_latency_seconds", "Time from a job's creation to its end (done "
            "jobs), by job kind.", ("kind",), registry=None, buckets=LATENCY_BUCKETS_S)
        self._floor: int | None = None  # every job with an id up to this one has been seen
        self._seen: set[int] = set()
        self._lock = asyncio.Lock()

    async def update(self, session: AsyncSession) -> None:
        """Count the jobs that finished since the last update."""
        async with self._lock:
            first = self._floor is None
            if self._floor is None:
                self._floor = await self._first_floor(session)
            rows = await metric_queries.jobs_after(session, self._floor)
            for row in rows:
                if row.status not in FINISHED or row.id in self._seen:
                    continue
                self._seen.add(row.id)
                if first and (row.finished_at is None or as_utc(row.finished_at) < self.since):
                    continue  # finished before this process started following
                self._observe(row)
            self._advance([(row.id, row.status) for row in rows])

    @staticmethod
    async def _first_floor(session: AsyncSession) -> int:
        """Below the oldest unfinished job and the newest ID_SLACK jobs."""
        newest = await metric_queries.newest_job_id(session)
        pending = await metric_queries.oldest_unfinished_job_id(session)
        return max(min(newest - ID_SLACK, newest if pending is None else pending - 1),
                   newest - WINDOW, 0)

    def _advance(self, rows: list[tuple[int, str]]) -> None:
        assert self._floor is not None
        if rows:
            pending = [job_id for job_id, status in rows if status not in FINISHED]
            newest = max(job_id for job_id, _ in rows)
            limit = min(pending) - 1 if pending else newest
            self._floor = max(self._floor, min(limit, newest - ID_SLACK), newest - WINDOW)
        self._seen = {job_id for job_id in self._seen if job_id > self._floor}

    def _observe(self, job: metric_queries.JobTimes) -> None:
        self.finished.labels(job.kind, job.status).inc()
        if job.status != JobStatus.DONE:
            return
        if job.created_at is not None and job.finished_at is not None:
            self.latency.labels(job.kind).observe(max(
                (as_utc(job.finished_at) - as_utc(job.created_at)).total_seconds(), 0.0))
        for stage, seconds in sorted(job.timings_s.items()):
            if isinstance(seconds, int | float) and math.isfinite(seconds):
                self.stages.labels(job.kind, str(stage)).observe(float(seconds))

    def collect(self) -> Iterator[Metric]:
        for metric in (self.finished, self.stages, self.latency):
            for family in metric.collect():
                # Without the _created series: each would only say when this process first
                # saw a label set, and singsong_start_time_seconds says when it started.
                family.samples = [sample for sample in family.samples
                                  if not sample.name.endswith("_created")]
                yield family


# --- What the database says now ---------------------------------------------------------------


@dataclass(frozen=True)
class Snapshot:
    jobs: dict[str, int]  # by state
    oldest_queued_s: float
    replies_sent: int
    replies_owed: int
    albums_built: int
    albums_posted: int


async def snapshot(session: AsyncSession) -> Snapshot:
    counts = await metric_queries.jobs_by_status(session)
    oldest = await metric_queries.oldest_queued_at(session)
    built, posted = await metric_queries.albums_made(session)
    age = max((now() - as_utc(oldest)).total_seconds(), 0.0) if oldest is not None else 0.0
    return Snapshot(counts, age, await metric_queries.replies_sent(session),
                    await metric_queries.replies_owed(session), built, posted)


def engine_state(jobs: JobEngine) -> tuple[str, bool]:
    """(how jobs run: "redis" or "pool", whether the engine is running)."""
    return ("redis" if jobs.redis_url else "pool"), jobs.running


async def redis_answers(url: str) -> bool:
    """Whether Redis answers PING within CHECK_TIMEOUT_S."""
    import redis.asyncio as redis

    client = redis.from_url(url, socket_connect_timeout=CHECK_TIMEOUT_S,
                            socket_timeout=CHECK_TIMEOUT_S)
    try:
        return bool(await asyncio.wait_for(client.ping(), CHECK_TIMEOUT_S))
    except Exception as error:
        log.warning("healthz: Redis does not answer (%s)", type(error).__name__)
        return False
    finally:
        await client.aclose()


# --- The two routes -------------------------------------------------------------------------


class Operations:
    """The handlers of GET /healthz and GET /metrics for one serving process."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], jobs: JobEngine) -> None:
        self.sessions, self.jobs = sessions, jobs
        self.finished = FinishedJobs()
        self.started = time.time()

    @classmethod
    def of(cls, commands: Commands) -> Operations:
        return cls(commands.sessions, commands.jobs)

    def add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_get("/healthz", self.healthz)
        router.add_get("/metrics", self.metrics)

    async def _ask(self, read: Callable[[AsyncSession], Awaitable[Any]]) -> Any:
        """What `read` finds in the database, or None when the database does not answer in
        CHECK_TIMEOUT_S."""
        async def ask() -> Any:
            async with self.sessions() as session:
                return await read(session)

        try:
            return await asyncio.wait_for(ask(), CHECK_TIMEOUT_S)
        except Exception as error:  # any failure to read is "unreachable"
            log.warning("the database does not answer (%s)", type(error).__name__)
            return None

    async def healthz(self, request: web.Request) -> web.Response:
        found: dict[str, int] | None = await self._ask(
            lambda session: metric_queries.jobs_by_status(session, JobStatus.unfinished()))
        mode, running = engine_state(self.jobs)
        body: dict[str, Any] = {
            "database": "ok" if found is not None else "unreachable",
            "jobs": {"mode": mode, "running": running},
            "queue_depth": found[JobStatus.QUEUED] if found is not None else None,
            "running_jobs": found[JobStatus.RUNNING] if found is not None else None,
        }
        healthy = found is not None and running
        status = "ok" if healthy else "unavailable"
        if self.jobs.redis_url:
            body["redis"] = "ok" if await redis_answers(self.jobs.redis_url) else "unreachable"
            if healthy and body["redis"] != "ok":
                status = "degraded"
        return web.json_response({"status": status, **body}, status=200 if healthy else 503,
                                 headers={"Cache-Control": "no-store"})

    async def metrics(self, request: web.Request) -> web.Response:
        async def read(session: AsyncSession) -> Snapshot:
            found = await snapshot(session)
            await self.finished.update(session)
            return found

        found: Snapshot | None = await self._ask(read)
        scrape = Scrape(self.started, engine_state(self.jobs), found)
        return web.Response(body=exposition(scrape, self.finished),
                            headers={"Content-Type": CONTENT_TYPE, "Cache-Control": "no-store"})


class Scrape(Collector):
    """The gauges of one scrape: this process, and what the database said (nothing of it when
    the database did not answer)."""

    def __init__(self, started: float, engine: tuple[str, bool], found: Snapshot | None) -> None:
        self.started, self.engine, self.found = started, engine, found

    def collect(self) -> Iterator[Metric]:
        yield gauge("singsong_up", "1 while this process serves.", 1)
        yield gauge("singsong_start_time_seconds", "When this process started (Unix time).",
                    self.started)
        yield gauge("singsong_database_up", "1 when the database answered this scrape.",
                    1 if self.found is not None else 0)
        mode, running = self.engine
        running_family = GaugeMetricFamily(
            "singsong_job_engine_running", "1 while the job engine runs (mode: pool or "
            "redis).", labels=("mode",))
        running_family.add_metric((mode,), 1 if running else 0)
        yield running_family
        found = self.found
        if found is None:
            return
        jobs = GaugeMetricFamily("singsong_jobs", "Jobs in the jobs table by state.",
                                 labels=("state",))
        for state, count in found.jobs.items():
            jobs.add_metric((state,), count)
        yield jobs
        yield gauge("singsong_queue_depth", "Jobs waiting for a worker.",
                    found.jobs[JobStatus.QUEUED])
        yield gauge("singsong_queue_oldest_seconds", "Age of the oldest waiting job (0 when "
                    "none waits).", found.oldest_queued_s)
        yield gauge("singsong_replies_sent", "Jobs whose reply has been sent (from the jobs "
                    "table: forgetting a person removes theirs).", found.replies_sent)
        yield gauge("singsong_replies_owed", "Finished jobs whose reply is not sent yet.",
                    found.replies_owed)
        yield gauge("singsong_albums_built", "Weekly albums made.", found.albums_built)
        yield gauge("singsong_albums_posted", "Weekly albums posted to the chats.",
                    found.albums_posted)


def gauge(name: str, help_text: str, value: float) -> GaugeMetricFamily:
    """A gauge family of one sample without labels."""
    return GaugeMetricFamily(name, help_text, value=value)
