"""The nightly curation and the weekly album: what `singsong curate` and `singsong album
build` run once, and what `singsong serve` runs by the clock.

Curation measures every stored track that has no features yet (engine.album: bounds,
loudness, key, tempo, chroma, timbre, quality, fingerprint); a track that cannot be measured
is marked failed and stays out of albums. The album of an ISO week is chosen from the tracks
shared that week by people who consented, ordered, joined, mastered and stored once: a week
that has its album keeps it. Posting sends it once to every subscribed chat.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config import Settings
from bot.jobs import measure
from bot.titles import song_title
from bot.together import credits
from bot.weeks import last_week, week_bounds, week_of
from engine import album as engine_album
from engine import audio
from storage import queries
from storage.blobs import BlobStore

log = logging.getLogger("singsong.scheduler")

CURATE_BATCH = 50  # tracks measured per database round trip
ALBUM_RATE = 48000  # Opus's own rate
TICK_S = 60.0


# --- Curation -------------------------------------------------------------------------------


async def measure_unmeasured(sessions: async_sessionmaker[AsyncSession],
                             blobs: BlobStore) -> tuple[int, int]:
    """Measure every track that has no curation features yet: a worker measures each song
    after its reply, so one it has not reached yet, or one whose worker died first, is
    measured here. (How many were measured, how many of those failed.)"""
    measured = failed = 0
    while True:
        async with sessions() as session:
            batch = await queries.tracks_without_features(session, CURATE_BATCH)
            if not batch:
                return measured, failed
            for track in batch:
                # SingSong's songs and melodies start on a downbeat (piano versions, with no
                # key, are never measured: tracks_without_features leaves them out).
                found = await asyncio.to_thread(
                    measure, blobs.get(track.audio_blob), track.key, track.tempo_bpm,
                    downbeat_s=0.0)
                track.features = found
                failed += "failed" in found
                measured += 1
            await session.commit()


async def run_curation(sessions: async_sessionmaker[AsyncSession], blobs: BlobStore,
                       moment: datetime) -> dict[str, Any]:
    """Measure what is not measured yet; then score this week's candidates. JSON report."""
    measured, failed = await measure_unmeasured(sessions, blobs)
    week = week_of(moment)
    start, end = week_bounds(week)
    async with sessions() as session:
        candidates = await queries.album_candidates(session, start, end)
    scored = sorted((_candidate(c) for c in candidates), key=lambda c: -c.score)
    return {"measured": measured, "failed": failed, "week": week,
            "candidates": [{"track_id": c.track_id, "score": round(c.score, 4),
                            "votes": c.votes} for c in scored]}


def _candidate(found: queries.AlbumCandidate) -> engine_album.Candidate:
    features = engine_album.ClipFeatures.from_json(found.track.features or {})
    return engine_album.Candidate(found.track.id, found.person_id, features, found.votes)


# --- The album ------------------------------------------------------------------------------


@dataclass(frozen=True)
class AlbumSettings:
    size: int = 20
    per_person: int = 2

    @classmethod
    def of(cls, settings: Settings) -> AlbumSettings:
        return cls(settings.album_size, settings.album_per_person)


async def build_album(sessions: async_sessionmaker[AsyncSession], blobs: BlobStore,
                      week: str, options: AlbumSettings = AlbumSettings()) -> dict[str, Any]:
    """The week's album, made once: chosen, ordered, joined, mastered, with a cover. JSON
    report ("created" false when the week had its album already; "album_id" null when
    nobody shared anything that could go in)."""
    start, end = week_bounds(week)
    async with sessions() as session:
        existing = await queries.album_of_week(session, week)
        if existing is not None:
            return await _album_report(session, existing, created=False)
    # A song shared moments ago may not be measured yet (its worker measures it after the
    # reply): measured here, it is not left out.
    await measure_unmeasured(sessions, blobs)
    async with sessions() as session:
        found = await queries.album_candidates(session, start, end)
        voices = await queries.group_voice_names(session, [c.track.id for c in found])
    # A group song is credited to every voice in it.
    names = {c.track.id: credits(voices[c.track.id]) if c.track.id in voices
             else c.display_name for c in found}
    audio_blobs = {c.track.id: c.track.audio_blob for c in found}
    candidates = [_candidate(c) for c in found]
    chosen = engine_album.order(engine_album.choose(candidates, size=options.size,
                                                    per_person=options.per_person))
    if not chosen:
        return {"week": week, "album_id": None, "created": False, "candidates": len(found),
                "tracks": []}
    made = await asyncio.to_thread(_make_album, blobs, week, chosen, names, audio_blobs)
    async with sessions() as session:
        album, created = await queries.save_album(
            session, week=week, audio_blob=blobs.put(made.files["ogg"]),
            mp3_blob=blobs.put(made.files["mp3"]), cover_blob=blobs.put(made.files["png"]),
            duration_s=round(made.mix.duration_s, 3),
            chapters=[(c.track_id, chapter.start_s, chapter.end_s)
                      for c, chapter in zip(chosen, made.mix.chapters, strict=True)])
        report = await _album_report(session, album, created=created)
    report["candidates"] = len(found)
    return report


