"""Delivery: a finished job's one reply, sent through the outbox of its platform exactly
once, also when the process restarted in between; and posting to many chats at once."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.commands._base import file_of
from bot.commands._replies import (
    SOMETHING_WENT_WRONG,
    SungAs,
    error_for_person,
    finished_reply,
    group_reply,
)
from bot.commands._types import Outbox, Reply, Target
from bot.outages import outlast
from storage import queries
from storage.blobs import BlobStore
from storage.models import Chat, Job, JobKind, JobStatus, now

log = logging.getLogger("singsong.commands")

DELIVER_TIMEOUT_S = 120.0  # sending one reply (uploads included) takes at most this
UNSENT_FOR_S = 24 * 3600.0  # a reply a platform keeps refusing is tried again this long


class Delivery:
    """The outboxes of the platforms running here, and the replies owed through them. The
    job engine calls on_job_finished; Commands and Together post through it."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], blobs: BlobStore) -> None:
        self.sessions, self.blobs = sessions, blobs
        self._outboxes: dict[str, Outbox] = {}
        self._answered: dict[int, asyncio.Event] = {}

    def attach(self, platform: str, outbox: Outbox) -> None:
        self._outboxes[platform] = outbox

    async def post(self, platform: str, chat_id: str, reply_to: dict[str, Any],
                    text: str) -> None:
        """A sentence in a chat, where its platform runs here (a group song closing)."""
        outbox = self._outboxes.get(platform)
        if outbox is None:
            return
        try:
            await outbox.deliver(Target(chat_id, reply_to), Reply(text))
        except Exception:
            log.exception("telling %s chat %s failed", platform, chat_id)

    async def post_to_chats(self, chats: Sequence[Chat], reply: Reply, what: str) -> int:
        """One reply to each chat whose platform runs here; the number it reached."""
        reached = 0
        for chat in chats:
            outbox = self._outboxes.get(chat.platform)
            if outbox is None:
                continue
            try:
                await outbox.deliver(Target(chat.platform_chat_id, {}), reply)
                reached += 1
            except Exception:
                log.exception("posting %s to %s chat %d failed", what, chat.platform, chat.id)
        return reached

    async def on_job_finished(self, job_id: int, outcome: str) -> None:
        """The job engine's callback: send the job's one reply (when it has an outbox)."""
        try:
            await self._deliver(job_id)
        except Exception:
            log.exception("delivering the reply to job %d failed", job_id)

    async def deliver_unsent(self) -> int:
        """Replies owed: by a stopped process, or refused by a platform (a job finished, its
        reply not sent). Jobs that finished more than UNSENT_FOR_S ago are let go."""
        since = now() - timedelta(seconds=UNSENT_FOR_S)
        async with self.sessions() as session:
            owed = await queries.unreplied_job_ids(session, since)
        for job_id in owed:
            await self.on_job_finished(job_id, "")
        return len(owed)

    async def answered(self, job_id: int) -> None:
        """Returns once the job's reply has been sent (or the job has no one to answer)."""
        event = self._answered.setdefault(job_id, asyncio.Event())
        async with self.sessions() as session:
            replied = await queries.is_replied(session, job_id)
        if replied is None or replied:
            self._answered.pop(job_id, None)
            return
        await event.wait()

    async def _deliver(self, job_id: int) -> None:
        """Send a finished job's reply, once: claimed first, given back when the platform
        refused it (for deliver_unsent). A database that is away is waited out at each
        step, so a restart of it does not hold the reply until the next resend."""
        what = f"the reply to job {job_id}"
        claimed = await outlast(lambda: self._claim_reply(job_id), what)
        if claimed is None:
            return
        job, chat, outbox = claimed
        try:
            reply = await outlast(lambda: self._reply_of(job), what)
            # A platform that stalls (discord.py sets no timeout of its own) must not hold the
            # reply forever: it is given back and sent again.
            async with asyncio.timeout(DELIVER_TIMEOUT_S):
                await outbox.deliver(Target(chat.platform_chat_id, dict(job.reply_to or {})),
                                     reply)
        except Exception:
            # Not sent: give the reply back, for deliver_unsent (every minute, and at start).
            await outlast(lambda: self._set_replied(job_id, False), what)
            raise
        else:
            # How to reply (a Discord interaction token is a credential) is kept no longer
            # than needed.
            await outlast(lambda: self._set_replied(job_id, True, forget_reply_to=True), what)
        finally:
            event = self._answered.pop(job_id, None)
            if event is not None:
                event.set()

    async def _claim_reply(self, job_id: int) -> tuple[Job, Chat, Outbox] | None:
        """The finished job, its chat and its platform's outbox, when this process sends its
        reply (claimed here: nobody else will); None when there is nothing to send here."""
        async with self.sessions() as session:
            row = await queries.job_with_chat(session, job_id)
            if row is None or row[0].status not in JobStatus.finished():
                return None
            job, chat = row
            outbox = self._outboxes.get(chat.platform) if chat is not None else None
            if chat is None or outbox is None:
                return None  # its platform is not running here; a later start delivers it
            if not await queries.claim_reply(session, job.id):
                return None
            return job, chat, outbox

    async def _reply_of(self, job: Job) -> Reply:
        if job.status == JobStatus.FAILED:
            return Reply(error_for_person(job) or SOMETHING_WENT_WRONG)
        async with self.sessions() as session:  # read only by whoever sends it
            track = await queries.track_made_by(session, job.id)
        if track is None:
            raise LookupError(f"job {job.id} is done and made no track")
        midi = file_of(self.blobs, track, "midi") if track.midi_blob else None
        if job.kind == JobKind.GROUP:
            return group_reply(job, track, file_of(self.blobs, track, "audio"), midi)
        return finished_reply(job.kind, track, file_of(self.blobs, track, "audio"), midi,
                              in_a_group=job.private is False,
                              sung=SungAs.of(job))

    async def _set_replied(self, job_id: int, replied: bool, *,
                           forget_reply_to: bool = False) -> None:
        values: dict[str, Any] = {"replied": replied}
        if forget_reply_to:
            values["reply_to"] = None
        async with self.sessions() as session:
            await queries.set_job(session, job_id, **values)
