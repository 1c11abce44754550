"""The tables. Every change to them is an Alembic migration in migrations/versions/."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.ext.asyncio import AsyncAttrs
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

MAX_ID = 2**31 - 1  # every id is an integer column: PostgreSQL's 32-bit integer


class JobKind(StrEnum):
    """What a job makes. A person asks for the first four (REQUESTED); a group song is made
    when a gathering closes."""

    SING = "sing"  # a voice note made a song
    LYRICS = "lyrics"  # typed words sung by SingSong's own voice
    MELODY = "melody"  # a fresh melody with its band
    PIANO = "piano"  # a sung or hummed clip played on piano
    GROUP = "group"  # a song from several people's voices (the others are asked for by
    # commands: bot.commands.REQUESTED_KINDS)


class JobStatus(StrEnum):
    """Where a job stands (Job.status). Stored as its value, so a row reads back as a plain
    string that compares equal to the member."""

    QUEUED = "queued"  # waiting for a worker
    RUNNING = "running"  # a worker claimed it (its lease: Job.heartbeat_at)
    DONE = "done"  # its track is stored
    FAILED = "failed"  # it ended without a track (Job.error says why)

    @classmethod
    def unfinished(cls) -> tuple[JobStatus, ...]:
        return (cls.QUEUED, cls.RUNNING)

    @classmethod
    def finished(cls) -> tuple[JobStatus, ...]:
        return (cls.DONE, cls.FAILED)


def now() -> datetime:
    return datetime.now(UTC)


def as_utc(moment: datetime) -> datetime:
    """A stored moment with its zone: SQLite gives back naive datetimes, and every moment
    SingSong stores is UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


class Base(AsyncAttrs, DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class User(Base):
    """A person on one platform."""

    __tablename__ = "users"
    __table_args__ = (UniqueConstraint("platform", "platform_user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    platform: Mapped[str] = mapped_column(String(16))
    platform_user_id: Mapped[str] = mapped_column(String(64))
    display_name: Mapped[str] = mapped_column(String(128), default="")
    album_consent: Mapped[bool] = mapped_column(Boolean, default=False)
    preferred_style: Mapped[str] = mapped_column(String(16), default="pop")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now)


class Chat(Base):
    """A conversation: a private chat, a group, a Discord channel, a web browser."""

    __tablename__ = "chats"
    __table_args__ = (UniqueConstraint("platform", "platform_chat_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    platform: Mapped[str] = mapped_column(String(16))
    platform_chat_id: Mapped[str] = mapped_column(String(64))
    album_subscribed: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now)


class Job(Base):
    """One request, from the message that asked for it to its reply. The source of truth: a
    job left queued or running by a crash is taken up again on start."""

    __tablename__ = "jobs"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default=JobStatus.QUEUED.value, index=True)
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"),
                                         index=True)
    chat_id: Mapped[int | None] = mapped_column(ForeignKey("chats.id", ondelete="SET NULL"))
    input_blob: Mapped[str | None] = mapped_column(String(64))
    # What the engine is asked (seed, style, form, title, ...).
    parameters: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # How to answer on the platform: the message to reply to, or a Discord interaction's
    # token (a credential), emptied once the reply is sent. None: nothing to answer.
    reply_to: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # Asked in a private chat (True) or a group (False); None where there is no chat.
    private: Mapped[bool | None] = mapped_column(Boolean)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    timings_s: Mapped[dict[str, float]] = mapped_column(JSON, default=dict)
    replied: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Renewed every few seconds by the worker running the job: its lease. A running job
    # whose heartbeat stopped belongs to a worker that died.
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Track(Base):
    """What a job made: the song (or melody, or piano part) and what is known about it."""

    __tablename__ = "tracks"

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"),
                                        unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"),
                                         index=True)
    audio_blob: Mapped[str] = mapped_column(String(64))
    midi_blob: Mapped[str | None] = mapped_column(String(64))
    picture_blob: Mapped[str | None] = mapped_column(String(64))  # PNG, once drawn
    # What its picture shows (an engine.picture card's JSON), drawn when first asked for;
    # tracks from before it was kept, and group songs, have their picture_blob instead.
    picture_card_blob: Mapped[str | None] = mapped_column(String(64))
    duration_s: Mapped[float] = mapped_column(Float)
    key: Mapped[str | None] = mapped_column(String(16))
    tempo_bpm: Mapped[float | None] = mapped_column(Float)
    shared: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    shared_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    features: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now)


