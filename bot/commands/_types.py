"""The types the doors share: what comes in from a platform (Person, Place, Message), what
goes back (Reply, Button, FileOut, Target, Outbox), and the views the web page reads."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from engine.form import DEFAULT_FORM


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
    action: str  # "another:12", "short:12", "full:12", "piano:12", "midi:12", "picture:12",
    # "share:12", "like:12", "forget:yes", "style:lofi"


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
