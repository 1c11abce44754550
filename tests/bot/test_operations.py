"""Operations: GET /healthz (200, and 503 with the database gone), GET /metrics in the
Prometheus text format (every line valid, the job counts those of the table), JSON logs."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import math
import os
import re
import secrets
import subprocess
import sys
import threading
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import text

from bot.adapters.web import WebAdapter
from bot.jobs import LOOSE_LIMITS, JobResult, close_worker_threads
from bot.logs import JsonFormatter, log_format, setup_logging
from bot.metrics import CONTENT_TYPE, FinishedJobs, exposition, redis_answers
from bot.service import Service, open_service
from engine.errors import InvalidRequest
from storage import queries
from storage.database import create_engine
from storage.metric_queries import JobTimes
from storage.models import Job, now
from tests.bot.service import TEST_SEED, service_settings
from tests.database import POSTGRES_SERVER

ROOT = Path(__file__).resolve().parents[2]
WAIT_S = 30.0
STAGES = {"decode": 0.004, "compose": 0.03, "encode": 0.2}

# The text exposition format 0.0.4, line by line.
NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\["\\n])*"'
SAMPLE = re.compile(rf"({NAME})(?:\{{((?:{LABEL})(?:,{LABEL})*)?,?\}})? (\S+)(?: -?\d+)?")
HELP = re.compile(rf"# HELP ({NAME}) .*")
TYPE = re.compile(rf"# TYPE ({NAME}) (counter|gauge|histogram|summary|untyped)")
LABEL_PAIR = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\["\\n])*)"')

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse_exposition(body: str) -> Samples:
    """Every sample of a Prometheus text exposition; fails on any line that is not valid:
    a sample before its family's TYPE, a family declared twice or split, a value that is not
    a number, a histogram whose buckets do not add up."""
    assert body.endswith("\n")
    types: dict[str, str] = {}
    samples: Samples = {}
    current = None
    for line in body.rstrip("\n").split("\n"):
        if line.startswith("# HELP "):
            assert HELP.fullmatch(line), line
            continue
        if line.startswith("# TYPE "):
            match = TYPE.fullmatch(line)
            assert match, line
            assert match[1] not in types, f"{match[1]} declared twice"
            types[match[1]], current = match[2], match[1]
            continue
        assert not line.startswith("#") and line.strip(), f"not a valid line: {line!r}"
        match = SAMPLE.fullmatch(line)
        assert match, f"not a valid sample: {line!r}"
        name, labels, value = match[1], match[2] or "", match[3]
        family = name
        if current is not None and types[current] == "histogram":
            family = re.sub(r"_(bucket|sum|count)$", "", name)
        assert family == current, f"{name} outside its family ({current})"
        number = float(value)  # "+Inf", "NaN" and Go's floats parse here too
        key = (name, frozenset(LABEL_PAIR.findall(labels)))
        assert key not in samples, f"{line!r} repeats a sample"
        samples[key] = number
    for family, kind in types.items():
        if kind == "histogram":
            check_histogram(samples, family)
    return samples


def check_histogram(samples: Samples, family: str) -> None:
    """Buckets are cumulative and the +Inf bucket is the count."""
    series: dict[frozenset[tuple[str, str]], list[tuple[float, float]]] = {}
    for (name, labels), value in samples.items():
        if name == f"{family}_bucket":
            le = dict(labels)["le"]
            rest = frozenset(pair for pair in labels if pair[0] != "le")
            series.setdefault(rest, []).append((float(le), value))
    for labels, buckets in series.items():
        buckets.sort()
        counts = [count for _, count in buckets]
        assert counts == sorted(counts), f"{family} buckets not cumulative"
        assert buckets[-1][0] == math.inf
        assert samples[(f"{family}_count", labels)] == counts[-1]
        assert (f"{family}_sum", labels) in samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


class FakeEngine:
    """Stands in for the engine: instant jobs with known stage timings; style "lofi" fails
    as a mistake in the request, style "robot" waits until released."""

    def __init__(self) -> None:
        self.started, self.release = threading.Event(), threading.Event()

    def __call__(self, kind: str, data: bytes | None, parameters: dict[str, Any]
                 ) -> JobResult:
        style = parameters.get("style")
        if style == "lofi":
            raise InvalidRequest("that one cannot be made")
        if style == "robot":
            self.started.set()
            assert self.release.wait(WAIT_S)
        return JobResult(audio=b"OggS" + secrets.token_bytes(8), duration_s=2.0,
                         key="C major", tempo_bpm=100.0, timings_s=dict(STAGES))


async def started_service(tmp_path: Path, runner: FakeEngine, executor: ThreadPoolExecutor,
                          **options: Any) -> Service:
    service = await open_service(service_settings(tmp_path, **options), runner=runner,
                                 executor=executor, limits=LOOSE_LIMITS, seed=TEST_SEED)
    await service.start()
    return service


async def running_web(service: Service) -> WebAdapter:
    settings = service.settings.model_copy(update={"web_port": 0})
    adapter = WebAdapter(service.commands, settings)
    service.commands.attach("web", adapter)
    await adapter.start()
    return adapter


@pytest.fixture()
async def engine() -> AsyncIterator[FakeEngine]:
    fake = FakeEngine()
    yield fake
    fake.release.set()


@pytest.fixture()
async def web(tmp_path: Path, engine: FakeEngine) -> AsyncIterator[tuple[Service, WebAdapter]]:
    executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="singsong-job")
    service = await started_service(tmp_path, engine, executor)
    adapter = await running_web(service)
    try:
        yield service, adapter
    finally:
        engine.release.set()
        await adapter.stop()
        await service.close()
        executor.shutdown(wait=True)
        close_worker_threads()


async def get(adapter: WebAdapter, path: str) -> tuple[int, str, str]:
    timeout = aiohttp.ClientTimeout(total=WAIT_S)
    async with (aiohttp.ClientSession(base_url=adapter.url, timeout=timeout) as client,
                client.get(path) as response):
        return response.status, response.headers["Content-Type"], await response.text()


async def table_counts(service: Service) -> dict[str, int]:
    async with service.sessions() as session:
        rows = await session.execute(text("SELECT status, count(*) FROM jobs GROUP BY status"))
        return {status: int(count) for status, count in rows.all()}


# --- /healthz ---------------------------------------------------------------------------------


async def test_healthz_says_ok_with_the_queue_depth(web: tuple[Service, WebAdapter]) -> None:
    service, adapter = web
    async with service.sessions() as session:  # a job waiting, as if no worker had it yet
        user = await queries.user_for(session, "web", "someone")
        await queries.submit_job(session, key="web:someone:1", kind="melody", user=user)
    status, content_type, body = await get(adapter, "/healthz")
    assert status == 200 and content_type.startswith("application/json")
    health = json.loads(body)
    assert health == {"status": "ok", "database": "ok", "jobs": {"mode": "pool",
                                                                  "running": True},
                      "queue_depth": 1, "running_jobs": 0}


async def test_healthz_is_503_when_the_database_is_gone(tmp_path: Path,
                                                        engine: FakeEngine) -> None:
    name = f"singsong_{secrets.token_hex(6)}"
    admin = create_engine(f"{POSTGRES_SERVER}/test")
    async with admin.connect() as connection:
        await connection.execution_options(isolation_level="AUTOCOMMIT")
        await connection.execute(text(f"CREATE DATABASE {name}"))
    executor = ThreadPoolExecutor(max_workers=1)
    try:
        service = await started_service(tmp_path, engine, executor,
                                        database_url=f"{POSTGRES_SERVER}/{name}")
        adapter = await running_web(service)
        try:
            status, _, body = await get(adapter, "/healthz")
            assert status == 200 and json.loads(body)["database"] == "ok"
            async with admin.connect() as connection:
                await connection.execution_options(isolation_level="AUTOCOMMIT")
                await connection.execute(text(f"DROP DATABASE {name} WITH (FORCE)"))
            status, _, body = await get(adapter, "/healthz")
            assert status == 503
            health = json.loads(body)
            assert health["status"] == "unavailable" and health["database"] == "unreachable"
            assert health["queue_depth"] is None
            assert name not in body  # the error's text (with the URL) stays out
            # /metrics still answers, and says the database is down.
            status, _, body = await get(adapter, "/metrics")
            samples = parse_exposition(body)
            assert status == 200 and value(samples, "singsong_database_up") == 0
            assert ("singsong_jobs", frozenset({("state", "done")})) not in samples
        finally:
            await adapter.stop()
            await service.close()
    finally:
        executor.shutdown(wait=True)
        close_worker_threads()
        async with admin.connect() as connection:
            await connection.execution_options(isolation_level="AUTOCOMMIT")
            await connection.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        await admin.dispose()


async def test_redis_ping() -> None:
    assert await redis_answers("redis://127.0.0.1:6379")
    assert not await redis_answers("redis://127.0.0.1:1")  # nothing listens there


# --- /metrics ---------------------------------------------------------------------------------


async def test_metrics_count_the_jobs_of_the_table(web: tuple[Service, WebAdapter],
                                                   engine: FakeEngine) -> None:
    service, adapter = web
    timeout = aiohttp.ClientTimeout(total=WAIT_S)
    async with aiohttp.ClientSession(base_url=adapter.url, timeout=timeout,
                                     cookie_jar=aiohttp.CookieJar(unsafe=True)) as client:
        async def melody(style: str) -> None:
            async with client.post("/api/jobs", json={"kind": "melody", "style": style}
                                   ) as response:
                assert response.status == 202, await response.text()

        status, content_type, body = await get(adapter, "/metrics")  # starts following
        assert status == 200 and content_type == CONTENT_TYPE
        for style in ("pop", "ballad", "lofi"):  # two done, one failed (the sender's mistake)
            await melody(style)
        await asyncio.wait_for(service.jobs.wait(), WAIT_S)
        await melody("robot")  # one running
        assert await asyncio.to_thread(engine.started.wait, WAIT_S)
    async with service.sessions() as session:  # one queued
        user = await queries.user_for(session, "web", "someone")
        await queries.submit_job(session, key="web:someone:1", kind="melody", user=user)

    _, _, body = await get(adapter, "/metrics")
    samples = parse_exposition(body)
    table = await table_counts(service)
    assert table == {"done": 2, "failed": 1, "running": 1, "queued": 1}
    for state in ("queued", "running", "done", "failed"):
        assert value(samples, "singsong_jobs", state=state) == table[state]
    assert value(samples, "singsong_queue_depth") == 1
    assert value(samples, "singsong_queue_oldest_seconds") >= 0
    assert value(samples, "singsong_replies_sent") == 3
    assert value(samples, "singsong_replies_owed") == 0
    assert value(samples, "singsong_albums_built") == 0
    assert value(samples, "singsong_database_up") == 1
    assert value(samples, "singsong_job_engine_running", mode="pool") == 1
    assert value(samples, "singsong_jobs_finished_total", kind="melody", outcome="done") == 2
    assert value(samples, "singsong_jobs_finished_total", kind="melody", outcome="failed") == 1
    for stage, seconds in STAGES.items():
        assert value(samples, "singsong_stage_seconds_count", kind="melody", stage=stage) == 2
        assert value(samples, "singsong_stage_seconds_sum", kind="melody",
                     stage=stage) == pytest.approx(2 * seconds)
    assert value(samples, "singsong_stage_seconds_bucket", kind="melody", stage="compose",
                 le="0.025") == 0
    assert value(samples, "singsong_stage_seconds_bucket", kind="melody", stage="compose",
                 le="0.05") == 2
    assert value(samples, "singsong_job_latency_seconds_count", kind="melody") == 2

    engine.release.set()
    await asyncio.wait_for(service.jobs.wait(), WAIT_S)
    _, _, body = await get(adapter, "/metrics")
    samples = parse_exposition(body)
    assert value(samples, "singsong_jobs", state="running") == 0
    assert value(samples, "singsong_jobs", state="done") == 3
    assert value(samples, "singsong_jobs_finished_total", kind="melody", outcome="done") == 3
    assert value(samples, "singsong_stage_seconds_count", kind="melody", stage="encode") == 3
    _, _, again = await get(adapter, "/metrics")  # a scrape counts nothing twice
    assert value(parse_exposition(again), "singsong_stage_seconds_count", kind="melody",
                 stage="encode") == 3


def counted(following: FinishedJobs) -> Samples:
    """Every sample the finished jobs' collector gives now, in the text format."""
    return parse_exposition(exposition(following).decode())


