"""What the web page reads: a job and where it stands, a person's songs, an album, a song's
public page, and the files behind them. Each view checks whose it is."""

from __future__ import annotations

import secrets

from bot.commands._base import TRACK_PARTS, CommandsBase, has_part
from bot.commands._replies import SungAs, error_for_person, title_of
from bot.commands._types import (
    AlbumEntryView,
    AlbumView,
    FileOut,
    JobView,
    Person,
    SharedSongView,
    TrackView,
)
from bot.titles import credit, origin, song_title
from bot.together import credits
from storage import queries
from storage.models import Job, JobKind, JobStatus, ShareLink, Track, as_utc

ALBUM_PARTS = {"audio": ("audio_blob", "ogg", "audio/ogg"),
               "mp3": ("mp3_blob", "mp3", "audio/mpeg"),
               "cover": ("cover_blob", "png", "image/png")}
LINK_TOKEN_BYTES = 32  # a public song page's token: 256 random bits, 43 characters
LINK_PARTS = ("audio", "picture")  # what a public song page serves


class WebViews(CommandsBase):
    async def job_view(self, person: Person, job_id: int) -> JobView | None:
        async with self.sessions() as session:
            job = await queries.own_job(session, job_id, person.platform, person.user_id)
            if job is None:
                return None
            ahead = (await queries.queued_ahead_of(session, job.id)
                     if job.status == JobStatus.QUEUED else 0)
            track = await queries.track_made_by(session, job.id)
            links = await queries.share_links_of(session, [track.id]) if track else {}
            return JobView(job.id, job.kind, job.status, error_for_person(job), ahead,
                           track_view_of(track, job, links.get(track.id)) if track else None)

    async def history_view(self, person: Person) -> list[TrackView]:
        async with self.sessions() as session:
            user = await queries.user_of(session, person.platform, person.user_id)
            if user is None:
                return []
            tracks = await queries.history(session, user)
            jobs = await queries.jobs_by_id(session, [t.job_id for t in tracks])
            links = await queries.share_links_of(session, [t.id for t in tracks])
        return [track_view_of(t, jobs[t.job_id], links.get(t.id)) for t in tracks]

    async def track_view(self, person: Person, track_id: int) -> TrackView | None:
        """One of the person's songs; None when it is not theirs."""
        async with self.sessions() as session:
            row = await queries.own_track_with_job(session, track_id, person.platform,
                                                   person.user_id)
            if row is None:
                return None
            links = await queries.share_links_of(session, [track_id])
        return track_view_of(row[0], row[1], links.get(track_id))

    async def album_view(self, week: str | None = None) -> AlbumView | None:
        """An album (the newest when no week is given) with its tracklist."""
        async with self.sessions() as session:
            album = await queries.published_album(session, week)
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
            track = await queries.track_by_id(session, view.song_track_id)
        return self._file(track, "audio") if track is not None else None

    async def shared_song(self, token: str) -> SharedSongView | None:
        """The song a public link names; None when there is no such link (any more)."""
        async with self.sessions() as session:
            found = await queries.shared_by_link(session, token)
        if found is None:
            return None
        link, track, job = found
        return SharedSongView(token, track_view_of(track, job, link), credit(link.credit))

    async def shared_file(self, token: str, part: str) -> FileOut | None:
        """A file of the song a public link names (audio or picture, drawn when first asked
        for)."""
        async with self.sessions() as session:
            found = await queries.shared_by_link(session, token)
        if found is None or part not in LINK_PARTS:
            return None
        return await self.track_part(found[1], part)

    async def track_file(self, person: Person | None, track_id: int,
                         part: str) -> FileOut | None:
        """One file of a track: the person's own, or any shared one (its picture drawn
        when first asked for)."""
        if part not in TRACK_PARTS:
            return None
        async with self.sessions() as session:
            row = await queries.track_with_owner(session, track_id)
        if row is None:
            return None
        track, owner = row
        mine = person is not None and (owner.platform, owner.platform_user_id) == (
            person.platform, person.user_id)
        if not (mine or track.shared):
            return None
        return await self.track_part(track, part)

    async def owns(self, person: Person, track_id: int) -> bool:
        """Whether the track is this person's."""
        async with self.sessions() as session:
            owner = await queries.owner_of(session, track_id)
        return owner == (person.platform, person.user_id)


def track_view_of(track: Track, job: Job, link: ShareLink | None = None) -> TrackView:
    parts = tuple(part for part in TRACK_PARTS if has_part(track, part))
    created = as_utc(track.created_at)
    sung = SungAs.of(job)
    return TrackView(track.id, job.kind, created.isoformat(), round(track.duration_s, 2),
                     track.key, track.tempo_bpm, track.shared, parts,
                     form=sung.form if sung else None,
                     sections=sung.sections if sung else (),
                     language=sung.language if sung else None,
                     about=sung.about() if sung else "",
                     title=title_of(job),
                     style=job.parameters.get("style") if job.kind != JobKind.PIANO else None,
                     lyrics=job.parameters.get("text") if job.kind == JobKind.LYRICS else None,
                     origin=origin(job.parameters),
                     link=link.token if link else None,
                     link_credit=link.credit if link else None)
