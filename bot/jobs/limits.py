"""How much one person, and everyone together, may ask of the job engine."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from bot.errors import SlowDown
from storage import job_queries
from storage.models import User, now


@dataclass(frozen=True)
class Limits:
    per_user_per_minute: int = 6
    per_user_per_day: int = 100
    per_user_active: int = 2
    queued_total: int = 200
    seconds_per_job: float = 1.0  # for "try again in N s"


DEFAULT_LIMITS = Limits()

LOOSE_LIMITS = Limits(per_user_per_minute=10_000, per_user_per_day=1_000_000,
                      per_user_active=10_000, queued_total=100_000)
"""For benchmarks and load tests that are the only users."""


async def check_limits(session: AsyncSession, user: User, limits: Limits, workers: int) -> None:
    """Raise SlowDown when this person asked too often (in a minute, or in a day), has too
    much running, or when the service is full."""
    recent = await job_queries.jobs_asked_since(session, user.id, now() - timedelta(minutes=1))
    if recent >= limits.per_user_per_minute:
        raise SlowDown("that is a lot of songs in a minute: try again in a minute", 60)
    today = await job_queries.jobs_asked_since(session, user.id, now() - timedelta(days=1))
    if today >= limits.per_user_per_day:
        raise SlowDown(f"that is {today} songs in a day, my limit for one person: try again "
                       "tomorrow", 3600)
    if await job_queries.unfinished_jobs_of(session, user.id) >= limits.per_user_active:
        raise SlowDown("I am still working on your last songs: send this again when they "
                       "arrive", 30)
    queued = await job_queries.queued_jobs(session)
    if queued >= limits.queued_total:
        wait = math.ceil(queued * limits.seconds_per_job / max(workers, 1))
        raise SlowDown(f"I am busy right now: try again in {wait} s", wait)
