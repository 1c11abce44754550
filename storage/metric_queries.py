"""What the operators' `/metrics` and `/healthz` ask of storage: jobs by status, the queue,
replies and albums, and the jobs that finished since a point in the jobs table. Functions
over an AsyncSession; they only read."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Album, Job, JobStatus


async def jobs_by_status(session: AsyncSession, statuses: tuple[JobStatus, ...] = tuple(JobStatus)
                         ) -> dict[str, int]:
    """How many jobs are in each of these statuses (every one present, 0 when none); cheap
    for the unfinished ones, since the status column is indexed."""
    rows = await session.execute(select(Job.status, func.count()).where(
        Job.status.in_(statuses)).group_by(Job.status))
    counts = {status.value: 0 for status in statuses}
    counts.update({status: int(count) for status, count in rows.all()})
    return counts


async def oldest_queued_at(session: AsyncSession) -> datetime | None:
    """When the job that has waited longest for a worker was asked for (None: none waits)."""
    return (await session.execute(select(func.min(Job.created_at)).where(
        Job.status == JobStatus.QUEUED))).scalar_one_or_none()


async def replies_sent(session: AsyncSession) -> int:
    """Jobs whose reply has been sent."""
    return int((await session.execute(select(func.count()).select_from(Job).where(
        Job.replied.is_(True)))).scalar_one())


async def replies_owed(session: AsyncSession) -> int:
    """Finished jobs whose reply is not sent yet."""
    return int((await session.execute(select(func.count()).select_from(Job).where(
        Job.status.in_(JobStatus.finished()), Job.replied.is_(False)))).scalar_one())


async def albums_made(session: AsyncSession) -> tuple[int, int]:
    """(weekly albums built, those posted to the chats)."""
    built = (await session.execute(select(func.count()).select_from(Album))).scalar_one()
    posted = (await session.execute(select(func.count()).select_from(Album).where(
        Album.posted_at.is_not(None)))).scalar_one()
    return int(built), int(posted)


async def newest_job_id(session: AsyncSession) -> int:
    """The highest job id (0 for none)."""
    return int((await session.execute(select(func.max(Job.id)))).scalar_one_or_none() or 0)


async def oldest_unfinished_job_id(session: AsyncSession) -> int | None:
    """The lowest id of a job still queued or running (None: every job finished)."""
    return (await session.execute(select(func.min(Job.id)).where(
        Job.status.not_in(JobStatus.finished())))).scalar_one_or_none()


@dataclass(frozen=True)
class JobTimes:
    """What the metrics count of one job: its kind, where it stands and how long it took."""

    id: int
    kind: str
    status: str
    created_at: datetime | None
    finished_at: datetime | None
    timings_s: dict[str, Any]


async def jobs_after(session: AsyncSession, job_id: int) -> list[JobTimes]:
    """Every job with an id above `job_id`, in id order."""
    rows = await session.execute(
        select(Job.id, Job.kind, Job.status, Job.created_at, Job.finished_at, Job.timings_s)
        .where(Job.id > job_id).order_by(Job.id))
    return [JobTimes(row.id, row.kind, row.status, row.created_at, row.finished_at,
                     row.timings_s or {}) for row in rows]
