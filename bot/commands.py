"""What SingSong says and does, the same on every platform.

An adapter turns an incoming update into a Message and sends back the Reply that `handle`
returns. A request that needs the engine becomes a job: the first Reply only says it is
under way, and the finished song reaches the person later through the adapter's Outbox,
exactly once per job, also when the process restarted in between (see `on_job_finished`).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
import random
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Protocol

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.errors import SlowDown
from bot.inbox import Inbox
from bot.jobs import INTERNAL_ERROR, JobEngine
from bot.outages import OUTAGE_S, outlast
from bot.titles import ANONYMOUS_CREDIT, derived_title, new_title, origin
from bot.together import GROUP_KIND, Said, Together, credits
from bot.weeks import last_week
from engine.arrange import STYLES
from engine.audio import MAX_INPUT_BYTES
from engine.errors import InvalidRequest
from engine.form import DEFAULT_FORM, MAX_SONG_S, check_form
from engine.singer import clean_lyrics
from engine.theory import parse_key
from storage import queries
from storage.blobs import BlobStore
from storage.models import MAX_ID, Album, Chat, Job, ShareLink, Track, User, as_utc, now

log = logging.getLogger("singsong.commands")

SEED_LIMIT = 2**31
DELIVER_TIMEOUT_S = 120.0  # sending one reply (uploads included) takes at most this
UNSENT_FOR_S = 24 * 3600.0  # a reply a platform keeps refusing is tried again this long
REQUESTED_KINDS = ("sing", "lyrics", "melody", "piano")  # what a person asks a job for
SONG_KINDS = ("sing", "lyrics")  # the kinds that have a form and are sung in a language
FORM_BUTTONS = {"full": "Full song", "short": "Short version"}  # a song offers the other one
ALBUM_PARTS = {"audio": ("audio_blob", "ogg", "audio/ogg"),
               "mp3": ("mp3_blob", "mp3", "audio/mpeg"),
               "cover": ("cover_blob", "png", "image/png")}
PIANO_STAYS_OUT = ("Piano versions stay out of the community album: it is an album of songs. "
                   "Share the song itself with /share NUMBER (see /history).")
NAME_LIMIT = 64  # characters of a name for the credits
LINK_TOKEN_BYTES = 32  # a public song page's token: 256 random bits, 43 characters
LINK_PARTS = ("audio", "picture")  # what a public song page serves
TRACK_PARTS = {"audio": ("audio_blob", "ogg", "audio/ogg"),
               "midi": ("midi_blob", "mid", "audio/midi"),
               "picture": ("picture_blob", "png", "image/png")}

HELP = """Hi, I am SingSong. I turn your voice into a pop song.

