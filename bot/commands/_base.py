"""What every part of Commands shares: the database, the blob store, the group songs, and
reading a track's file."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.commands._types import FileOut
from bot.together import Together
from storage.blobs import BlobStore
from storage.models import Track

TRACK_PARTS = {"audio": ("audio_blob", "ogg", "audio/ogg"),
               "midi": ("midi_blob", "mid", "audio/midi"),
               "picture": ("picture_blob", "png", "image/png")}


class CommandsBase:
    """The state the mixins of Commands (its web views) read; Commands sets it.
    The mixins split one object by role, the way Red-DiscordBot's audio cog is split, so a
    door keeps talking to one Commands."""

    sessions: async_sessionmaker[AsyncSession]
    blobs: BlobStore
    together: Together

    def _file(self, track: Track, part: str) -> FileOut:
        return file_of(self.blobs, track, part)


def file_of(blobs: BlobStore, track: Track, part: str) -> FileOut:
    """One of a track's files (TRACK_PARTS), named for the person who downloads it."""
    column, extension, mime = TRACK_PARTS[part]
    return FileOut(blobs.get(getattr(track, column)), f"singsong-{track.id}.{extension}", mime)
