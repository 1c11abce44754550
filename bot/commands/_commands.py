"""What SingSong says and does, the same on every platform.

An adapter turns an incoming update into a Message and sends back the Reply that `handle`
returns. A request that needs the engine becomes a job: the first Reply only says it is
under way, and the finished song reaches the person later through the adapter's Outbox,
exactly once per job, also when the process restarted in between (see `Delivery`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.commands._delivery import Delivery
from bot.commands._registry import BY_NAME, help_reply
from bot.commands._replies import (
    FORM_BUTTONS,
    PIANO_STAYS_OUT,
    SONG_KINDS,
    WORKING,
    band,
    clean_name,
    is_piano_version,
    made_from,
    minutes,
    said_reply,
    sentence,
    track_number,
)
from bot.commands._types import Button, Message, Outbox, Person, Place, Reply
from bot.commands._views import WebViews
from bot.errors import BotError, Mistake, NotAllowed, NotFound, SlowDown
from bot.inbox import Inbox
from bot.jobs import JobEngine
from bot.outages import OUTAGE_S, outlast
from bot.titles import credit, new_title
from bot.together import Together
from bot.weeks import last_week
from engine.arrange import STYLES
from engine.audio import MAX_INPUT_BYTES
from engine.errors import InvalidRequest
from engine.form import check_form
from engine.singer import clean_lyrics
from storage import queries
from storage.blobs import BlobStore
from storage.models import Chat, Job, JobKind, Track, User, now

NO_LONGER_VALID = "That button is no longer valid."
PICTURE_SENT = "Here is its picture."
MAKES_AGAIN = ("another", JobKind.PIANO, *FORM_BUTTONS)  # buttons that make a new job
AlbumBuilder = Callable[[str], Awaitable[dict[str, Any]]]
"""Builds a week's album now (bot.scheduler.build_album): its report."""