Send me a voice note (a few words, spoken or sung) and I will write a new melody, put your \
voice on it and add a band.
/sing TEXT: I sing your words{private_hint}
/melody [key] [style]: a new melody (for example /melody A minor lofi)
/piano: reply with it to a voice note (or attach a clip) to hear it on the piano
/style [name]: your band: {styles}
/history: your last songs
/share [number]: put a song in this week's community album
/album: this week's community album
/together: in a group, a song everyone here sings (answer it with voice notes)
/name NAME: the name the album credits you by (on the web; elsewhere, your profile's)
/forget: delete everything I keep about you"""

WORKING = {
    "sing": "Got it! Writing a melody for your voice...",
    "lyrics": "Got it! Warming up my voice for your words...",
    "melody": "Composing a new melody...",
    "piano": "Listening for the notes...",
}
SOMETHING_WENT_WRONG = ("Sorry, something went wrong while making this one. Please send it "
                        "again in a moment.")
NOT_AUDIO = ("That file does not look like audio. Send a voice note, or an audio file "
             "(OGG, MP3, M4A, WAV, FLAC).")


# --- What crosses between the adapters and this module -------------------------------


@dataclass(frozen=True)
class Person:
    platform: str  # "telegram" | "discord" | "web"
    user_id: str
    display_name: str = ""
    # Their language setting as the platform gives it ("pt-br", "es-ES"), or None. Lyrics
    # are sung in the language of their text; this one when the text does not tell.
    language: str | None = None


@dataclass(frozen=True)
class Place:
    platform: str
    chat_id: str
    private: bool = True  # a private chat or DM: plain text there means "sing these lyrics"


@dataclass(frozen=True)
class Clip:
    """An audio file the person sent, downloaded by the adapter."""

    data: bytes
    filename: str = "voice.ogg"


@dataclass(frozen=True)
class Message:
    person: Person
    place: Place
    message_id: str  # unique per incoming message or interaction: the idempotency key
    command: str | None = None  # "sing", "melody", ... or None for a plain message
    text: str = ""  # the command's argument, or the plain message's text
    clip: Clip | None = None
    reply_to: dict[str, Any] = field(default_factory=dict)  # the adapter's, kept with the job
    form: str = DEFAULT_FORM  # of a song: "full" (verse, chorus twice) or "short" (one pass)
    style: str = ""  # of a song: the band for this one ("" for the person's /style)
    replying_to: str | None = None  # the id of the message this one answers, if any


@dataclass(frozen=True)
class Button:
    label: str
    action: str  # "another:12", "short:12", "full:12", "piano:12", "midi:12", "share:12",
    # "like:12", "forget:yes", "style:lofi"


@dataclass(frozen=True)
class FileOut:
    data: bytes
    filename: str
    mime: str


@dataclass(frozen=True)
class Reply:
    text: str
    voice: FileOut | None = None  # the song as OGG/Opus: a voice note where there are such
    files: tuple[FileOut, ...] = ()
    buttons: tuple[Button, ...] = ()
    job_id: int | None = None  # a job was started: its real answer comes through deliver()
    job_kind: str | None = None
    retry_after_s: int | None = None  # set when the answer is "too many requests, wait"
    # The message was seen before and its job exists: the chat doors say nothing new (the
    # web, asked again, shows the job).
    redelivered: bool = False
    # A group song's invitation: the door tells Commands.together.invited which message it
    # became, so that answers to it join.
    gathering_id: int | None = None


@dataclass(frozen=True)
class Target:
    chat_id: str
    reply_to: dict[str, Any]


class Outbox(Protocol):
    async def deliver(self, target: Target, reply: Reply) -> None: ...


@dataclass(frozen=True)
class TrackView:
    id: int
    kind: str
    created_at: str
    duration_s: float
    key: str | None
    tempo_bpm: float | None
    shared: bool
    parts: tuple[str, ...]
    form: str | None = None  # of a song: "full" or "short"; None for a melody or piano
    sections: tuple[dict[str, Any], ...] = ()  # {"name": "verse", "start_s": 2.1}, in order
    language: dict[str, str] | None = None  # lyrics: {"code", "name", "chosen_by"}
    about: str = ""  # the song's parts and language, as its reply says them
    title: str = ""  # its name: the first line of its lyrics, or two words from its seed
    style: str | None = None  # the band ("pop", "lofi", ...); None for a piano version
    lyrics: str | None = None  # a song of lyrics: the words it sings
    origin: str = ""  # where it came from: "Another melody for “Velvet Harbour”, from ..."
    link: str | None = None  # the token of its public page, when its maker made one
    link_credit: str | None = None  # the name that page credits ("" for none)


@dataclass(frozen=True)
class SharedSongView:
    """A song as its public page shows it: to anyone with the link."""

    token: str
    track: TrackView
    credit: str  # who made it, as its maker chose ("a SingSong singer" for no name)


@dataclass(frozen=True)
class AlbumEntryView:
    position: int
    title: str
    credit: str  # the display name of the person who shared it
    start_s: float  # its chapter in the album file
    end_s: float
    key: str | None


@dataclass(frozen=True)
class AlbumView:
    id: int
    week: str
    duration_s: float
    parts: tuple[str, ...]  # which files exist: "audio", "mp3", "cover"
    tracks: tuple[AlbumEntryView, ...]


@dataclass(frozen=True)
class JobView:
    id: int
    kind: str
    status: str
    error: str | None
    ahead: int
    track: TrackView | None


# --- The commands ------------------------------------------------------------------------


class Commands:
    MAX_CLIP_BYTES = MAX_INPUT_BYTES

    def __init__(self, sessions: async_sessionmaker[AsyncSession], blobs: BlobStore,
                 jobs: JobEngine, *, seeds: Callable[[], int] | None = None,
                 admin_ids: frozenset[str] = frozenset(),
                 album_builder: Callable[[str], Awaitable[dict[str, Any]]] | None = None
                 ) -> None:
        self.sessions, self.blobs, self.jobs = sessions, blobs, jobs
        self._seeds = seeds or (lambda: random.SystemRandom().randrange(SEED_LIMIT))
        self.admin_ids = admin_ids  # "platform:user_id" of the people who may publish albums
        self.album_builder = album_builder  # builds a week's album (bot.scheduler)
        self.inbox = Inbox(sessions)
        self.together = Together(sessions, blobs, jobs, self._post, self.new_seed)
        self._outboxes: dict[str, Outbox] = {}
        self._answered: dict[int, asyncio.Event] = {}

    def attach(self, platform: str, outbox: Outbox) -> None:
        self._outboxes[platform] = outbox

    def new_seed(self) -> int:
        return int(self._seeds()) % SEED_LIMIT

    # Incoming messages.

    async def handle(self, message: Message, *, outage_s: float = OUTAGE_S) -> Reply:
        """The answer to a message. A database that is away is waited out (up to outage_s;
        then its error is raised): handling a message again is safe, since its job has the
        message's key."""
        return await outlast(lambda: self._handle(message),
                             f"{message.place.platform} message {message.message_id}",
                             outage_s=outage_s)

    async def _handle(self, message: Message) -> Reply:
        command = (message.command or "").lower()
        try:
            if command in ("help", "start"):
                return self.help(message.place)
            if command == "together":
                return await self._together(message)
            if (not command and message.clip is not None and not message.place.private
                    and (joined := await self._join_group(message)) is not None):
                return joined
            if command == "sing" or (not command and message.clip is not None):
                if message.clip is not None:
                    return await self._start(message, "sing", message.clip.data, {
                        "form": check_form(message.form), "clip": message.clip.filename,
                        **_band(message.style)})
                if not message.text.strip():
                    return Reply("Send /sing followed by a few words, or a voice note.")
                return await self._sing_lyrics(message)
            if not command:
                if message.place.private and message.text.strip():
                    return await self._sing_lyrics(message)
                return self.help(message.place)
            if command == "melody":
                return await self._start(message, "melody", None,
                                         melody_options(message.text))
            if command == "piano":
                if message.clip is None:
                    return Reply("Send /piano as a reply to a voice note, or with an audio "
                                 "clip attached, and I will play it on the piano.")
                return await self._start(message, "piano", message.clip.data,
                                         {"clip": message.clip.filename})
            if command == "history":
                return await self.history(message.person)
            if command == "share":
                return await self.share(message.person, message.text)
            if command == "album":
                if message.text.split()[:1] == ["publish"]:
                    return await self.publish_album(message.person, message.text.split()[1:])
                return await self.album(message.place, message.text)
            if command == "style":
                return await self.style(message.person, message.text)
            if command == "name":
                return await self.name(message.person, message.text)
            if command == "forget":
                return Reply("This deletes every song, clip and setting of yours that I keep. "
                             "Are you sure?",
                             buttons=(Button("Yes, forget me", "forget:yes"),
                                      Button("No, keep them", "forget:no")))
        except InvalidRequest as mistake:
            return Reply(_sentence(str(mistake)))
        return Reply(f"I do not know /{command}. " + "Send /help to see what I can do.")

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

    async def _together(self, message: Message) -> Reply:
        """/together opens a group song in this chat; /together done closes it."""
        user, chat = await self.user_and_chat(message.person, message.place)
        if message.text.strip().lower() == "done":
            said = await self.together.done(user, chat)
        else:
            said = await self.together.open(user, chat, message.reply_to)
        return _said(said)

    async def _join_group(self, message: Message) -> Reply | None:
        """A voice note that joins the group song gathering in its chat (None: it does not)."""
        assert message.clip is not None
        user, chat = await self.user_and_chat(message.person, message.place)
        said = await self.together.join(user, chat, message.clip.data, message.reply_to,
                                        message.replying_to)
        return _said(said) if said is not None else None

    async def _post(self, platform: str, chat_id: str, reply_to: dict[str, Any],
                    text: str) -> None:
        """A sentence in a chat, where its platform runs here (a group song closing)."""
        outbox = self._outboxes.get(platform)
        if outbox is None:
            return
        try:
            await outbox.deliver(Target(chat_id, reply_to), Reply(text))
        except Exception:
            log.exception("telling %s chat %s failed", platform, chat_id)

    async def _sing_lyrics(self, message: Message) -> Reply:
        """Lyrics sung in the language of their words (the person's setting when the words
        do not tell: the engine decides, and the reply says which)."""
        return await self._start(message, "lyrics", None, {
            "text": clean_lyrics(message.text), "form": check_form(message.form),
            "language": message.person.language, **_band(message.style)})

    def help(self, place: Place) -> Reply:
        hint = "\nOr just type your lyrics here." if place.private else ""
        return Reply(HELP.format(private_hint=hint, styles=", ".join(STYLES)))

    def too_large(self, size_bytes: int, limit_bytes: int) -> Reply:
        size_mb = math.ceil(size_bytes / 2**20 * 10) / 10  # never "20.0 MB, at most 20 MB"
        return Reply(f"That file is {size_mb:.1f} MB and I can take at most "
                     f"{limit_bytes / 2**20:g} MB. Send a shorter voice note (a minute at most "
                     "is plenty).")

    async def _start(self, message: Message, kind: str, data: bytes | None,
                     parameters: dict[str, Any], key: str | None = None) -> Reply:
        place = message.place
        user, chat = await self.user_and_chat(message.person, place)
        parameters = {"style": user.preferred_style, "seed": self.new_seed(), **parameters,
                      "reply_to": message.reply_to, "private": place.private}
        parameters.setdefault("title", new_title(kind, parameters))
        key = key or queries.idempotency_key(place.platform, place.chat_id, message.message_id)
        try:
            job, created = await self.jobs.submit(key=key, kind=kind, user=user, chat=chat,
                                                  data=data, parameters=parameters)
        except SlowDown as busy:
            return Reply(_sentence(str(busy)), retry_after_s=busy.retry_after_s)
        return Reply(WORKING[job.kind], job_id=job.id, job_kind=job.kind,
                     redelivered=not created)

    # Button presses.

    async def press(self, person: Person, place: Place, action: str, press_id: str,
                    reply_to: dict[str, Any], *, outage_s: float = OUTAGE_S) -> Reply:
        """The answer to a button press, waiting out a database outage as handle() does."""
        return await outlast(
            lambda: self._press(person, place, action, press_id, reply_to),
            f"{place.platform} press {press_id}", outage_s=outage_s)

    async def _press(self, person: Person, place: Place, action: str, press_id: str,
                     reply_to: dict[str, Any]) -> Reply:
        verb, _, argument = action.partition(":")
        if verb == "together":  # the invitation's button: its starter closes it now
            return await self._together(Message(person, place, f"press:{press_id}",
                                                command="together", text="done"))
        if verb == "forget":
            return await self.forget(person) if argument == "yes" else Reply(
                "All right, I keep everything as it is.")
        if verb == "style":
            return await self.style(person, argument)
        track_id = _track_id(argument)
        if track_id is None:
            return Reply("That button is no longer valid.")
        if verb == "share":
            return await self.share(person, argument)
        if verb == "like":
            return await self.like(person, track_id)
        async with self.sessions() as session:
            found = await session.execute(select(Track, Job).join(Job, Track.job_id == Job.id)
                                          .where(Track.id == track_id))
            row = found.first()
        if row is None:
            return Reply("I no longer have that song.")
        track, job = row
        if verb == "midi":
            if track.midi_blob is None:
                return Reply("That one has no MIDI file.")
            return Reply("Here is the MIDI file: open it in any music app.",
                         files=(self._file(track, "midi"),))
        if job.input_blob is not None and not await self.owns(person, track.id):
            return Reply("Only the person who sent that recording can do that with it.")
        message = Message(person, place, f"press:{press_id}", reply_to=reply_to)
        key = queries.idempotency_key(place.platform, place.chat_id, f"press:{press_id}")
        data = self.blobs.get(job.input_blob) if job.input_blob else None
        # What the job was asked, without how it was answered, what it made and what it
        # was named; and where the new one comes from.
        asked = {k: v for k, v in job.parameters.items()
                 if k not in ("reply_to", "sung", "title")}
        source = made_from(verb, track.id, job)
        if verb == "another":
            asked.pop("seed", None)
            return await self._start(message, job.kind, data, {**asked, **source}, key)
        if verb in FORM_BUTTONS:
            if job.kind not in SONG_KINDS:
                return Reply("That button is no longer valid.")
            # The same voice or words, seed and band: the same melody, in the other form.
            return await self._start(message, job.kind, data,
                                     {**asked, **source, "form": verb}, key)
        if verb == "piano":
            if data is None:
                return Reply("There is no recording behind that one to play on the piano.")
            return await self._start(message, "piano", data,
                                     {"clip": asked.get("clip"), **source}, key)
        return Reply("That button is no longer valid.")

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
            track_id = _track_id(argument)
            if track_id is None and not argument.strip():
                latest = await queries.history(session, user, limit=1)
                track_id = latest[0].id if latest else None
                if track_id is None:
                    return Reply("You have no songs to share yet: send me a voice note first.")
            if track_id is None:
                return Reply("Tell me which song: /share NUMBER (see /history).")
            group_track = await queries.track_of_kind(session, track_id, GROUP_KIND)
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
        if f"{person.platform}:{person.user_id}" not in self.admin_ids:
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

    async def album_view(self, week: str | None = None) -> AlbumView | None:
        """An album (the newest when no week is given) with its tracklist."""
        async with self.sessions() as session:
            query = select(Album).where(Album.audio_blob.is_not(None))
            query = (query.where(Album.week == week) if week
                     else query.order_by(Album.week.desc()).limit(1))
            album = (await session.execute(query)).scalar_one_or_none()
            if album is None:
                return None
            entries = await queries.album_tracklist(session, album)
            voices = await queries.group_voice_names(session, [e.track_id for e in entries])
        parts = tuple(part for part, column in (("audio", album.audio_blob),
                                                ("mp3", album.mp3_blob),
                                                ("cover", album.cover_blob)) if column)
        # A group song is credited to every voice in it.
        names = {e.track_id: credits(voices[e.track_id]) if e.track_id in voices
                 else e.display_name for e in entries}
        return AlbumView(album.id, album.week, album.duration_s or 0.0, parts, tuple(
            AlbumEntryView(e.position, song_title(e.track_id, names[e.track_id]),
                           credit(names[e.track_id]), e.start_s, e.end_s, e.key)
            for e in entries))

    async def album_file(self, week: str, part: str) -> FileOut | None:
        """One file of a week's album: "audio" (OGG/Opus), "mp3" or "cover" (PNG)."""
        if part not in ALBUM_PARTS:
            return None
        column, extension, mime = ALBUM_PARTS[part]
        async with self.sessions() as session:
            album = await queries.album_of_week(session, week)
        name = getattr(album, column) if album is not None else None
        if name is None:
            return None
        return FileOut(self.blobs.get(name), f"singsong-album-{week}.{extension}", mime)

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
            claimed = await session.execute(update(Album).where(
                Album.week == week, Album.posted_at.is_(None)).values(posted_at=now()))
            await session.commit()
            if not claimed.rowcount:  # type: ignore[attr-defined]
                return 0
            chats = await queries.subscribed_chats(session)
        reached = 0
        for chat in chats:
            outbox = self._outboxes.get(chat.platform)
            if outbox is None:
                continue
            try:
                await outbox.deliver(Target(chat.platform_chat_id, {}), reply)
                reached += 1
            except Exception:
                log.exception("posting the album of %s to %s chat %d failed", week,
                              chat.platform, chat.id)
        return reached

    # Views for the web page.

    async def job_view(self, person: Person, job_id: int) -> JobView | None:
        async with self.sessions() as session:
            found = await session.execute(
                select(Job).join(User, Job.user_id == User.id)
                .where(Job.id == job_id, User.platform == person.platform,
                       User.platform_user_id == person.user_id))
            job = found.scalar_one_or_none()
            if job is None:
                return None
            ahead = 0
            if job.status == "queued":
                ahead = (await session.execute(select(func.count()).select_from(Job).where(
                    Job.status == "queued", Job.id < job.id))).scalar_one()
            track = (await session.execute(select(Track).where(Track.job_id == job.id))
                     ).scalar_one_or_none()
            links = await queries.share_links_of(session, [track.id]) if track else {}
            return JobView(job.id, job.kind, job.status, _error_for_person(job), ahead,
                           _track_view(track, job, links.get(track.id)) if track else None)

    async def history_view(self, person: Person) -> list[TrackView]:
        async with self.sessions() as session:
            user = await queries.user_of(session, person.platform, person.user_id)
            if user is None:
                return []
            tracks = await queries.history(session, user)
            rows = await session.execute(select(Job).where(
                Job.id.in_([t.job_id for t in tracks])))
            jobs = {job.id: job for job in rows.scalars()}
            links = await queries.share_links_of(session, [t.id for t in tracks])
        return [_track_view(t, jobs[t.job_id], links.get(t.id)) for t in tracks]

    async def track_view(self, person: Person, track_id: int) -> TrackView | None:
        """One of the person's songs; None when it is not theirs."""
        async with self.sessions() as session:
            found = await session.execute(
                select(Track, Job).join(Job, Track.job_id == Job.id)
                .join(User, Track.user_id == User.id)
                .where(Track.id == track_id, User.platform == person.platform,
                       User.platform_user_id == person.user_id))
            row = found.first()
            if row is None:
                return None
            links = await queries.share_links_of(session, [track_id])
        return _track_view(row[0], row[1], links.get(track_id))

    # A song's public page: made when its maker asks, gone when revoked or forgotten.

    async def make_link(self, person: Person, track_id: int, *, named: bool
                        ) -> TrackView | None:
        """Make (or keep) the public page of one of the person's songs, crediting them by
        their name (`named`, when they gave one) or as ANONYMOUS_CREDIT; the song as it
        is now, or None when it is not theirs."""
        async with self.sessions() as session:
            user = await queries.user_for(session, person.platform, person.user_id)
            made = await queries.make_share_link(session, user, track_id,
                                                 secrets.token_urlsafe(LINK_TOKEN_BYTES),
                                                 user.display_name if named else "")
        return None if made is None else await self.track_view(person, track_id)

    async def revoke_link(self, person: Person, track_id: int) -> bool:
        """Delete the public page of one of the person's songs; whether it had one."""
        async with self.sessions() as session:
            user = await queries.user_for(session, person.platform, person.user_id)
            return await queries.revoke_share_link(session, user, track_id)

    async def group_song_file(self, token: str) -> FileOut | None:
        """The audio of the group song a join link names, once it is made."""
        view = await self.together.view(None, token)
        if view is None or view.song_track_id is None:
            return None
        async with self.sessions() as session:
            track = await session.get(Track, view.song_track_id)
        return self._file(track, "audio") if track is not None else None

    async def shared_song(self, token: str) -> SharedSongView | None:
        """The song a public link names; None when there is no such link (any more)."""
        async with self.sessions() as session:
            found = await queries.shared_by_link(session, token)
        if found is None:
            return None
        link, track, job = found
        return SharedSongView(token, _track_view(track, job, link), credit(link.credit))

    async def shared_file(self, token: str, part: str) -> FileOut | None:
        """A file of the song a public link names (audio or picture)."""
        async with self.sessions() as session:
            found = await queries.shared_by_link(session, token)
        if found is None or part not in LINK_PARTS or not getattr(
                found[1], TRACK_PARTS[part][0]):
            return None
        return self._file(found[1], part)

    async def track_file(self, person: Person | None, track_id: int,
                         part: str) -> FileOut | None:
        """One file of a track: the person's own, or any shared one."""
        if part not in TRACK_PARTS:
            return None
        async with self.sessions() as session:
            found = await session.execute(select(Track, User).join(User,
                                                                   Track.user_id == User.id)
                                          .where(Track.id == track_id))
            row = found.first()
        if row is None:
            return None
        track, owner = row
        mine = person is not None and (owner.platform, owner.platform_user_id) == (
            person.platform, person.user_id)
        if not (mine or track.shared) or getattr(track, TRACK_PARTS[part][0]) is None:
            return None
        return self._file(track, part)

    async def owns(self, person: Person, track_id: int) -> bool:
        """Whether the track is this person's."""
        async with self.sessions() as session:
            found = await session.execute(select(User.platform, User.platform_user_id)
                                          .join(Track, Track.user_id == User.id)
                                          .where(Track.id == track_id))
            owner = found.first()
        return owner is not None and tuple(owner) == (person.platform, person.user_id)

    def _file(self, track: Track, part: str) -> FileOut:
        column, extension, mime = TRACK_PARTS[part]
        return FileOut(self.blobs.get(getattr(track, column)),
                       f"singsong-{track.id}.{extension}", mime)

    # Finished jobs.

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
            found = await session.execute(select(Job.id).where(
                Job.status.in_(("done", "failed")), Job.replied.is_(False),
                Job.finished_at >= since).order_by(Job.id))
            owed = list(found.scalars())
        for job_id in owed:
            await self.on_job_finished(job_id, "")
        return len(owed)

    async def answered(self, job_id: int) -> None:
        """Returns once the job's reply has been sent (or the job has no one to answer)."""
        event = self._answered.setdefault(job_id, asyncio.Event())
        async with self.sessions() as session:
            replied = (await session.execute(select(Job.replied).where(Job.id == job_id))
                       ).scalar_one_or_none()
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
                await outbox.deliver(Target(chat.platform_chat_id,
                                            dict(job.parameters.get("reply_to") or {})), reply)
        except Exception:
            # Not sent: give the reply back, for deliver_unsent (every minute, and at start).
            await outlast(lambda: self._set_replied(job_id, False), what)
            raise
        else:
            # How to reply (a Discord interaction token is a credential) is kept no longer
            # than needed.
            parameters = {k: v for k, v in job.parameters.items() if k != "reply_to"}
            await outlast(lambda: self._set_replied(job_id, True, parameters), what)
        finally:
            event = self._answered.pop(job_id, None)
            if event is not None:
                event.set()

    async def _claim_reply(self, job_id: int) -> tuple[Job, Chat, Outbox] | None:
        """The finished job, its chat and its platform's outbox, when this process sends its
        reply (claimed here: nobody else will); None when there is nothing to send here."""
        async with self.sessions() as session:
            found = await session.execute(select(Job, Chat).outerjoin(Chat,
                                                                      Job.chat_id == Chat.id)
                                          .where(Job.id == job_id))
            row = found.first()
            if row is None or row[0].status not in ("done", "failed"):
                return None
            job, chat = row
            outbox = self._outboxes.get(chat.platform) if chat is not None else None
            if chat is None or outbox is None:
                return None  # its platform is not running here; a later start delivers it
            if not await queries.claim_reply(session, job.id):
                return None
            return job, chat, outbox

    async def _reply_of(self, job: Job) -> Reply:
        async with self.sessions() as session:  # read only by whoever sends it
            return await self._finished_reply(session, job)

    async def _set_replied(self, job_id: int, replied: bool,
                           parameters: dict[str, Any] | None = None) -> None:
        values: dict[str, Any] = {"replied": replied}
        if parameters is not None:
            values["parameters"] = parameters
        async with self.sessions() as session:
            await queries.set_job(session, job_id, **values)

    async def _finished_reply(self, session: AsyncSession, job: Job) -> Reply:
        if job.status == "failed":
            return Reply(_error_for_person(job) or SOMETHING_WENT_WRONG)
        track = (await session.execute(select(Track).where(Track.job_id == job.id))
                 ).scalar_one()
        if job.kind == GROUP_KIND:
            return group_reply(job, track, self._file(track, "audio"),
                               self._file(track, "midi") if track.midi_blob else None)
        return finished_reply(job.kind, track, self._file(track, "audio"),
                              self._file(track, "midi") if track.midi_blob else None,
                              self._file(track, "picture") if track.picture_blob else None,
                              in_a_group=job.parameters.get("private") is False,
                              sung=SungAs.of(job))


@dataclass(frozen=True)
class SungAs:
    """How a song came out: its form, its sections and, for lyrics, the language it was sung
    in (the engine's summary, kept with the job as parameters["sung"])."""

    form: str
    sections: tuple[dict[str, Any], ...] = ()
    language: dict[str, str] | None = None
    sung_s: float | None = None  # a very long note: how much of it the song sings

    @classmethod
    def of(cls, job: Job) -> SungAs | None:
        """None for a melody or a piano job."""
        if job.kind not in SONG_KINDS:
            return None
        sung = job.parameters.get("sung") or {}
        return cls(str(sung.get("form") or job.parameters.get("form") or DEFAULT_FORM),
                   tuple(sung.get("sections") or ()), sung.get("language"), sung.get("sung_s"))

    def about(self) -> str:
        """'Verse, chorus x2. Sung in Spanish.': what a reply says of the song, briefly."""
        said = []
        if self.form == "full" and (parts := sung_parts(self.sections)):
            said.append(parts + ".")
        if self.language:
            name = self.language.get("name") or self.language.get("code") or ""
            mine = " (your language setting)" if self.language.get(
                "chosen_by") == "setting" else ""
            said.append(f"Sung in {name}{mine}.")
        if self.sung_s is not None:
            said.append(f"A song stays under {MAX_SONG_S:.0f} s: it sings your first "
                        f"{self.sung_s:.0f} s.")
        return " ".join(said)


def sung_parts(sections: tuple[dict[str, Any], ...]) -> str:
    """The sung sections in order, repeats counted: 'Verse, chorus x2' (the band's intro and
    ending go without saying)."""
    names = [str(s.get("name", "")) for s in sections
             if s.get("name") not in ("intro", "ending", None)]
    runs = [(name, len(list(run))) for name, run in itertools.groupby(names)]
    return _capitalised(", ".join(name if count == 1 else f"{name} x{count}"
                                  for name, count in runs))


def finished_reply(kind: str, track: Track, audio: FileOut, midi: FileOut | None,
                   picture: FileOut | None, *, in_a_group: bool = False,
                   sung: SungAs | None = None) -> Reply:
    """What a person gets for a finished job, with the buttons that fit it (a song offers its
    other form; in a group chat, a Like button for the others there)."""
    about = track_about(track)
    share = Button("Share to album", f"share:{track.id}")
    another = Button("Another melody", f"another:{track.id}")
    like = (Button("Like", f"like:{track.id}"),) if in_a_group else ()
    if kind == "melody":
        return Reply(f"A new melody ({about}): the audio, the MIDI file and its piano roll.",
                     voice=audio, files=tuple(f for f in (midi, picture) if f),
                     buttons=(another, share, *like))
    if kind == "piano":
        return Reply(f"Your clip on the piano ({about}), with the notes as MIDI.",
                     voice=audio, files=tuple(f for f in (midi,) if f))
    buttons = [another]
    if sung is not None:
        other = next(form for form in FORM_BUTTONS if form != sung.form)
        buttons.append(Button(FORM_BUTTONS[other], f"{other}:{track.id}"))
    if kind == "sing":
        buttons.append(Button("Piano version", f"piano:{track.id}"))
    if midi is not None:
        buttons.append(Button("MIDI file", f"midi:{track.id}"))
    buttons += [share, *like]
    text = f"Here is your song #{track.id} ({about})."
    if sung is not None and (said := sung.about()):
        text += "\n" + said
    return Reply(text, voice=audio, buttons=tuple(buttons))


def group_reply(job: Job, track: Track, audio: FileOut, midi: FileOut | None) -> Reply:
    """A group song, crediting every voice (and saying whose note was left out, and why);
    its Share button asks each voice's yes."""
    about = track_about(track)
    voices = (job.parameters.get("sung") or {}).get("voices") or [
        {"name": voice["name"], "sung": True} for voice in job.parameters.get("voices", [])]
    sung = [voice["name"] for voice in voices if voice.get("sung")]
    lines = [f"Your group song #{track.id} ({about}), sung by {credits(sung)}."]
    lines += [f"{_capitalised(credit(voice['name']))}'s note was left out: "
              f"{_sentence(str(voice.get('reason') or 'it could not be sung')).lower()}"
              for voice in voices if not voice.get("sung")]
    buttons = [Button("Share to album", f"share:{track.id}")]
    if midi is not None:
        buttons.insert(0, Button("MIDI file", f"midi:{track.id}"))
    return Reply("\n".join(lines), voice=audio, buttons=tuple(buttons))


def _said(said: Said) -> Reply:
    """What the together module said, as a Reply: an invitation carries the button that
    closes it."""
    buttons = (Button("Close now and make the song", "together:done"),) if (
        said.gathering_id is not None) else ()
    return Reply(said.text, buttons=buttons, gathering_id=said.gathering_id,
                 job_id=said.job_id, job_kind=GROUP_KIND if said.job_id is not None else None)


def melody_options(text: str) -> dict[str, Any]:
    """'/melody A minor lofi' -> {"key": "A minor", "style": "lofi"}; raises InvalidRequest."""
    words = text.split()
    options: dict[str, Any] = {}
    if words and words[-1].lower() in STYLES:
        options["style"] = words.pop().lower()
    if words:
        options["key"] = parse_key(" ".join(words)).name
    return options


def _error_for_person(job: Job) -> str | None:
    if job.status != "failed":
        return None
    if not job.error or job.error.startswith(INTERNAL_ERROR):
        return SOMETHING_WENT_WRONG
    return _sentence(job.error)


def _track_view(track: Track, job: Job, link: ShareLink | None = None) -> TrackView:
    parts = tuple(part for part, (column, _, _) in TRACK_PARTS.items()
                  if getattr(track, column))
    created = as_utc(track.created_at)
    sung = SungAs.of(job)
    return TrackView(track.id, job.kind, created.isoformat(), round(track.duration_s, 2),
                     track.key, track.tempo_bpm, track.shared, parts,
                     form=sung.form if sung else None,
                     sections=sung.sections if sung else (),
                     language=sung.language if sung else None,
                     about=sung.about() if sung else "",
                     title=title_of(job),
                     style=job.parameters.get("style") if job.kind != "piano" else None,
                     lyrics=job.parameters.get("text") if job.kind == "lyrics" else None,
                     origin=origin(job.parameters),
                     link=link.token if link else None,
                     link_credit=link.credit if link else None)


def title_of(job: Job) -> str:
    """The name of what a job made (a job from before names were kept gets one now)."""
    return str(job.parameters.get("title") or new_title(job.kind, job.parameters))


def made_from(verb: str, track_id: int, job: Job) -> dict[str, Any]:
    """What a job made by a button on a track keeps of it: which button, which track and
    its name; and its own name, when it is not a new song (the other form, the piano)."""
    source_title = title_of(job)
    made = {"made_by": verb, "from_track": track_id, "from_title": source_title}
    title = derived_title(verb, source_title)
    return {**made, "title": title} if title else made


def _band(style: str) -> dict[str, str]:
    """{"style": name} for a band asked for with one song; {} for the person's own."""
    name = style.strip().lower()
    if not name:
        return {}
    if name not in STYLES:
        raise InvalidRequest(f"I know these styles: {', '.join(STYLES)}")
    return {"style": name}


def song_title(track_id: int, display_name: str) -> str:
    """How a shared song is named in an album: its number and who made it."""
    return f"Song #{track_id} by {credit(display_name)}"


def is_piano_version(track: Track) -> bool:
    """Whether a track is a clip played on the piano: the only kind without a key (songs and
    melodies are composed in one). Piano versions stay out of the album (see
    bot/README.md)."""
    return track.key is None


def credit(display_name: str) -> str:
    """Who an album credits for a song: the person's name, or ANONYMOUS_CREDIT."""
    return display_name or ANONYMOUS_CREDIT


def clean_name(text: str) -> str:
    """A name as the album prints it: printable characters, single spaces, at most
    NAME_LIMIT characters."""
    printable = "".join(ch if ch.isprintable() else " " for ch in text)
    return " ".join(printable.split())[:NAME_LIMIT].strip()


def track_about(track: Track) -> str:
    """'A minor, 96 BPM, 24 s': a song's key, tempo and length, as replies say them."""
    return ", ".join(part for part in (
        track.key, f"{track.tempo_bpm:.0f} BPM" if track.tempo_bpm else None,
        f"{track.duration_s:.0f} s") if part)


def minutes(seconds: float) -> str:
    """'1:05' for 65 s."""
    whole = round(seconds)
    return f"{whole // 60}:{whole % 60:02d}"


def _capitalised(text: str) -> str:
    return text[:1].upper() + text[1:]


def _track_id(text: str) -> int | None:
    """'#12' or '12' -> 12; None for anything that cannot be a row id (the databases' ids
    are 32-bit: a bigger number is no song, not an error)."""
    text = text.strip().lstrip("#")
    if not (text.isascii() and text.isdigit() and len(text) < 12):
        return None
    number = int(text)
    return number if 0 < number <= MAX_ID else None


def _sentence(text: str) -> str:
    """An engine message ('the clip is ...') as a sentence for a chat."""
    text = text.strip()
    if not text:
        return text
    text = text[0].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."