class Album(Base):
    """One week's community album."""

    __tablename__ = "albums"

    id: Mapped[int] = mapped_column(primary_key=True)
    week: Mapped[str] = mapped_column(String(8), unique=True)  # ISO week, YYYY-Www
    audio_blob: Mapped[str | None] = mapped_column(String(64))
    mp3_blob: Mapped[str | None] = mapped_column(String(64))
    cover_blob: Mapped[str | None] = mapped_column(String(64))
    duration_s: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now)
    posted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class AlbumTrack(Base):
    """One song of an album, where it starts and ends in the album file (its chapter)."""

    __tablename__ = "album_tracks"
    __table_args__ = (UniqueConstraint("album_id", "position"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    album_id: Mapped[int] = mapped_column(ForeignKey("albums.id", ondelete="CASCADE"))
    track_id: Mapped[int] = mapped_column(ForeignKey("tracks.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    start_s: Mapped[float] = mapped_column(Float, default=0.0)
    end_s: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")


class Vote(Base):
    """A reaction to a shared track (one per person and track)."""

    __tablename__ = "votes"
    __table_args__ = (UniqueConstraint("track_id", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    track_id: Mapped[int] = mapped_column(ForeignKey("tracks.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    value: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now)


class InboxUpdate(Base):
    """An incoming update (a Telegram update, a Discord message), kept before its platform
    is told it arrived, until it has been handled: a crash or a database outage in between
    loses nothing (the next start, or the next sweep, handles it)."""

    __tablename__ = "inbox"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)  # "telegram:update:31"
    platform: Mapped[str] = mapped_column(String(16))
    platform_user_id: Mapped[str] = mapped_column(String(64), default="")  # for forget
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now)
    handled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), index=True)


class ShareLink(Base):
    """A song's public page, made when its maker asks (one per song): anyone with the
    unguessable token may play it. Revoking deletes the row, and forgetting the person
    deletes it with their songs, so the token stops working either way."""

    __tablename__ = "share_links"

    id: Mapped[int] = mapped_column(primary_key=True)
    track_id: Mapped[int] = mapped_column(ForeignKey("tracks.id", ondelete="CASCADE"),
                                          unique=True)
    token: Mapped[str] = mapped_column(String(43), unique=True)  # secrets.token_urlsafe(32)
    credit: Mapped[str] = mapped_column(String(128), default="")  # "" for no name
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now)


class Gathering(Base):
    """A group song being gathered in a chat: open until closes_at (or closed early by its
    starter), then made from the voices that joined, once per version (a person's /forget
    makes the song again without them: version + 1)."""

    __tablename__ = "gatherings"

    id: Mapped[int] = mapped_column(primary_key=True)
    chat_id: Mapped[int] = mapped_column(ForeignKey("chats.id", ondelete="CASCADE"),
                                         index=True)
    starter_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    status: Mapped[str] = mapped_column(String(16), default="open", index=True)
    token: Mapped[str] = mapped_column(String(43), unique=True)  # the web join link's
    # Where the chat door answers about it ({"message_id": ...} of the invitation).
    reply_to: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    opened_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now)
    closes_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    version: Mapped[int] = mapped_column(Integer, default=0)
    job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"))


class GroupVoice(Base):
    """One person's voice note in a gathering (joining is consent for this song only), and
    their yes to sharing the group song to the album."""

    __tablename__ = "group_voices"
    __table_args__ = (UniqueConstraint("gathering_id", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    gathering_id: Mapped[int] = mapped_column(ForeignKey("gatherings.id", ondelete="CASCADE"),
                                              index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"),
                                         index=True)
    input_blob: Mapped[str] = mapped_column(String(64))
    reply_to: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # their note's
    joined_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now)
    album_yes: Mapped[bool] = mapped_column(Boolean, default=False)