def test_exposition_escapes_and_formats() -> None:
    following = FinishedJobs()
    for seconds in (0.05, 0.5, 5.0):  # a stage named oddly by the engine still parses
        following._observe(JobTimes(1, "melody", "done", None, None,
                                    {'we"ird\\\nname': seconds}))
    samples = counted(following)
    weird = 'we\\"ird\\\\\\nname'
    assert value(samples, "singsong_jobs_finished_total", kind="melody", outcome="done") == 3
    assert value(samples, "singsong_stage_seconds_bucket", stage=weird, kind="melody",
                 le="0.05") == 1
    assert value(samples, "singsong_stage_seconds_bucket", stage=weird, kind="melody",
                 le="1.0") == 2
    assert value(samples, "singsong_stage_seconds_bucket", stage=weird, kind="melody",
                 le="+Inf") == 3
    assert value(samples, "singsong_stage_seconds_sum", stage=weird,
                 kind="melody") == pytest.approx(5.55)
    assert not [name for name, _ in samples if name.endswith("_created")]


async def test_jobs_that_finished_before_the_start_are_not_counted(
        web: tuple[Service, WebAdapter]) -> None:
    service, _ = web
    async with service.sessions() as session:
        user = await queries.user_for(session, "web", "someone")
        job, _ = await queries.submit_job(session, key="web:someone:1", kind="melody",
                                          user=user)
        row = await session.get(Job, job.id)
        assert row is not None
        row.status, row.finished_at, row.timings_s = "done", FinishedJobs().since, STAGES
        await session.commit()
    later = FinishedJobs()  # started after that job finished
    async with service.sessions() as session:
        await later.update(session)
    assert counted(later) == {}


