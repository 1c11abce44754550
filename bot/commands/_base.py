"""What every part of Commands shares: the database, the blob store, the group songs, and
reading a track's file (a song's picture drawn when it is first asked for)."""

from __future__ import annotations

import asyncio

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.commands._types import FileOut
from bot.together import Together
from storage import queries
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

    async def track_part(self, track: Track, part: str) -> FileOut | None:
        """One of a track's files (TRACK_PARTS), None when it has no such part. Its picture
        is drawn from its card the first time it is asked for (in a thread: it takes
        0.1-0.3 s of a core), then kept as the track's picture_blob. Two first asks at
        once both draw it (the same bytes, kept once: blobs are named by their content)."""
        if part == "picture" and track.picture_blob is None and track.picture_card_blob:
            name, png = await asyncio.to_thread(self._draw, track.picture_card_blob)
            async with self.sessions() as session:
                kept = await queries.set_picture(session, self.blobs, track.id, name)
            return _named(track, part, png) if kept else None
        if not has_part(track, part):
            return None
        return self._file(track, part)

    def _draw(self, card_blob: str) -> tuple[str, bytes]:
        """The picture a card describes, drawn and stored: its blob's name, and the PNG."""
        from engine import picture

        png = picture.draw(self.blobs.get(card_blob))
        return self.blobs.put(png), png


def has_part(track: Track, part: str) -> bool:
    """Whether a track has (or can draw, for its picture) a part of TRACK_PARTS."""
    if part == "picture" and track.picture_card_blob:
        return True
    return part in TRACK_PARTS and getattr(track, TRACK_PARTS[part][0]) is not None


def file_of(blobs: BlobStore, track: Track, part: str) -> FileOut:
    """One of a track's files (TRACK_PARTS), named for the person who downloads it."""
    return _named(track, part, blobs.get(getattr(track, TRACK_PARTS[part][0])))


def _named(track: Track, part: str, data: bytes) -> FileOut:
    _, extension, mime = TRACK_PARTS[part]
    return FileOut(data, f"singsong-{track.id}.{extension}", mime)