def _make_album(blobs: BlobStore, week: str, chosen: list[engine_album.Candidate],
                names: dict[int, str], audio_blobs: dict[int, str]) -> engine_album.Album:
    songs = []
    for candidate in chosen:
        decoded = audio.decode(blobs.get(audio_blobs[candidate.track_id]),
                               sample_rate=ALBUM_RATE)
        songs.append((decoded.samples, decoded.sample_rate, candidate.features))
    titles = [song_title(c.track_id, names.get(c.track_id, "")) for c in chosen]
    return engine_album.build_album(songs, titles, album_title=f"SingSong weekly album {week}")


async def _album_report(session: AsyncSession, album: Any, *, created: bool) -> dict[str, Any]:
    entries = await queries.album_tracklist(session, album)
    return {"week": album.week, "album_id": album.id, "created": created,
            "duration_s": album.duration_s,
            "tracks": [{"position": e.position, "track_id": e.track_id,
                        "title": song_title(e.track_id, e.display_name),
                        "start_s": e.start_s, "end_s": e.end_s} for e in entries]}


# --- By the clock ---------------------------------------------------------------------------


class Announcer(Protocol):
    """What the scheduler asks of the chat side (bot.commands.Commands is one)."""

    async def deliver_unsent(self) -> int:
        """Send the replies a platform refused or a stopped process owed; how many."""
        ...

    async def post_album(self, week: str) -> int:
        """Post a week's album to the chats that asked for it, once; how many it reached."""
        ...


class Scheduler:
    """Inside `singsong serve`: every minute, the replies a platform refused are sent again;
    curation every night at `curate_hour` (UTC); on
    `album_weekday` at `album_hour` the album of the week that just ended is built (if it
    is not there) and posted (if it was not yet). Both are safe to repeat, so a restart at
    any moment does no harm."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], blobs: BlobStore,
                 announcer: Announcer, settings: Settings,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.sessions, self.blobs, self.announcer = sessions, blobs, announcer
        self.settings, self.clock = settings, clock
        self._curated_on: date | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="singsong-scheduler")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            try:
                await self.tick()
            except Exception:
                log.exception("a scheduled run failed; trying again at the next tick")
            await asyncio.sleep(TICK_S)

    async def tick(self) -> dict[str, Any]:
        """Do what is due now; a report of what ran."""
        moment = self.clock().astimezone(UTC)
        settings = self.settings
        ran: dict[str, Any] = {}
        # A reply a platform refused a while ago (a 5xx, a timeout) is sent again now.
        ran["replies_resent"] = await self.announcer.deliver_unsent()
        if moment.hour >= settings.curate_hour and self._curated_on != moment.date():
            ran["curate"] = await run_curation(self.sessions, self.blobs, moment)
            self._curated_on = moment.date()
        if (moment.weekday(), moment.hour) >= (settings.album_weekday, settings.album_hour):
            week = last_week(moment)
            async with self.sessions() as session:
                album = await queries.album_of_week(session, week)
            if album is None:
                ran["album"] = await build_album(self.sessions, self.blobs, week,
                                                 AlbumSettings.of(settings))
            ran["posted"] = await self.announcer.post_album(week)
        return ran