# --- Logs -------------------------------------------------------------------------------------


def test_json_log_lines_carry_the_fields_and_extras() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("singsong.test_operations")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("job %d: %s", 7, "a ünïcode line\nwith a newline",
                       extra={"job_id": 7, "where": Path("/x")})
        try:
            raise ValueError("broken")
        except ValueError:
            logger.exception("it broke")
    finally:
        logger.removeHandler(handler)
        logger.propagate = True
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    first, second = (json.loads(line) for line in lines)
    assert first["level"] == "WARNING" and first["logger"] == "singsong.test_operations"
    assert first["message"] == "job 7: a ünïcode line\nwith a newline"
    assert first["job_id"] == 7 and first["where"] == "/x"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", first["time"])
    assert second["level"] == "ERROR" and "ValueError: broken" in second["exception"]


def test_log_format_setting() -> None:
    assert log_format({}) == "plain"
    assert log_format({"SINGSONG_LOG_FORMAT": " JSON "}) == "json"
    assert log_format({"SINGSONG_LOG_FORMAT": "xml"}) == "plain"
    # Under pytest the root logger has pytest's handlers: left alone, like basicConfig.
    assert setup_logging(logging.INFO, io.StringIO(), "json") is None


def singsong(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """The real command in a fresh process, with only these SINGSONG_ settings."""
    clean = {key: val for key, val in os.environ.items() if not key.startswith("SINGSONG_")}
    clean.update(SINGSONG_DATA_DIR=str(tmp_path / "data"), **env)
    command = [str(Path(sys.executable).with_name("singsong")), *args]
    return subprocess.run(command, cwd=tmp_path, env=clean, capture_output=True, text=True,
                          timeout=120, check=True)


def test_the_command_logs_json_lines_when_asked(tmp_path: Path) -> None:
    done = singsong(tmp_path, "-v", "db", "upgrade", SINGSONG_LOG_FORMAT="json")
    lines = [line for line in done.stderr.splitlines() if not line.startswith("singsong db:")]
    assert lines
    for line in lines:
        entry = json.loads(line)
        assert {"time", "level", "logger", "message"} <= entry.keys()
    assert any(json.loads(line)["logger"].startswith("alembic") for line in lines)
    (tmp_path / "again").mkdir()
    plain = singsong(tmp_path / "again", "-v", "db", "upgrade")
    assert plain.stderr.splitlines()[0].split()[2] == "INFO"  # date time LEVEL logger ...


def test_a_spawned_worker_logs_json_too(tmp_path: Path) -> None:
    script = ("import logging; from bot.logs import worker_logging; worker_logging(); "
              "logging.getLogger('singsong.jobs').info('job %d done', 3, extra={'job_id': 3})")
    env = {**os.environ, "SINGSONG_LOG_FORMAT": "json"}
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60, check=True)
    entry = json.loads(done.stderr)
    assert entry["message"] == "job 3 done" and entry["job_id"] == 3
    assert entry["logger"] == "singsong.jobs" and entry["level"] == "INFO"


