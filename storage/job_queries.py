"""What the job engine asks of storage beyond storage.queries: how much a person (and the
whole service) has asked for lately, a redelivered message's job, a worker's claim on a
queued job, and the curation features it measures once the track is stored. Functions over
an AsyncSession."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Job, JobStatus, Track, now


async def jobs_asked_since(session: AsyncSession, user_id: int, since: datetime) -> int:
    """How many jobs this person asked for from `since` on (the per-minute and per-day
    limits)."""
    return int((await session.execute(select(func.count()).select_from(Job).where(
        Job.user_id == user_id, Job.created_at >= since))).scalar_one())


async def unfinished_jobs_of(session: AsyncSession, user_id: int) -> int:
    """How many of this person's jobs are queued or running."""
    return int((await session.execute(select(func.count()).select_from(Job).where(
        Job.user_id == user_id, Job.status.in_(JobStatus.unfinished())))).scalar_one())


async def queued_jobs(session: AsyncSession) -> int:
    """How many jobs wait for a worker, everyone's."""
    return int((await session.execute(select(func.count()).select_from(Job).where(
        Job.status == JobStatus.QUEUED))).scalar_one())


async def unfinished_jobs(session: AsyncSession, *, running: bool) -> list[tuple[int, int]]:
    """The queued jobs (and the running ones, with `running`), oldest first: (job id, the
    id of the person who asked)."""
    statuses = JobStatus.unfinished() if running else (JobStatus.QUEUED,)
    rows = await session.execute(select(Job.id, Job.user_id).where(Job.status.in_(statuses))
                                 .order_by(Job.id))
    return [(job_id, user_id) for job_id, user_id in rows]


async def job_by_key(session: AsyncSession, key: str) -> Job | None:
    """The job a message (by its idempotency key) already asked for, if any."""
    return (await session.execute(
        select(Job).where(Job.idempotency_key == key))).scalar_one_or_none()


async def claim_job(session: AsyncSession, job_id: int) -> Job | None:
    """A worker takes a queued job: it becomes running, one attempt more, its lease starts
    now. The job as claimed, or None when it was not queued (another worker has it, or it
    ended). Commits, so the claim holds whatever the worker does next."""
    moment = now()
    claimed = await session.execute(
        update(Job).where(Job.id == job_id, Job.status == JobStatus.QUEUED)
        .values(status=JobStatus.RUNNING.value, attempts=Job.attempts + 1,
                started_at=moment, heartbeat_at=moment))
    await session.commit()
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        return None
    job = (await session.execute(select(Job).where(Job.id == job_id))).scalar_one()
    await session.commit()
    return job


async def store_features(session: AsyncSession, track_id: int, features: dict[str, Any],
                         job_id: int, timings_s: dict[str, float]) -> bool:
    """A stored track's curation features, measured after it was stored, and its job's
    timings with the measuring's. Kept unless the track is gone (forgotten) or was measured
    meanwhile (by the nightly curation); True when kept. Commits."""
    kept = await session.execute(
        update(Track).where(Track.id == track_id, Track.features.is_(None))
        .values(features=features))
    stored = bool(kept.rowcount == 1)  # type: ignore[attr-defined]
    if stored:
        await session.execute(update(Job).where(Job.id == job_id).values(timings_s=timings_s))
    await session.commit()
    return stored
