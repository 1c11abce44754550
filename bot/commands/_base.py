"""What every part of Commands shares: the database, the blob store, the group songs, the
outboxes of the platforms attached, and reading a track's file."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.commands._types import FileOut, Outbox
from bot.together import Together
from storage.blobs import BlobStore
from storage.models import Track

TRACK_PARTS = {"audio": ("audio_blob", "ogg", "audio/ogg"),
               "midi": ("midi_blob", "mid", "audio/midi"),
               "picture": ("picture_blob", "png", "image/png")}


class CommandsBase:
    """The state the mixins of Commands (its views, its delivery) read; Commands sets it.
    The mixins split one object by role, the way Red-DiscordBot's audio cog is split, so a
    door keeps talking to one Commands."""

    sessions: async_sessionmaker[AsyncSession]
    blobs: BlobStore
    together: Together
    _outboxes: dict[str, Outbox]

    def _file(self, track: Track, part: str) -> FileOut:
        column, extension, mime = TRACK_PARTS[part]
        return FileOut(self.blobs.get(getattr(track, column)),
                       f"singsong-{track.id}.{extension}", mime)