async def test_each_finished_job_counts_once_in_any_order(
        web: tuple[Service, WebAdapter]) -> None:
    service, _ = web
    following = FinishedJobs()

    async def update() -> int:
        async with service.sessions() as session:
            await following.update(session)
        return int(sum(count for (name, _), count in counted(following).items()
                       if name == "singsong_jobs_finished_total"))

    async def add(count: int, status: str) -> list[int]:
        async with service.sessions() as session:
            user = await queries.user_for(session, "web", "someone")
            jobs = [Job(kind="melody", status=status, idempotency_key=secrets.token_hex(8),
                        user_id=user.id, parameters={}, timings_s=dict(STAGES),
                        finished_at=now() if status == "done" else None)
                    for _ in range(count)]
            session.add_all(jobs)
            await session.commit()
            return [job.id for job in jobs]

    assert await update() == 0
    [waiting] = await add(1, "queued")
    await add(1, "done")
    assert await update() == 1
    await add(150, "done")  # more than ID_SLACK after the one still waiting
    assert await update() == 151
    async with service.sessions() as session:
        job = await session.get(Job, waiting)
        assert job is not None
        job.status, job.finished_at = "done", now()
        await session.commit()
    assert await update() == 152
    assert await update() == 152
    assert value(counted(following), "singsong_stage_seconds_bucket", kind="melody",
                 stage="compose", le="+Inf") == 152
