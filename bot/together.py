"""Group songs: `/together` opens a song in a chat for a few minutes; everyone who answers the
invitation with a voice note joins it (joining is consent for this song only); when its
starter closes it, or its time is up, the voices become one job, and the song comes back to
the chat once, crediting every voice. A person's /forget makes it again without them (or
deletes it when fewer than two voices remain); sharing it to the album needs every voice's
yes.

The gathering lives in the database (`gatherings`, `group_voices`), so a restart while
gathering loses no note: the closer looks every CLOSER_EVERY_S for gatherings whose time is
up, and for closed ones that a stopped process did not make into a job yet.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.errors import SlowDown
from bot.group_bundle import pack_voices
from bot.jobs import JobEngine
from bot.titles import ANONYMOUS_CREDIT
from storage import queries
from storage.blobs import BlobStore
from storage.models import Chat, Gathering, Job, JobKind, Track, User, as_utc, now

log = logging.getLogger("singsong.together")

MINUTES = 5.0  # a group song gathers voices this long unless its starter closes it sooner
MIN_VOICES, MAX_VOICES = 2, 6
CLOSER_EVERY_S = 1.0
# Doors where a note joins only by answering the invitation (a Telegram bot in privacy mode
# sees little else); elsewhere any voice note in the chat joins while a song gathers.
JOIN_BY_REPLY = frozenset({"telegram"})
CLOSED = "That group song has closed. Start a new one with /together."

Post = Callable[[str, str, dict[str, Any], str], Awaitable[None]]
"""Posts a sentence in a chat: (platform, chat id, reply_to, text)."""


@dataclass(frozen=True)
class Said:
    """What the chat door says about a gathering: the sentence, and the gathering it is
    about when the message should be remembered as its invitation (replies to it join)."""

    text: str
    gathering_id: int | None = None
    job_id: int | None = None
    closed: bool = False  # the answer is that the gathering has closed
    refused: bool = False  # the person may not do that (close someone else's gathering)
    token: str | None = None  # the gathering's join link


@dataclass(frozen=True)
class GatheringView:
    """A gathering as its join link shows it: its state, who joined (in order), and the
    song once it is made."""

    token: str
    status: str  # "open", "closed" (made, or being made) or "dropped"
    closes_at: str  # ISO 8601, UTC
    voices: tuple[str, ...]
    started_by_me: bool
    joined: bool
    job_id: int | None
    song_track_id: int | None


def _answering(gathering: Gathering) -> dict[str, Any]:
    """How the door answers about a gathering: in reply to `/together` (the invitation's own
    id is kept beside it, for telling who answers it)."""
    return {k: v for k, v in gathering.reply_to.items() if k != "invitation_id"}


def _minutes_left(gathering: Gathering) -> int:
    """Whole minutes until the gathering closes, at least 1."""
    return max(1, round((as_utc(gathering.closes_at) - now()).total_seconds() / 60))


def credits(names: Sequence[str]) -> str:
    """'Ann, Bo and Cy'."""
    shown = [name or ANONYMOUS_CREDIT for name in names]
    return shown[0] if len(shown) == 1 else ", ".join(shown[:-1]) + " and " + shown[-1]


class Together:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], blobs: BlobStore,
                 jobs: JobEngine, post: Post, new_seed: Callable[[], int],
) -> None:
        self.sessions, self.blobs, self.jobs = sessions, blobs, jobs
        self.post, self.new_seed = post, new_seed
        self._closer: asyncio.Task[None] | None = None

    # -- gathering ----------------------------------------------------------------------------

    async def open(self, user: User, chat: Chat, reply_to: dict[str, Any]) -> Said:
        """`/together`: a group song opens in the chat (or the one open there is shown)."""
        async with self.sessions() as session:
            gathering, opened = await queries.open_gathering(
                session, chat=chat, starter=user,
                closes_at=now() + timedelta(minutes=MINUTES),
                token=secrets.token_urlsafe(32), reply_to=reply_to)
            count = await queries.count_voices(session, gathering.id)
        left = _minutes_left(gathering)
        if not opened:
            return Said(f"A group song is already gathering here ({count} of {MAX_VOICES} "
                        f"voices): reply to its invitation with a voice note to join. It "
                        f"closes in {left} min, or when its starter sends /together done.",
                        token=gathering.token)  # its invitation stays the first message
        return Said(f"A group song is open for {left} minutes! Reply to this message with a "
                    f"voice note to join: {MIN_VOICES} to {MAX_VOICES} voices, each sings a "
                    "verse and everyone sings the chorus. /together done closes it sooner.",
                    gathering.id, token=gathering.token)

    async def invited(self, gathering_id: int, message_id: str) -> None:
        """The door sent the invitation as this message: replies to it join."""
        async with self.sessions() as session:
            gathering = await queries.gathering_by_id(session, gathering_id)
            if gathering is not None:
                await queries.set_gathering(session, gathering_id, reply_to={
                    **gathering.reply_to, "invitation_id": message_id})

    async def join(self, user: User, chat: Chat, data: bytes, reply_to: dict[str, Any],
                   replying_to: str | None) -> Said | None:
        """A voice note in a chat: it joins the gathering open there when it answers the
        invitation (on a door without replies, any note while one is open); a note that
        answers the invitation of a closed one hears so. None: not for a group song."""
        async with self.sessions() as session:
            gathering = await queries.open_gathering_in(session, chat.id)
            invited = (await queries.invitation_answered(session, chat.id, replying_to)
                       if replying_to is not None else None)
            if invited is not None and (gathering is None or invited.id != gathering.id):
                return Said(CLOSED, closed=True)
            if gathering is None or (invited is None and chat.platform in JOIN_BY_REPLY):
                return None
        return await self._add(gathering, user, data, reply_to)

    async def join_by_link(self, user: User, token: str, data: bytes) -> Said | None:
        """A voice note sent through a gathering's join link (the web); None: no such link."""
        found = await self._open_by_link(token)
        return await self._add(found, user, data, {}) if isinstance(found, Gathering) else found

    async def _open_by_link(self, token: str) -> Gathering | Said | None:
        """The open gathering a join link names; what to say when it has closed; None when
        there is no such link."""
        async with self.sessions() as session:
            gathering = await queries.gathering_by_token(session, token)
        if gathering is not None and gathering.status != "open":
            return Said(CLOSED, closed=True)
        return gathering

    async def _add(self, gathering: Gathering, user: User, data: bytes,
                   reply_to: dict[str, Any]) -> Said:
        async with self.sessions() as session:
            count = await queries.add_voice(session, gathering, user,
                                            input_blob=self.blobs.put(data), reply_to=reply_to)
        left = _minutes_left(gathering)
        name = user.display_name or "you"
        if count >= MAX_VOICES:
            said = await self.close_and_make(gathering.id)
            return Said(f"You're in, {name}: that makes {MAX_VOICES} voices, the most a group "
                        f"song takes. {said.text}", job_id=said.job_id)
        return Said(f"You're in, {name}! {count} of {MAX_VOICES} voices so far; the song "
                    f"comes when the starter sends /together done, or in {left} min.")

    async def done(self, user: User, chat: Chat) -> Said:
        """`/together done`: the starter closes the gathering now."""
        async with self.sessions() as session:
            gathering = await queries.open_gathering_in(session, chat.id)
        if gathering is None:
            return Said("No group song is gathering here. Start one with /together.")
        return await self._close_for(user, gathering)

    async def done_by_link(self, user: User, token: str) -> Said | None:
        """The join link's Close button; None: no such link."""
        found = await self._open_by_link(token)
        return await self._close_for(user, found) if isinstance(found, Gathering) else found

    async def view(self, user: User | None, token: str) -> GatheringView | None:
        """What the join link shows (None: no such link, or forgotten)."""
        async with self.sessions() as session:
            gathering = await queries.gathering_by_token(session, token)
            if gathering is None:
                return None
            voices = await queries.voices_of(session, gathering.id)
            track = (await queries.track_of_job(session, gathering.job_id)
                     if gathering.job_id else None)
        me = user.id if user is not None else None
        return GatheringView(
            token, gathering.status,
            as_utc(gathering.closes_at).isoformat(),
            tuple(u.display_name or ANONYMOUS_CREDIT for _, u in voices),
            me is not None and gathering.starter_id == me,
            any(u.id == me for _, u in voices), gathering.job_id, track)

    async def _close_for(self, user: User, gathering: Gathering) -> Said:
        if gathering.starter_id not in (None, user.id):
            return Said("Only the person who started this group song can close it early; it "
                        "closes by itself when its time is up.", refused=True)
        return await self.close_and_make(gathering.id)

    # -- closing and making -------------------------------------------------------------------

    async def close_and_make(self, gathering_id: int) -> Said:
        """Close the gathering (once, whoever gets there first) and make its song a job."""
        async with self.sessions() as session:
            await queries.close_gathering(session, gathering_id)
        return await self._make(gathering_id)

    async def _make(self, gathering_id: int) -> Said:
        async with self.sessions() as session:
            gathering = await queries.gathering_by_id(session, gathering_id)
            if gathering is None or gathering.status != "closed" or gathering.job_id:
                return Said("This group song is on its way already.")
            voices = await queries.voices_of(session, gathering_id)
            chat = await queries.chat_by_id(session, gathering.chat_id)
        if len(voices) < MIN_VOICES or chat is None:
            await self._set(gathering_id, status="dropped")
            return Said(f"Closed: a group song needs at least {MIN_VOICES} voices, and "
                        f"{len(voices)} joined. Start a new one with /together.")
        job = await self._submit(gathering, chat, voices)
        if job is None:
            return Said("I am busy right now: the group song comes as soon as I can make it.")
        names = credits([user.display_name for _, user in voices])
        return Said(f"Closed with {len(voices)} voices ({names}). Making your group song...",
                    job_id=job.id)

    async def _submit(self, gathering: Gathering, chat: Chat,
                      voices: list[tuple[Any, User]]) -> Job | None:
        bundle = pack_voices([self.blobs.get(voice.input_blob) for voice, _ in voices],
                             [user.display_name for _, user in voices])
        owner = voices[0][1]
        parameters = {"gathering": gathering.id, "version": gathering.version,
                      "seed": self.new_seed(), "style": owner.preferred_style,
                      "voices": [{"user_id": user.id, "name": user.display_name}
                                 for _, user in voices]}
        try:
            job, _ = await self.jobs.submit(
                key=f"{JobKind.GROUP}:{gathering.id}:{gathering.version}", kind=JobKind.GROUP,
                user=owner, chat=chat, data=bundle, parameters=parameters,
                reply_to=_answering(gathering), private=False)
        except SlowDown:
            return None  # the closer tries again in a moment
        await self._set(gathering.id, job_id=job.id)
        return job

    async def _set(self, gathering_id: int, **values: Any) -> None:
        async with self.sessions() as session:
            await queries.set_gathering(session, gathering_id, **values)

    async def close_due(self) -> int:
        """Close the gatherings whose time is up, make those a stopped process closed, and
        tell their chats. How many were handled."""
        async with self.sessions() as session:
            due = await queries.gatherings_due(session, now())
        for gathering_id in due:
            said = await self.close_and_make(gathering_id)
            await self._tell(gathering_id, said.text)
        return len(due)

    async def run_closer(self) -> None:
        """Every CLOSER_EVERY_S (the first time a moment after start, when the doors are
        attached), close_due()."""
        while True:
            await asyncio.sleep(CLOSER_EVERY_S)
            try:
                await self.close_due()
            except Exception as error:
                log.warning("closing group songs failed (%s); trying again",
                            type(error).__name__)

    def start(self) -> None:
        self._closer = asyncio.create_task(self.run_closer(), name="singsong-together")

    async def stop(self) -> None:
        if self._closer is not None:
            self._closer.cancel()
            await asyncio.gather(self._closer, return_exceptions=True)

    async def _tell(self, gathering_id: int, text: str) -> None:
        async with self.sessions() as session:
            row = await queries.gathering_and_chat(session, gathering_id)
        if row is not None:
            gathering, chat = row
            await self.post(chat.platform, chat.platform_chat_id, _answering(gathering), text)

    # -- after the song -----------------------------------------------------------------------

    async def say_yes(self, user: User, track: Track) -> str:
        """A voice of a group song says yes to the album; it is shared once all have."""
        async with self.sessions() as session:
            gathering = await queries.gathering_of_job(session, track.job_id)
            if gathering is None:
                return "That group song is gone."
            counted = await queries.say_yes_to_album(session, gathering.id, user.id)
            if counted is None:
                return "Only the voices of this group song can share it."
            yes, voices = counted
            if yes < voices:
                return (f"Thank you: {yes} of {voices} voices said yes. It goes into the "
                        "weekly album pool once every voice has pressed Share.")
            await queries.share_group_song(session, track.id, track.user_id)
        return (f"Every voice said yes: group song #{track.id} is in the pool for this "
                "week's community album.")

    async def before_forget(self, user: User) -> list[int]:
        """The gatherings with this person's voice, to make again once they are gone."""
        async with self.sessions() as session:
            return await queries.gatherings_with_voice_of(session, user.id)

    async def after_forget(self, gathering_ids: list[int]) -> None:
        """A person is forgotten: each group song their voice was in is deleted (its file
        holds their voice) and made again from the others, or dropped when fewer than two
        remain; its chat is told in one sentence."""
        for gathering_id in gathering_ids:
            async with self.sessions() as session:
                gathering = await queries.gathering_by_id(session, gathering_id)
                if gathering is None or gathering.status in ("open", "dropped"):
                    continue
                if gathering.job_id is not None:
                    await queries.drop_job(session, self.blobs, gathering.job_id)
                gathering.job_id, gathering.version = None, gathering.version + 1
                gathering.status = "closed"
                await session.commit()
            said = await self._make(gathering_id)
            if said.job_id is not None:
                await self._tell(gathering_id, "Someone in your group song asked me to forget "
                                 "them: I am making it again without their voice.")
            else:
                await self._tell(gathering_id, "Someone in your group song asked me to forget "
                                 "them, and fewer than two voices remain: the group song is "
                                 "deleted.")