class Commands(WebViews):
    """Every door's one partner: the commands (COMMANDS), the button presses and the web's
    views (WebViews). Built by the composition root (bot.service.open_service) from the
    parts it is given; finished jobs are answered by the Delivery, which the doors attach
    their Outbox to."""

    MAX_CLIP_BYTES = MAX_INPUT_BYTES

    def __init__(self, sessions: async_sessionmaker[AsyncSession], blobs: BlobStore,
                 jobs: JobEngine, delivery: Delivery, together: Together, *,
                 new_seed: Callable[[], int],
                 is_admin: Callable[[str, str], bool] = lambda platform, user_id: False,
                 album_builder: AlbumBuilder | None = None) -> None:
        self.sessions, self.blobs, self.jobs = sessions, blobs, jobs
        self.delivery, self.together, self.new_seed = delivery, together, new_seed
        self.is_admin = is_admin  # (platform, user_id): who may publish albums
        self.album_builder = album_builder
        self.inbox = Inbox(sessions)

    # What the doors ask of the delivery, through the Commands they hold.

    def attach(self, platform: str, outbox: Outbox) -> None:
        self.delivery.attach(platform, outbox)

    async def deliver_unsent(self) -> int:
        return await self.delivery.deliver_unsent()

    async def answered(self, job_id: int) -> None:
        await self.delivery.answered(job_id)

    # Incoming messages.

    async def answer(self, message: Message, *, outage_s: float = OUTAGE_S) -> Reply:
        """The answer to a message; a request SingSong will not take raises its kind of
        bot.errors.BotError (or the engine's InvalidRequest), for the door to say. A
        database that is away is waited out (up to outage_s; then its error is raised):
        handling a message again is safe, since its job has the message's key."""
        return await outlast(lambda: self._answer(message),
                             f"{message.place.platform} message {message.message_id}",
                             outage_s=outage_s)

    async def handle(self, message: Message, *, outage_s: float = OUTAGE_S) -> Reply:
        """The answer to a message in a chat, where a refusal is one sentence: the chat
        doors' one mapping of bot errors."""
        try:
            return await self.answer(message, outage_s=outage_s)
        except (BotError, InvalidRequest) as refusal:
            return refusal_reply(refusal)

    async def _answer(self, message: Message) -> Reply:
        name = (message.command or "").lower()
        if not name:
            return await self._plain(message)
        command = BY_NAME.get(name)
        if command is None:
            raise Mistake(f"I do not know /{name}. Send /help to see what I can do.")
        return await command.handler(self, message)

    async def _plain(self, message: Message) -> Reply:
        """A message without a command: a voice note is sung (or joins the group song
        gathering in its chat); in a private chat, text is lyrics to sing."""
        if message.clip is not None:
            joined = None if message.place.private else await self._join_group(message)
            if joined is not None:
                return joined
            return await BY_NAME["sing"].handler(self, message)
        if message.place.private and message.text.strip():
            return await self.sing_lyrics(message)
        return self.help(message.place)

    async def user_of(self, person: Person) -> User | None:
        """The person as stored, if SingSong has met them (nothing is made)."""
        async with self.sessions() as session:
            return await queries.user_of(session, person.platform, person.user_id)

    async def user_and_chat(self, person: Person, place: Place) -> tuple[User, Chat]:
        """The person and the chat as stored (made on first sight)."""
        async with self.sessions() as session:
            user = await queries.user_for(session, person.platform, person.user_id,
                                          person.display_name)
            chat = await queries.chat_for(session, place.platform, place.chat_id)
        return user, chat

    async def together_in_chat(self, message: Message) -> Reply:
        """/together opens a group song in this chat; /together done closes it."""
        user, chat = await self.user_and_chat(message.person, message.place)
        if message.text.strip().lower() == "done":
            said = await self.together.done(user, chat)
        else:
            said = await self.together.open(user, chat, message.reply_to)
        return said_reply(said)

    async def _join_group(self, message: Message) -> Reply | None:
        """A voice note that joins the group song gathering in its chat (None: it does not)."""
        assert message.clip is not None
        user, chat = await self.user_and_chat(message.person, message.place)
        said = await self.together.join(user, chat, message.clip.data, message.reply_to,
                                        message.replying_to)
        return said_reply(said) if said is not None else None

    async def sing_lyrics(self, message: Message) -> Reply:
        """Lyrics sung in the language of their words (the person's setting when the words
        do not tell: the engine decides, and the reply says which)."""
        return await self.start_job(message, JobKind.LYRICS, None, {
            "text": clean_lyrics(message.text), "form": check_form(message.form),
            "language": message.person.language, **band(message.style)})

    def help(self, place: Place) -> Reply:
        return help_reply(place)

    async def start_job(self, message: Message, kind: str, data: bytes | None,
                     parameters: dict[str, Any], key: str | None = None) -> Reply:
        place = message.place
        user, chat = await self.user_and_chat(message.person, place)
        parameters = {"style": user.preferred_style, "seed": self.new_seed(), **parameters}
        parameters.setdefault("title", new_title(kind, parameters))
        key = key or queries.idempotency_key(place.platform, place.chat_id, message.message_id)
        job, created = await self.jobs.submit(key=key, kind=kind, user=user, chat=chat,
                                              data=data, parameters=parameters,
                                              reply_to=message.reply_to, private=place.private)
        return Reply(WORKING[job.kind], job_id=job.id, job_kind=job.kind,
                     redelivered=not created)

    # Button presses.

    async def press(self, person: Person, place: Place, action: str, press_id: str,
                    reply_to: dict[str, Any], *, outage_s: float = OUTAGE_S) -> Reply:
        """The answer to a button press in a chat, a refusal said as handle() says it."""
        try:
            return await self.answer_press(person, place, action, press_id, reply_to,
                                           outage_s=outage_s)
        except (BotError, InvalidRequest) as refusal:
            return refusal_reply(refusal)

    async def answer_press(self, person: Person, place: Place, action: str, press_id: str,
                           reply_to: dict[str, Any], *, outage_s: float = OUTAGE_S) -> Reply:
        """The answer to a button press, raising a refusal as answer() does, and waiting out
        a database outage as it does."""
        return await outlast(
            lambda: self._press(person, place, action, press_id, reply_to),
            f"{place.platform} press {press_id}", outage_s=outage_s)

    async def _press(self, person: Person, place: Place, action: str, press_id: str,
                     reply_to: dict[str, Any]) -> Reply:
        verb, _, argument = action.partition(":")
        if verb == "together":  # the invitation's button: its starter closes it now
            return await self.together_in_chat(Message(person, place, f"press:{press_id}",
                                                command="together", text="done"))
        if verb == "forget":
            return await self.forget(person) if argument == "yes" else Reply(
                "All right, I keep everything as it is.")
        if verb == "style":
            return await self.style(person, argument)
        track_id = track_number(argument)
        if track_id is None:
            raise Mistake(NO_LONGER_VALID)
        if verb == "share":
            return await self.share(person, argument)
        if verb == "like":
            return await self.like(person, track_id)
        async with self.sessions() as session:
            row = await queries.track_with_job(session, track_id)
        if row is None:
            raise NotFound("I no longer have that song.")
        track, job = row
        if verb == "midi":
            if track.midi_blob is None:
                raise NotFound("That one has no MIDI file.")
            return Reply("Here is the MIDI file: open it in any music app.",
                         files=(self._file(track, "midi"),))
        if verb == "picture":
            picture = await self.track_part(track, "picture")
            if picture is None:
                raise NotFound("That one has no picture.")
            return Reply(PICTURE_SENT, files=(picture,))
        if verb not in MAKES_AGAIN or (verb in FORM_BUTTONS and job.kind not in SONG_KINDS):
            raise Mistake(NO_LONGER_VALID)
        if job.input_blob is not None and not await self.owns(person, track.id):
            raise NotAllowed("Only the person who sent that recording can do that with it.")
        message = Message(person, place, f"press:{press_id}", reply_to=reply_to)
        return await self._make_again(message, verb, track, job)

    async def _make_again(self, message: Message, verb: str, track: Track, job: Job) -> Reply:
        """A new job from a button on a track: another melody, the other form, the piano."""
        key = queries.idempotency_key(message.place.platform, message.place.chat_id,
                                      message.message_id)
        data = self.blobs.get(job.input_blob) if job.input_blob else None
        # What the job was asked, without how it was answered, what it made and what it
        # was named; and where the new one comes from.
        asked = {k: v for k, v in job.parameters.items()
                 if k not in ("sung", "title")}
        source = made_from(verb, track.id, job)
        if verb == "another":
            asked.pop("seed", None)
            return await self.start_job(message, job.kind, data, {**asked, **source}, key)
        if verb in FORM_BUTTONS:
            # The same voice or words, seed and band: the same melody, in the other form.
            return await self.start_job(message, job.kind, data,
                                        {**asked, **source, "form": verb}, key)
        if data is None:
            raise Mistake("There is no recording behind that one to play on the piano.")
        return await self.start_job(message, JobKind.PIANO, data,
                                    {"clip": asked.get("clip"), **source}, key)

    # Answers that need no job.

    async def history(self, person: Person) -> Reply:
        views = await self.history_view(person)
        if not views:
            return Reply("You have no songs yet: send me a voice note!")
        lines = ["Your latest songs:"]
        for view in views:
            about = ", ".join(part for part in (
                view.kind, view.key, f"{view.duration_s:.0f} s",
                view.created_at[:16].replace("T", " ") + " UTC",
                "shared" if view.shared else "") if part)
            lines.append(f"#{view.id}: {about}")
        lines.append("Share one with /share NUMBER.")
        return Reply("\n".join(lines))

    async def share(self, person: Person, argument: str) -> Reply:
        async with self.sessions() as session:
            user = await queries.user_for(session, person.platform, person.user_id)
            track_id = track_number(argument)
            if track_id is None and not argument.strip():
                latest = await queries.history(session, user, limit=1)
                track_id = latest[0].id if latest else None
                if track_id is None:
                    return Reply("You have no songs to share yet: send me a voice note first.")
            if track_id is None:
                return Reply("Tell me which song: /share NUMBER (see /history).")
            group_track = await queries.track_of_kind(session, track_id, JobKind.GROUP)
            if group_track is None:
                return await self._share_own(session, user, track_id)
        # A group song needs every voice's yes (each press counts one).
        return Reply(await self.together.say_yes(user, group_track))

    async def _share_own(self, session: AsyncSession, user: User, track_id: int) -> Reply:
        track = await queries.share(session, user, track_id)
        if track is None:
            return Reply("I can only share your own songs: see /history for their numbers.")
        if is_piano_version(track):
            track.shared, track.shared_at = False, None
            await session.commit()
            return Reply(PIANO_STAYS_OUT)
        user.album_consent = True
        await session.commit()
        return Reply(f"Song #{track_id} is in the pool for this week's community album. "
                     "Thank you!")

    async def like(self, person: Person, track_id: int) -> Reply:
        """A like from someone else in the chat: it counts when the weekly album is chosen."""
        if await self.owns(person, track_id):
            return Reply("That one is yours: the others here can like it.")
        async with self.sessions() as session:
            user = await queries.user_for(session, person.platform, person.user_id,
                                          person.display_name)
            likes = await queries.vote(session, user, track_id)
        if likes is None:
            return Reply("I no longer have that song.")
        return Reply(f"Liked! Song #{track_id} has {likes} like{'s' if likes != 1 else ''}: "
                     "liked songs that are shared make it into the weekly album sooner.")

    async def style(self, person: Person, name: str) -> Reply:
        async with self.sessions() as session:
            user = await queries.user_for(session, person.platform, person.user_id)
            name = name.strip().lower()
            if not name:
                return Reply(f"Your band plays {user.preferred_style}. Choose another:",
                             buttons=tuple(Button(s.capitalize(), f"style:{s}")
                                           for s in STYLES))
            if name not in STYLES:
                return Reply(f"I know these styles: {', '.join(STYLES)}.")
            user.preferred_style = name
            await session.commit()
        return Reply(f"Done: your songs will have a {name} band from now on.")

    async def name(self, person: Person, text: str) -> Reply:
        """/name NAME: the name the album credits a web person by (kept with their data, so
        /forget deletes it). Telegram and Discord credit the name the platform shows, so
        there it only says which name that is."""
        if person.platform != "web":
            shown = f" ({person.display_name})" if person.display_name else ""
            return Reply(f"The album credits you by your {person.platform.capitalize()} "
                         f"name{shown}.")
        name = clean_name(text)
        async with self.sessions() as session:
            user = await queries.user_for(session, person.platform, person.user_id, name)
        if not name:
            return Reply(f"The album credits your songs to {credit(user.display_name)}. Send "
                         "/name and a name to change it.")
        return Reply(f"Done: the album credits your songs to {name}.")

    async def display_name(self, person: Person) -> str:
        """The name the album credits this person by ("" when none is known)."""
        user = await self.user_of(person)
        return user.display_name if user is not None else ""

    async def forget(self, person: Person) -> Reply:
        async with self.sessions() as session:
            user = await queries.user_of(session, person.platform, person.user_id)
            if user is None:
                return Reply("I had nothing of yours to forget.")
            group_songs = await self.together.before_forget(user)
            deleted = await queries.forget(session, self.blobs, user)
        await self.together.after_forget(group_songs)
        return Reply(f"Done: I forgot you, your songs and your clips ({deleted} files "
                     "deleted).")

    async def album(self, place: Place, argument: str = "") -> Reply:
        """/album: the newest album; /album on|off: post every week's album in this chat."""
        choice = argument.strip().lower()
        if choice in ("on", "off"):
            subscribed = choice == "on"
            async with self.sessions() as session:
                chat = await queries.chat_for(session, place.platform, place.chat_id)
                chat.album_subscribed = subscribed
                await session.commit()
            return Reply("Every week's community album will be posted here." if subscribed
                         else "I will not post the weekly album here any more.")
        return await self.announce_album() or Reply(
            "There is no community album yet. Every week I make one from the songs people "
            "share: share yours with /share. (/album on posts each new one here.)")

    async def publish_album(self, person: Person, arguments: list[str]) -> Reply:
        """/album publish [YYYY-Www], for admins only: build the week's album now (the week
        that ended, by default) and post it to every subscribed chat, if it was not yet."""
        if not self.is_admin(person.platform, person.user_id):
            return Reply("Only SingSong's admins can publish an album.")
        if self.album_builder is None:
            return Reply("Albums cannot be made here.")
        week = arguments[0] if arguments else last_week(now())
        report = await self.album_builder(week)
        if report.get("album_id") is None:
            return Reply(f"There is no album for {week}: nobody shared a song that can go in.")
        posted = await self.post_album(week)
        made = "made" if report.get("created") else "already there"
        return Reply(f"The album of {week} is {made} ({len(report.get('tracks', []))} songs); "
                     f"posted to {posted} chats now.")

    async def subscribe(self, place: Place) -> None:
        """Post every week's album in this chat (a configured channel, for example)."""
        await self.album(place, "on")

    async def announce_album(self, week: str | None = None) -> Reply | None:
        """An album (the newest when no week is given) as a Reply: its tracklist with the
        chapter times and credits, the MP3 (or the OGG when there is no MP3) and the cover;
        None when there is none."""
        view = await self.album_view(week)
        if view is None:
            return None
        lines = [f"The SingSong community album of week {view.week}: {len(view.tracks)} "
                 f"songs people shared ({minutes(view.duration_s)})."]
        lines += [f"{t.position}. {minutes(t.start_s)} {t.title}" for t in view.tracks]
        files = [found for part in ("mp3", "cover")
                 if (found := await self.album_file(view.week, part)) is not None]
        voice = None if "mp3" in view.parts else await self.album_file(view.week, "audio")
        return Reply("\n".join(lines), voice=voice, files=tuple(files))

    async def post_album(self, week: str) -> int:
        """Post a week's album to every subscribed chat whose platform runs here, once (the
        album is marked posted first, so two processes never both post it). The number of
        chats it reached."""
        reply = await self.announce_album(week)
        if reply is None:
            return 0
        async with self.sessions() as session:
            if not await queries.claim_album_post(session, week):
                return 0
            chats = await queries.subscribed_chats(session)
        return await self.delivery.post_to_chats(chats, reply, f"the album of {week}")



def refusal_reply(refusal: BotError | InvalidRequest) -> Reply:
    """A refusal as a chat says it: one sentence (and, for a slow-down, how long to wait)."""
    return Reply(sentence(str(refusal)), retry_after_s=refusal.retry_after_s
                 if isinstance(refusal, SlowDown) else None)
