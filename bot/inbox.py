"""The inbox: an incoming update is kept in the database before its platform is told it
arrived, and marked handled once it was. An update that is kept but not handled (the
process stopped, or the database went away mid-way) is handled again by the next start, or
by the adapter's sweep a couple of minutes later; handling is idempotent (a message's job
has the message's key), so nothing is done twice and nothing is lost."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.outages import OUTAGE_S, outlast
from storage import queries
from storage.models import now

log = logging.getLogger("singsong.inbox")

SWEEP_EVERY_S = 60.0  # how often an adapter looks for updates kept but not handled
UNHANDLED_AFTER_S = 120.0  # an update not handled this long after it came was dropped
KEEP_HANDLED_S = 7 * 24 * 3600.0  # a handled update is remembered this long (redeliveries)
MARK_OUTAGE_S = 30.0  # marking an update handled waits this long for the database at most


class Inbox:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

    async def keep(self, platform: str, key: str, sender: str, payload: dict[str, Any], *,
                   outage_s: float = OUTAGE_S) -> bool:
        """Keep an update, waiting out a database outage (up to outage_s, then the error is
        raised: the caller must not confirm the update). False when the update was handled
        before (a redelivery: do nothing)."""
        async def kept() -> bool:
            async with self.sessions() as session:
                return await queries.keep_update(session, key=key, platform=platform,
                                                 platform_user_id=sender, payload=payload)
        return await outlast(kept, f"keeping {key}", outage_s=outage_s)

    async def handled(self, key: str) -> None:
        """Mark an update handled. When the database stays away, the update stays unhandled
        and is handled again later (idempotently): logged, not raised."""
        async def mark() -> None:
            async with self.sessions() as session:
                await queries.mark_handled(session, key)
        try:
            await outlast(mark, f"marking {key} handled", outage_s=MARK_OUTAGE_S)
        except Exception as error:
            log.warning("%s stays unhandled for now (%s)", key, type(error).__name__)

    async def unhandled(self, platform: str, older_than_s: float = 0.0
                        ) -> list[tuple[str, dict[str, Any]]]:
        """Updates kept but not handled that came at least `older_than_s` ago: (key,
        payload), oldest first. Handled updates older than KEEP_HANDLED_S are dropped."""
        async with self.sessions() as session:
            await queries.drop_handled_updates(session,
                                               now() - timedelta(seconds=KEEP_HANDLED_S))
            return await queries.unhandled_updates(
                session, platform, now() - timedelta(seconds=older_than_s))


async def sweep_forever(take_up: Callable[[float], Awaitable[None]], platform: str) -> None:
    """An adapter's sweep: every SWEEP_EVERY_S, take up (`take_up(older_than_s)`) the updates
    kept but not handled for UNHANDLED_AFTER_S."""
    while True:
        await asyncio.sleep(SWEEP_EVERY_S)
        try:
            await take_up(UNHANDLED_AFTER_S)
        except Exception as error:
            log.warning("the %s inbox sweep failed (%s)", platform, type(error).__name__)
