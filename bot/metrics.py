"""Health and metrics for operators: `GET /healthz` and `GET /metrics` on the web server.

`/healthz` answers 200 with {"status": "ok", ...} when the database answers and the job
engine runs, else 503 (what is wrong is named, never with an error's text, which could hold a
URL or a password). In scale-out mode it also pings Redis: a Redis that does not answer makes
the status "degraded" (still 200: restarting this process would not bring Redis back).

`/metrics` is the Prometheus text exposition format (0.0.4), written here by hand. What comes
from the database describes the whole deployment, whichever process or worker ran the jobs:
jobs by state, queue depth and the age of the oldest queued job, replies sent and owed,
albums built and posted. The histograms of stage timings and latency, and the counter of
finished jobs, follow the jobs table from the moment this process started (see
`FinishedJobs`): every job that finishes anywhere is counted once per serving process. With
several `singsong serve` processes behind a balancer, scrape one of them (or take `max`).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from aiohttp import web
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.models import Album, Job, JobStatus, as_utc, now

if TYPE_CHECKING:
    from bot.commands import Commands
    from bot.jobs import JobEngine

log = logging.getLogger("singsong.metrics")

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
CHECK_TIMEOUT_S = 3.0  # a database or Redis slower than this to answer counts as down
STAGE_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
LATENCY_BUCKETS_S = (0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0)
ID_SLACK = 100  # the newest jobs looked at again on each scrape (ids commit out of order)
WINDOW = 10_000  # jobs looked at per scrape at most: a job stuck unfinished longer is let go
FINISHED = ("done", "failed")


# --- The text format ----------------------------------------------------------------------


def _escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if math.isnan(value):
        return "NaN"
    if float(value).is_integer() and abs(value) < 2**53:
        return str(int(value))
    return repr(float(value))


@dataclass
class Exposition:
    """Metric families in the Prometheus text format: HELP and TYPE, then the samples."""

    lines: list[str] = field(default_factory=list)

    def family(self, name: str, kind: str, help_text: str) -> None:
        escaped = help_text.replace("\\", "\\\\").replace("\n", "\\n")
        self.lines += [f"# HELP {name} {escaped}", f"# TYPE {name} {kind}"]

    def sample(self, name: str, value: float, labels: Sequence[tuple[str, str]] = ()) -> None:
        inside = ",".join(f'{key}="{_escape_label(str(val))}"' for key, val in labels)
        self.lines.append(f"{name}{{{inside}}} {_number(value)}" if inside
                          else f"{name} {_number(value)}")

    def gauge(self, name: str, help_text: str,
              samples: Iterable[tuple[Sequence[tuple[str, str]], float]]) -> None:
        self.family(name, "gauge", help_text)
        for labels, value in samples:
            self.sample(name, value, labels)

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


@dataclass
class Histogram:
    """A Prometheus histogram with labels: cumulative bucket counts, sum and count."""

    name: str
    help_text: str
    label_names: tuple[str, ...]
    buckets: tuple[float, ...]
    series: dict[tuple[str, ...], tuple[list[int], list[float]]] = field(default_factory=dict)

    def observe(self, labels: tuple[str, ...], value: float) -> None:
        counts, total = self.series.setdefault(labels, ([0] * (len(self.buckets) + 1), [0.0]))
        for index, bound in enumerate(self.buckets):
            if value <= bound:
                counts[index] += 1
        counts[-1] += 1
        total[0] += value

    def write(self, out: Exposition) -> None:
        out.family(self.name, "histogram", self.help_text)
        for labels, (counts, total) in sorted(self.series.items()):
            named = list(zip(self.label_names, labels, strict=True))
            for bound, count in zip((*self.buckets, math.inf), counts, strict=True):
                out.sample(f"{self.name}_bucket", count, [*named, ("le", _number(bound))])
            out.sample(f"{self.name}_sum", total[0], named)
            out.sample(f"{self.name}_count", counts[-1], named)


# --- Finished jobs, followed through the jobs table -----------------------------------------


class FinishedJobs:
    """Stage timings, latency and outcomes of the jobs that finish while this process runs.

    Read from the jobs table, so jobs run by Redis workers on other machines count too, and
    by primary key, so a scrape reads only the jobs from the oldest unfinished one on (plus
    the newest ID_SLACK, since ids are handed out before their rows are committed; at most
    the newest WINDOW, so a job left unfinished for long does not widen every read). A job is
    counted once, when it is first seen done or failed; jobs that had finished before `since`
    (this process's start) are not counted."""

    def __init__(self, since: datetime | None = None) -> None:
        self.since = since or now()
        self.stages = Histogram(
            "singsong_stage_seconds", "Wall time of each stage of the jobs that finished "
            "(from Job.timings_s), by job kind and stage.", ("kind", "stage"),
            STAGE_BUCKETS_S)
        self.latency = Histogram(
            "singsong_job_latency_seconds", "Time from a job's creation to its end (done "
            "jobs), by job kind.", ("kind",), LATENCY_BUCKETS_S)
        self.finished: dict[tuple[str, str], int] = {}
        self._floor: int | None = None  # every job with an id up to this one has been seen
        self._seen: set[int] = set()
        self._lock = asyncio.Lock()

    async def update(self, session: AsyncSession) -> None:
        """Count the jobs that finished since the last update."""
        async with self._lock:
            first = self._floor is None
            if self._floor is None:
                self._floor = await self._first_floor(session)
            rows = (await session.execute(
                select(Job.id, Job.kind, Job.status, Job.created_at, Job.finished_at,
                       Job.timings_s).where(Job.id > self._floor).order_by(Job.id))).all()
            for row in rows:
                if row.status not in FINISHED or row.id in self._seen:
                    continue
                self._seen.add(row.id)
                if first and (row.finished_at is None or as_utc(row.finished_at) < self.since):
                    continue  # finished before this process started following
                self._observe(row.kind, row.status, row.created_at, row.finished_at,
                              row.timings_s or {})
            self._advance([(row.id, row.status) for row in rows])

    @staticmethod
    async def _first_floor(session: AsyncSession) -> int:
        """Below the oldest unfinished job and the newest ID_SLACK jobs."""
        newest = (await session.execute(select(func.max(Job.id)))).scalar_one_or_none() or 0
        pending = (await session.execute(select(func.min(Job.id)).where(
            Job.status.not_in(FINISHED)))).scalar_one_or_none()
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

    def _observe(self, kind: str, status: str, created: datetime | None,
                 finished: datetime | None, timings: dict[str, Any]) -> None:
        self.finished[(kind, status)] = self.finished.get((kind, status), 0) + 1
        if status != "done":
            return
        if created is not None and finished is not None:
            self.latency.observe((kind,), max((as_utc(finished) - as_utc(created))
                                              .total_seconds(), 0.0))
        for stage, seconds in sorted(timings.items()):
            if isinstance(seconds, int | float) and math.isfinite(seconds):
                self.stages.observe((kind, str(stage)), float(seconds))

    def write(self, out: Exposition) -> None:
        out.family("singsong_jobs_finished_total", "counter", "Jobs that finished since this "
                   "process started, by kind and outcome (done or failed).")
        for (kind, status), count in sorted(self.finished.items()):
            out.sample("singsong_jobs_finished_total", count,
                       [("kind", kind), ("outcome", status)])
        self.stages.write(out)
        self.latency.write(out)


# --- What the database says now ---------------------------------------------------------------


@dataclass(frozen=True)
class Snapshot:
    jobs: dict[str, int]  # by state
    oldest_queued_s: float
    replies_sent: int
    replies_owed: int
    albums_built: int
    albums_posted: int


async def job_counts(session: AsyncSession) -> dict[str, int]:
    """Jobs by state, every state present (0 when none)."""
    rows = await session.execute(select(Job.status, func.count()).group_by(Job.status))
    counts: dict[str, int] = {status.value: 0 for status in JobStatus}
    counts.update({status: int(count) for status, count in rows.all()})
    return counts


async def active_jobs(session: AsyncSession) -> dict[str, int]:
    """Queued and running jobs (cheap: the status column is indexed)."""
    rows = await session.execute(select(Job.status, func.count()).where(
        Job.status.in_(("queued", "running"))).group_by(Job.status))
    counts = {"queued": 0, "running": 0}
    counts.update({status: int(count) for status, count in rows.all()})
    return counts


async def snapshot(session: AsyncSession) -> Snapshot:
    counts = await job_counts(session)
    oldest = (await session.execute(select(func.min(Job.created_at))
                                    .where(Job.status == "queued"))).scalar_one_or_none()
    sent = (await session.execute(select(func.count()).select_from(Job)
                                  .where(Job.replied.is_(True)))).scalar_one()
    owed = (await session.execute(select(func.count()).select_from(Job).where(
        Job.status.in_(FINISHED), Job.replied.is_(False)))).scalar_one()
    built = (await session.execute(select(func.count()).select_from(Album))).scalar_one()
    posted = (await session.execute(select(func.count()).select_from(Album)
                                    .where(Album.posted_at.is_not(None)))).scalar_one()
    age = max((now() - as_utc(oldest)).total_seconds(), 0.0) if oldest is not None else 0.0
    return Snapshot(counts, age, int(sent), int(owed), int(built), int(posted))


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
        found: dict[str, int] | None = await self._ask(active_jobs)
        mode, running = engine_state(self.jobs)
        body: dict[str, Any] = {
            "database": "ok" if found is not None else "unreachable",
            "jobs": {"mode": mode, "running": running},
            "queue_depth": found["queued"] if found is not None else None,
            "running_jobs": found["running"] if found is not None else None,
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
        out = Exposition()
        out.gauge("singsong_up", "1 while this process serves.", [((), 1)])
        out.gauge("singsong_start_time_seconds", "When this process started (Unix time).",
                  [((), self.started)])
        out.gauge("singsong_database_up", "1 when the database answered this scrape.",
                  [((), 1 if found is not None else 0)])
        mode, running = engine_state(self.jobs)
        out.gauge("singsong_job_engine_running", "1 while the job engine runs (mode: pool "
                  "or redis).", [((("mode", mode),), 1 if running else 0)])
        if found is not None:
            out.gauge("singsong_jobs", "Jobs in the jobs table by state.",
                      [((("state", state),), count) for state, count in found.jobs.items()])
            out.gauge("singsong_queue_depth", "Jobs waiting for a worker.",
                      [((), found.jobs["queued"])])
            out.gauge("singsong_queue_oldest_seconds", "Age of the oldest waiting job (0 when "
                      "none waits).", [((), found.oldest_queued_s)])
            out.gauge("singsong_replies_sent", "Jobs whose reply has been sent (from the "
                      "jobs table: forgetting a person removes theirs).",
                      [((), found.replies_sent)])
            out.gauge("singsong_replies_owed", "Finished jobs whose reply is not sent yet.",
                      [((), found.replies_owed)])
            out.gauge("singsong_albums_built", "Weekly albums made.",
                      [((), found.albums_built)])
            out.gauge("singsong_albums_posted", "Weekly albums posted to the chats.",
                      [((), found.albums_posted)])
        self.finished.write(out)
        return web.Response(body=out.text().encode(), headers={"Content-Type": CONTENT_TYPE,
                                                               "Cache-Control": "no-store"})
