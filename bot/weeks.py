"""ISO weeks, as the album names them: "2026-W47", Monday 00:00 UTC to the next Monday."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta

from engine.errors import InvalidRequest

# The one spelling of a week, everywhere: ASCII digits (the API document takes it as is).
WEEK = re.compile(r"([0-9]{4})-W([0-9]{2})")


def week_of(moment: datetime) -> str:
    year, week, _ = moment.astimezone(UTC).isocalendar()
    return f"{year}-W{week:02d}"


def week_bounds(week: str) -> tuple[datetime, datetime]:
    """Monday 00:00 UTC of the ISO week and of the week after; InvalidRequest for a bad
    name."""
    found = WEEK.fullmatch(week.strip())
    if found is None:
        raise InvalidRequest(f"a week is written YYYY-Www, for example 2026-W47 (got {week!r})")
    monday = _monday(found)
    if monday is None:
        raise InvalidRequest(f"there is no week {week!r}")
    start = datetime.combine(monday, time(), tzinfo=UTC)
    return start, start + timedelta(days=7)


def is_week(text: str) -> bool:
    """Whether text names a week that exists, as YYYY-Www (2026-W47), exactly."""
    found = WEEK.fullmatch(text)
    return found is not None and _monday(found) is not None


def _monday(found: re.Match[str]) -> date | None:
    try:
        return date.fromisocalendar(int(found[1]), int(found[2]), 1)
    except ValueError:
        return None


def last_week(moment: datetime) -> str:
    """The ISO week that ended most recently before `moment`."""
    return week_of(moment - timedelta(days=7))


def album_release(week: str, weekday: int, hour: int) -> datetime:
    """When the album of a week comes out: on `weekday` (0 is Monday) of the week after it,
    at `hour` UTC (the scheduler builds it then)."""
    return week_bounds(week)[1] + timedelta(days=weekday, hours=hour)
