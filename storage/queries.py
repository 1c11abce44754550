"""What the bot asks of storage: people and chats, jobs (idempotent), tracks, history,
sharing, and forgetting a person entirely. Functions over an AsyncSession; each commits."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import Select, delete, func, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from storage.blobs import BlobStore
from storage.models import (
    Album,
    AlbumTrack,
    Chat,
    Gathering,
    GroupVoice,
    InboxUpdate,
    Job,
    JobStatus,
    ShareLink,
    Track,
    User,
    Vote,
    now,
)

HISTORY_SIZE = 10
Row = TypeVar("Row", User, Chat)


async def user_for(session: AsyncSession, platform: str, platform_user_id: str,
                   display_name: str = "") -> User:
    """The user, made on first sight (safe when two messages race to make it)."""
    user = await _made_on_first_sight(
        session, User, {"platform": platform, "platform_user_id": platform_user_id},
        {"display_name": display_name[:128], "album_consent": False,
         "preferred_style": "pop"})
    if display_name and user.display_name != display_name[:128]:
        user.display_name = display_name[:128]
    await session.commit()
    return user


async def user_of(session: AsyncSession, platform: str, platform_user_id: str) -> User | None:
    """The user, if SingSong has seen them (nothing is made)."""
    found = await session.execute(select(User).filter_by(platform=platform,
                                                         platform_user_id=platform_user_id))
    return found.scalar_one_or_none()


async def chat_for(session: AsyncSession, platform: str, platform_chat_id: str) -> Chat:
    chat = await _made_on_first_sight(
        session, Chat, {"platform": platform, "platform_chat_id": platform_chat_id},
        {"album_subscribed": False})
    await session.commit()
    return chat


async def _made_on_first_sight(session: AsyncSession, model: type[Row], identity: dict[str, Any],
                               defaults: dict[str, Any]) -> Row:
    """The row with this identity (its unique columns), inserted with `defaults` if missing:
    an insert that yields to a concurrent one, then a read."""
    values = {**identity, **defaults, "created_at": now()}
    await session.execute(_insert_ignoring_conflicts(session, model, values))
    query = select(model).filter_by(**identity)
    row: Row = (await session.execute(query)).scalar_one()
    return row


def idempotency_key(platform: str, chat_id: str, message_id: str) -> str:
    """One key per incoming message: a redelivered message finds its job again."""
    return f"{platform}:{chat_id}:{message_id}"


async def submit_job(session: AsyncSession, *, key: str, kind: str, user: User,
                     chat: Chat | None = None, input_blob: str | None = None,
                     parameters: dict[str, Any] | None = None,
                     reply_to: dict[str, Any] | None = None,
                     private: bool | None = None) -> tuple[Job, bool]:
    """Record a job unless one with this idempotency key exists; (the job, whether new).
    `parameters` go to the engine; `reply_to` and `private` say how to answer."""
    values = {"kind": kind, "status": JobStatus.QUEUED.value, "idempotency_key": key,
              "user_id": user.id, "chat_id": chat.id if chat else None,
              "input_blob": input_blob, "parameters": parameters or {}, "reply_to": reply_to,
              "private": private, "attempts": 0, "timings_s": {},
              "replied": False, "created_at": now()}
    result = await session.execute(
        _insert_ignoring_conflicts(session, Job, values).returning(Job.id))
    created = result.scalar_one_or_none() is not None
    job = (await session.execute(select(Job).where(Job.idempotency_key == key))).scalar_one()
    await session.commit()
    return job, created


class AttemptSuperseded(Exception):
    """The job was given up while this attempt ran (its worker's lease ran out): another
    attempt has it, or had it, and what this one made is not stored."""


async def save_track(session: AsyncSession, job: Job, *, audio_blob: str,
                     midi_blob: str | None, picture_blob: str | None, duration_s: float,
                     picture_card_blob: str | None = None,
                     key: str | None = None, tempo_bpm: float | None = None,
                     timings_s: dict[str, float] | None = None,
                     features: dict[str, Any] | None = None,
                     attempt: int | None = None) -> Track:
    """Store what a job made (with its curation features, when measured) and mark the job
    done, in one transaction. With `attempt`: only while the job is still running that
    attempt (else AttemptSuperseded, and nothing is stored)."""
    done = {"status": JobStatus.DONE, "finished_at": now(), "timings_s": timings_s or {},
            "parameters": job.parameters}
    if attempt is not None:
        marked = await session.execute(
            update(Job).where(Job.id == job.id, Job.status == JobStatus.RUNNING,
                              Job.attempts == attempt)
            .values(**done).execution_options(synchronize_session=False))
        if not marked.rowcount:  # type: ignore[attr-defined]
            await session.rollback()
            raise AttemptSuperseded(f"job {job.id} attempt {attempt}")
    else:
        for name, value in done.items():
            setattr(job, name, value)
    track = Track(job_id=job.id, user_id=job.user_id, audio_blob=audio_blob,
                  midi_blob=midi_blob, picture_blob=picture_blob,
                  picture_card_blob=picture_card_blob, duration_s=duration_s,
                  key=key, tempo_bpm=tempo_bpm, features=features)
    session.add(track)
    await session.commit()
    return track


# --- Running jobs: leases -----------------------------------------------------------------


async def renew_lease(session: AsyncSession, job_id: int, attempt: int) -> bool:
    """The worker running this attempt of the job is alive; False when the job is no longer
    its own (given up, or finished)."""
    renewed = await session.execute(
        update(Job).where(Job.id == job_id, Job.status == JobStatus.RUNNING,
                          Job.attempts == attempt).values(heartbeat_at=now()))
    await session.commit()
    return bool(renewed.rowcount)  # type: ignore[attr-defined]


async def give_up_lost_jobs(session: AsyncSession, *, lease_s: float, stale_s: float,
                            max_attempts: int, error: str) -> list[int]:
    """Running jobs whose worker is gone: no heartbeat for `lease_s` (a worker that died), or
    running longer than `stale_s` however alive (a worker stuck in it). Each goes back in the
    queue, or fails when that was its last attempt. The ids given up."""
    moment = now()
    silent = moment - timedelta(seconds=lease_s)
    lost = (Job.status == JobStatus.RUNNING) & (
        (func.coalesce(Job.heartbeat_at, Job.started_at) <= silent)
        | (Job.started_at <= moment - timedelta(seconds=stale_s)))
    ids = list((await session.execute(select(Job.id).where(lost))).scalars())
    if ids:
        chosen = Job.id.in_(ids) & (Job.status == JobStatus.RUNNING)
        await session.execute(update(Job).where(chosen, Job.attempts >= max_attempts)
                              .values(status=JobStatus.FAILED, finished_at=moment, error=error))
        await session.execute(update(Job).where(chosen).values(status=JobStatus.QUEUED,
                                                              heartbeat_at=None))
    await session.commit()
    return ids


async def end_attempt(session: AsyncSession, job_id: int, attempt: int, *, status: str,
                      error: str, at_least: bool = False) -> bool:
    """An attempt that made nothing ends: the job fails (JobStatus.FAILED) or goes back in
    the queue (JobStatus.QUEUED) with the error, if that attempt (or, `at_least`, any
    attempt from that one on) is still running it. Whether it was."""
    values: dict[str, Any] = {"status": status, "error": error, "heartbeat_at": None}
    if status == JobStatus.FAILED:
        values["finished_at"] = now()
    attempts = Job.attempts >= attempt if at_least else Job.attempts == attempt
    ended = await session.execute(update(Job).where(
        Job.id == job_id, Job.status == JobStatus.RUNNING, attempts).values(**values))
    await session.commit()
    return bool(ended.rowcount)  # type: ignore[attr-defined]


async def job_statuses(session: AsyncSession, job_ids: list[int]) -> dict[int, str]:
    """The status of each job that still exists (a forgotten one is missing)."""
    rows = await session.execute(select(Job.id, Job.status).where(Job.id.in_(job_ids)))
    return {job_id: str(status) for job_id, status in rows}


async def set_job(session: AsyncSession, job_id: int, **values: Any) -> None:
    """Set columns of a job row (its reply given back, its parameters cleaned)."""
    await session.execute(update(Job).where(Job.id == job_id).values(**values))
    await session.commit()


async def claim_reply(session: AsyncSession, job_id: int) -> bool:
    """True for exactly one caller per job: whoever gets True sends the reply. A process
    that restarts, or a second adapter process, gets False for a job already answered."""
    result = await session.execute(update(Job).where(Job.id == job_id, Job.replied.is_(False))
                                   .values(replied=True))
    await session.commit()
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def history(session: AsyncSession, user: User, limit: int = HISTORY_SIZE) -> list[Track]:
    """The person's latest tracks, newest first."""
    rows = await session.execute(select(Track).where(Track.user_id == user.id)
                                 .order_by(Track.created_at.desc(), Track.id.desc())
                                 .limit(limit))
    return list(rows.scalars())


async def share(session: AsyncSession, user: User, track_id: int) -> Track | None:
    """Put one of the person's tracks into the album pool; None when it is not theirs."""
    track = await session.get(Track, track_id)
    if track is None or track.user_id != user.id:
        return None
    track.shared = True
    track.shared_at = now()
    await session.commit()
    return track


async def vote(session: AsyncSession, user: User, track_id: int) -> int | None:
    """The person likes a track (once: a second like changes nothing); the track's number
    of likes, or None when there is no such track."""
    if await session.get(Track, track_id) is None:
        return None
    await session.execute(_insert_ignoring_conflicts(
        session, Vote, {"track_id": track_id, "user_id": user.id, "value": 1,
                        "created_at": now()}))
    await session.commit()
    count = await session.execute(select(func.count()).select_from(Vote)
                                  .where(Vote.track_id == track_id))
    return int(count.scalar_one())


async def forget(session: AsyncSession, blobs: BlobStore, user: User) -> int:
    """Delete every row of this person (jobs, tracks, votes cascade with them), every album
    their voice is in (an album file cannot be cut apart), and every blob that nothing else
    refers to any more. Returns the number of blobs deleted."""
    theirs = await _blobs_of(session, user.id)
    theirs |= await _drop_albums_with(session, select(Track.id).where(Track.user_id == user.id))
    await session.execute(delete(User).where(User.id == user.id))
    await session.execute(delete(InboxUpdate).where(
        InboxUpdate.platform == user.platform,
        InboxUpdate.platform_user_id == user.platform_user_id))
    await session.commit()
    return await _delete_unreferenced(session, blobs, theirs)


async def _drop_albums_with(session: AsyncSession, track_ids: Select[tuple[int]]) -> set[str]:
    """Delete every album holding one of these tracks (an album file cannot be cut apart);
    the names of its files. Not committed."""
    names: set[str] = set()
    albums = select(AlbumTrack.album_id).where(AlbumTrack.track_id.in_(track_ids))
    for album in (await session.execute(select(Album).where(Album.id.in_(albums)))).scalars():
        names.update(n for n in (album.audio_blob, album.mp3_blob, album.cover_blob) if n)
        await session.delete(album)
    return names


async def _delete_unreferenced(session: AsyncSession, blobs: BlobStore,
                               names: set[str]) -> int:
    """Delete those of these blobs that no row refers to any more; how many."""
    doomed = names - await referenced_blobs(session)
    for name in doomed:
        blobs.delete(name)
    return len(doomed)


async def referenced_blobs(session: AsyncSession) -> set[str]:
    """Every blob some row refers to (for collecting the rest)."""
    names: set[str] = set()
    for column in (Job.input_blob, Track.audio_blob, Track.midi_blob, Track.picture_blob,
                   Track.picture_card_blob, Album.audio_blob, Album.mp3_blob, Album.cover_blob,
                   GroupVoice.input_blob):
        names.update(n for n in (await session.execute(select(column).distinct())).scalars()
                     if n)
    return names


async def count_rows_of(session: AsyncSession, user_id: int) -> int:
    """How many rows anywhere still belong to this user id (0 after forget)."""
    total = 0
    for model, column in ((User, User.id), (Job, Job.user_id), (Track, Track.user_id),
                          (Vote, Vote.user_id), (GroupVoice, GroupVoice.user_id)):
        total += (await session.execute(select(func.count()).select_from(model)
                                        .where(column == user_id))).scalar_one()
    return total


async def _blobs_of(session: AsyncSession, user_id: int) -> set[str]:
    names: set[str] = set()
    jobs = await session.execute(select(Job.input_blob).where(Job.user_id == user_id))
    names.update(n for n in jobs.scalars() if n)
    voices = await session.execute(select(GroupVoice.input_blob).where(
        GroupVoice.user_id == user_id))
    names.update(voices.scalars())
    tracks = await session.execute(select(Track.audio_blob, Track.midi_blob, Track.picture_blob,
                                          Track.picture_card_blob)
                                   .where(Track.user_id == user_id))
    for row in tracks:
        names.update(n for n in row if n)
    return names


# --- Share links: a song's public page ----------------------------------------------------


async def make_share_link(session: AsyncSession, user: User, track_id: int, token: str,
                          credit: str) -> ShareLink | None:
    """The public link of one of the person's songs, made with `token` unless the song has
    one already (then it keeps its token and takes the new credit); None when the song is
    not theirs."""
    track = await session.get(Track, track_id)
    if track is None or track.user_id != user.id:
        return None
    await session.execute(_insert_ignoring_conflicts(session, ShareLink, {
        "track_id": track_id, "token": token, "credit": credit[:128], "created_at": now()}))
    await session.execute(update(ShareLink).where(ShareLink.track_id == track_id)
                          .values(credit=credit[:128]))
    link = (await session.execute(select(ShareLink).where(ShareLink.track_id == track_id))
            ).scalar_one()
    await session.commit()
    return link


async def revoke_share_link(session: AsyncSession, user: User, track_id: int) -> bool:
    """Delete the public link of one of the person's songs; whether there was one."""
    theirs = select(Track.id).where(Track.id == track_id, Track.user_id == user.id)
    revoked = await session.execute(delete(ShareLink).where(ShareLink.track_id.in_(theirs)))
    await session.commit()
    return bool(revoked.rowcount)  # type: ignore[attr-defined]


async def share_links_of(session: AsyncSession, track_ids: list[int]) -> dict[int, ShareLink]:
    """The links of these tracks that have one, by track id."""
    rows = await session.execute(select(ShareLink).where(ShareLink.track_id.in_(track_ids)))
    return {link.track_id: link for link in rows.scalars()}


async def shared_by_link(session: AsyncSession, token: str
                         ) -> tuple[ShareLink, Track, Job] | None:
    """The link with this token, its track and the job that made it; None when no link has
    it (never made, revoked, or its maker was forgotten)."""
    found = await session.execute(
        select(ShareLink, Track, Job).join(Track, ShareLink.track_id == Track.id)
        .join(Job, Track.job_id == Job.id).where(ShareLink.token == token))
    row = found.first()
    return None if row is None else (row[0], row[1], row[2])


# --- The inbox of incoming updates ---------------------------------------------------------


async def keep_update(session: AsyncSession, *, key: str, platform: str,
                      platform_user_id: str, payload: dict[str, Any]) -> bool:
    """Keep an incoming update until it is handled (a redelivered one is kept once). False
    when it was handled before: a redelivery to ignore."""
    await session.execute(_insert_ignoring_conflicts(session, InboxUpdate, {
        "key": key, "platform": platform, "platform_user_id": platform_user_id[:64],
        "payload": payload, "received_at": now(), "handled_at": None}))
    handled = (await session.execute(select(InboxUpdate.handled_at)
                                     .where(InboxUpdate.key == key))).scalar_one()
    await session.commit()
    return handled is None


async def mark_handled(session: AsyncSession, key: str) -> None:
    await session.execute(update(InboxUpdate).where(InboxUpdate.key == key,
                                                    InboxUpdate.handled_at.is_(None))
                          .values(handled_at=now()))
    await session.commit()


async def unhandled_updates(session: AsyncSession, platform: str,
                            received_before: datetime) -> list[tuple[str, dict[str, Any]]]:
    """Updates of a platform kept but not handled, received before a moment, oldest first:
    (key, payload)."""
    rows = await session.execute(
        select(InboxUpdate.key, InboxUpdate.payload)
        .where(InboxUpdate.platform == platform, InboxUpdate.handled_at.is_(None),
               InboxUpdate.received_at < received_before)
        .order_by(InboxUpdate.id))
    return [(key, dict(payload)) for key, payload in rows]


async def drop_handled_updates(session: AsyncSession, handled_before: datetime) -> int:
    """Handled updates are kept a while (a late redelivery still finds them), then dropped."""
    dropped = await session.execute(delete(InboxUpdate).where(
        InboxUpdate.handled_at < handled_before))
    await session.commit()
    return int(dropped.rowcount)  # type: ignore[attr-defined]


# --- Curation and the weekly album -------------------------------------------------------


async def tracks_without_features(session: AsyncSession, limit: int) -> list[Track]:
    """Tracks not yet measured for curation, oldest first (album candidates only: a piano
    version, the only track without a key, never is)."""
    rows = await session.execute(select(Track).where(Track.features.is_(None),
                                                     Track.key.is_not(None))
                                 .order_by(Track.id).limit(limit))
    return list(rows.scalars())


@dataclass(frozen=True)
class AlbumCandidate:
    track: Track
    person_id: int
    display_name: str
    votes: int


async def album_candidates(session: AsyncSession, start: datetime,
                           end: datetime) -> list[AlbumCandidate]:
    """Tracks shared in [start, end) by people who consented, with their features measured
    (a track whose measuring failed carries {"failed": ...} and is left out), and the votes
    each has. Piano versions stay out: a hummed tune on a piano has no voice and no band,
    keeps the silences of the speech it was hummed in and no beat to join on."""
    votes = (select(Vote.track_id, func.coalesce(func.sum(Vote.value), 0).label("votes"))
             .group_by(Vote.track_id).subquery())
    rows = await session.execute(
        select(Track, User.id, User.display_name, func.coalesce(votes.c.votes, 0))
        .join(User, Track.user_id == User.id)
        .outerjoin(votes, votes.c.track_id == Track.id)
        .where(Track.shared.is_(True), Track.shared_at >= start, Track.shared_at < end,
               User.album_consent.is_(True), Track.features.is_not(None),
               Track.key.is_not(None))  # a piano version (no key) is not album material
        .order_by(Track.id))
    return [AlbumCandidate(track, person_id, name, int(count))
            for track, person_id, name, count in rows
            if track.features and "failed" not in track.features]


async def album_of_week(session: AsyncSession, week: str) -> Album | None:
    found = await session.execute(select(Album).where(Album.week == week))
    return found.scalar_one_or_none()


async def save_album(session: AsyncSession, *, week: str, audio_blob: str, mp3_blob: str,
                     cover_blob: str, duration_s: float,
                     chapters: list[tuple[int, float, float]]) -> tuple[Album, bool]:
    """Store a week's album and its tracklist ((track id, start s, end s) in order), unless
    that week has one already: (the week's album, whether this call made it)."""
    values = {"week": week, "audio_blob": audio_blob, "mp3_blob": mp3_blob,
              "cover_blob": cover_blob, "duration_s": duration_s, "created_at": now()}
    made = await session.execute(_insert_ignoring_conflicts(session, Album, values)
                                 .returning(Album.id))
    created = made.scalar_one_or_none() is not None
    album = (await session.execute(select(Album).where(Album.week == week))).scalar_one()
    if created:
        session.add_all(AlbumTrack(album_id=album.id, track_id=track_id, position=position,
                                   start_s=start_s, end_s=end_s)
                        for position, (track_id, start_s, end_s) in enumerate(chapters, 1))
    await session.commit()
    return album, created


@dataclass(frozen=True)
class AlbumEntry:
    position: int
    start_s: float
    end_s: float
    track_id: int
    display_name: str
    key: str | None
    tempo_bpm: float | None


async def album_tracklist(session: AsyncSession, album: Album) -> list[AlbumEntry]:
    """The album's songs in order, with who made each (the tracks of people who have been
    forgotten since are gone from it)."""
    rows = await session.execute(
        select(AlbumTrack, Track, User.display_name)
        .join(Track, AlbumTrack.track_id == Track.id).join(User, Track.user_id == User.id)
        .where(AlbumTrack.album_id == album.id).order_by(AlbumTrack.position))
    return [AlbumEntry(entry.position, entry.start_s, entry.end_s, track.id, name, track.key,
                       track.tempo_bpm) for entry, track, name in rows]


async def subscribed_chats(session: AsyncSession) -> list[Chat]:
    rows = await session.execute(select(Chat).where(Chat.album_subscribed.is_(True))
                                 .order_by(Chat.id))
    return list(rows.scalars())


def _insert_ignoring_conflicts(session: AsyncSession, model: type[Any],
                               values: dict[str, Any]) -> Any:
    dialect = session.get_bind().dialect.name
    insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
    return insert(model).values(**values).on_conflict_do_nothing()



# --- Group songs -----------------------------------------------------------------------------


async def open_gathering(session: AsyncSession, *, chat: Chat, starter: User,
                         closes_at: datetime, token: str,
                         reply_to: dict[str, Any]) -> tuple[Gathering, bool]:
    """The chat's open gathering, or a new one answering `reply_to`: (it, whether this call
    opened it)."""
    found = await open_gathering_in(session, chat.id)
    if found is not None:
        return found, False
    gathering = Gathering(chat_id=chat.id, starter_id=starter.id, status="open", token=token,
                          reply_to=dict(reply_to), opened_at=now(), closes_at=closes_at,
                          version=0)
    session.add(gathering)
    await session.commit()
    return gathering, True


async def open_gathering_in(session: AsyncSession, chat_id: int) -> Gathering | None:
    found = await session.execute(select(Gathering).where(
        Gathering.chat_id == chat_id, Gathering.status == "open").order_by(Gathering.id))
    return found.scalars().first()


async def gathering_by_token(session: AsyncSession, token: str) -> Gathering | None:
    found = await session.execute(select(Gathering).where(Gathering.token == token))
    return found.scalar_one_or_none()


async def add_voice(session: AsyncSession, gathering: Gathering, user: User, *,
                    input_blob: str, reply_to: dict[str, Any]) -> int:
    """The person's note joins the gathering (a second note from them replaces the first);
    how many voices it has now."""
    mine = (await session.execute(select(GroupVoice).where(
        GroupVoice.gathering_id == gathering.id, GroupVoice.user_id == user.id))
            ).scalar_one_or_none()
    if mine is None:
        session.add(GroupVoice(gathering_id=gathering.id, user_id=user.id,
                               input_blob=input_blob, reply_to=reply_to, joined_at=now(),
                               album_yes=False))
    else:
        mine.input_blob, mine.reply_to = input_blob, reply_to
    await session.commit()
    return await count_voices(session, gathering.id)


async def count_voices(session: AsyncSession, gathering_id: int) -> int:
    counted = await session.execute(select(func.count()).select_from(GroupVoice)
                                    .where(GroupVoice.gathering_id == gathering_id))
    return int(counted.scalar_one())


async def voices_of(session: AsyncSession, gathering_id: int) -> list[tuple[GroupVoice, User]]:
    """The voices of a gathering in the order they joined, with who sang each."""
    rows = await session.execute(
        select(GroupVoice, User).join(User, GroupVoice.user_id == User.id)
        .where(GroupVoice.gathering_id == gathering_id)
        .order_by(GroupVoice.joined_at, GroupVoice.id))
    return [(voice, user) for voice, user in rows]


async def close_gathering(session: AsyncSession, gathering_id: int) -> bool:
    """Close an open gathering; True for the one call that closed it."""
    closed = await session.execute(update(Gathering).where(
        Gathering.id == gathering_id, Gathering.status == "open").values(status="closed"))
    await session.commit()
    return bool(closed.rowcount)  # type: ignore[attr-defined]


async def gatherings_due(session: AsyncSession, moment: datetime) -> list[int]:
    """Open gatherings whose time is up, and closed ones not yet made into a song (a process
    stopped between the two)."""
    rows = await session.execute(select(Gathering.id).where(
        ((Gathering.status == "open") & (Gathering.closes_at <= moment))
        | ((Gathering.status == "closed") & Gathering.job_id.is_(None)))
        .order_by(Gathering.id))
    return list(rows.scalars())


async def gatherings_with_voice_of(session: AsyncSession, user_id: int) -> list[int]:
    rows = await session.execute(select(GroupVoice.gathering_id).where(
        GroupVoice.user_id == user_id))
    return sorted(set(rows.scalars()))


async def gathering_of_job(session: AsyncSession, job_id: int) -> Gathering | None:
    found = await session.execute(select(Gathering).where(Gathering.job_id == job_id))
    return found.scalar_one_or_none()


async def say_yes_to_album(session: AsyncSession, gathering_id: int,
                           user_id: int) -> tuple[int, int] | None:
    """A voice of the group song says yes to sharing it: (yeses, voices), or None when the
    person is not one of its voices."""
    said = await session.execute(update(GroupVoice).where(
        GroupVoice.gathering_id == gathering_id, GroupVoice.user_id == user_id)
        .values(album_yes=True))
    await session.commit()
    if not said.rowcount:  # type: ignore[attr-defined]
        return None
    voices = [voice for voice, _ in await voices_of(session, gathering_id)]
    return sum(voice.album_yes for voice in voices), len(voices)


async def invitation_answered(session: AsyncSession, chat_id: int,
                              message_id: str) -> Gathering | None:
    """The gathering whose invitation is this message of the chat."""
    found = await session.execute(select(Gathering).where(
        Gathering.chat_id == chat_id,
        Gathering.reply_to["invitation_id"].as_string() == message_id))
    return found.scalars().first()


async def gathering_and_chat(session: AsyncSession,
                             gathering_id: int) -> tuple[Gathering, Chat] | None:
    found = await session.execute(select(Gathering, Chat).join(
        Chat, Gathering.chat_id == Chat.id).where(Gathering.id == gathering_id))
    row = found.first()
    return (row[0], row[1]) if row is not None else None


async def drop_job(session: AsyncSession, blobs: BlobStore, job_id: int) -> None:
    """Delete a job, what it made, every album its song is in (an album file cannot be cut
    apart) and the files nothing else refers to any more (a group song made again without a
    forgotten voice)."""
    job = await session.get(Job, job_id)
    if job is None:
        return
    theirs = {job.input_blob} if job.input_blob else set()
    for track in (await session.execute(select(Track).where(Track.job_id == job_id))).scalars():
        theirs.update(n for n in (track.audio_blob, track.midi_blob, track.picture_blob,
                                  track.picture_card_blob) if n)
    theirs |= await _drop_albums_with(session, select(Track.id).where(Track.job_id == job_id))
    await session.delete(job)
    await session.commit()
    await _delete_unreferenced(session, blobs, theirs)


async def set_picture(session: AsyncSession, blobs: BlobStore, track_id: int,
                      picture_blob: str) -> bool:
    """Keep a track's picture, drawn when first asked for (its card stays: it is small).
    False when the track went meanwhile (forgotten while it was drawn): the picture's file
    goes too, unless another row refers to it."""
    kept = await session.execute(update(Track).where(Track.id == track_id)
                                 .values(picture_blob=picture_blob)
                                 .execution_options(synchronize_session=False))
    await session.commit()
    if kept.rowcount:  # type: ignore[attr-defined]
        return True
    await _delete_unreferenced(session, blobs, {picture_blob})
    return False


async def track_of_job(session: AsyncSession, job_id: int) -> int | None:
    """The id of the track a job made, if it made one."""
    found = await session.execute(select(Track.id).where(Track.job_id == job_id))
    return found.scalar_one_or_none()


async def group_voice_names(session: AsyncSession,
                            track_ids: Sequence[int]) -> dict[int, list[str]]:
    """For the tracks that are group songs: the names of their voices in join order."""
    rows = await session.execute(
        select(Track.id, User.display_name)
        .join(Gathering, Gathering.job_id == Track.job_id)
        .join(GroupVoice, GroupVoice.gathering_id == Gathering.id)
        .join(User, GroupVoice.user_id == User.id)
        .where(Track.id.in_(list(track_ids)))
        .order_by(Track.id, GroupVoice.joined_at, GroupVoice.id))
    names: dict[int, list[str]] = {}
    for track_id, name in rows:
        names.setdefault(track_id, []).append(name)
    return names


async def track_of_kind(session: AsyncSession, track_id: int, kind: str) -> Track | None:
    """The track, when the job that made it is of this kind (a group song, say)."""
    found = await session.execute(select(Track).join(Job, Track.job_id == Job.id).where(
        Track.id == track_id, Job.kind == kind))
    return found.scalar_one_or_none()


async def track_with_job(session: AsyncSession, track_id: int) -> tuple[Track, Job] | None:
    """A track and the job that made it (a button pressed on it)."""
    found = await session.execute(select(Track, Job).join(Job, Track.job_id == Job.id)
                                  .where(Track.id == track_id))
    row = found.first()
    return (row[0], row[1]) if row is not None else None


async def track_made_by(session: AsyncSession, job_id: int) -> Track | None:
    """The track a job made, if it made one."""
    found = await session.execute(select(Track).where(Track.job_id == job_id))
    return found.scalar_one_or_none()


async def track_by_id(session: AsyncSession, track_id: int) -> Track | None:
    return await session.get(Track, track_id)


async def own_track_with_job(session: AsyncSession, track_id: int, platform: str,
                             platform_user_id: str) -> tuple[Track, Job] | None:
    """A track and its job, when the track is this person's."""
    found = await session.execute(
        select(Track, Job).join(Job, Track.job_id == Job.id)
        .join(User, Track.user_id == User.id)
        .where(Track.id == track_id, User.platform == platform,
               User.platform_user_id == platform_user_id))
    row = found.first()
    return (row[0], row[1]) if row is not None else None


async def track_with_owner(session: AsyncSession, track_id: int) -> tuple[Track, User] | None:
    found = await session.execute(select(Track, User).join(User, Track.user_id == User.id)
                                  .where(Track.id == track_id))
    row = found.first()
    return (row[0], row[1]) if row is not None else None


async def owner_of(session: AsyncSession, track_id: int) -> tuple[str, str] | None:
    """(platform, platform_user_id) of the person whose track this is."""
    found = await session.execute(select(User.platform, User.platform_user_id)
                                  .join(Track, Track.user_id == User.id)
                                  .where(Track.id == track_id))
    row = found.first()
    return (row[0], row[1]) if row is not None else None


async def own_job(session: AsyncSession, job_id: int, platform: str,
                  platform_user_id: str) -> Job | None:
    """A job, when this person asked for it."""
    found = await session.execute(
        select(Job).join(User, Job.user_id == User.id)
        .where(Job.id == job_id, User.platform == platform,
               User.platform_user_id == platform_user_id))
    return found.scalar_one_or_none()


async def queued_ahead_of(session: AsyncSession, job_id: int) -> int:
    """How many queued jobs came in before this one."""
    found = await session.execute(select(func.count()).select_from(Job).where(
        Job.status == JobStatus.QUEUED, Job.id < job_id))
    return int(found.scalar_one())


async def jobs_by_id(session: AsyncSession, job_ids: Sequence[int]) -> dict[int, Job]:
    rows = await session.execute(select(Job).where(Job.id.in_(list(job_ids))))
    return {job.id: job for job in rows.scalars()}


async def job_with_chat(session: AsyncSession, job_id: int) -> tuple[Job, Chat | None] | None:
    """A job and the chat it answers in (None for a job without one)."""
    found = await session.execute(select(Job, Chat).outerjoin(Chat, Job.chat_id == Chat.id)
                                  .where(Job.id == job_id))
    row = found.first()
    return (row[0], row[1]) if row is not None else None


async def unreplied_job_ids(session: AsyncSession, finished_since: datetime) -> list[int]:
    """Jobs that finished since then and whose reply was not sent, oldest first."""
    found = await session.execute(select(Job.id).where(
        Job.status.in_(JobStatus.finished()), Job.replied.is_(False),
        Job.finished_at >= finished_since).order_by(Job.id))
    return list(found.scalars())


async def is_replied(session: AsyncSession, job_id: int) -> bool | None:
    """Whether the job's reply was sent (None: there is no such job)."""
    found = await session.execute(select(Job.replied).where(Job.id == job_id))
    return found.scalar_one_or_none()


async def published_album(session: AsyncSession, week: str | None) -> Album | None:
    """The album of a week (the newest when week is None), once its audio is made."""
    query = select(Album).where(Album.audio_blob.is_not(None))
    query = (query.where(Album.week == week) if week
             else query.order_by(Album.week.desc()).limit(1))
    return (await session.execute(query)).scalar_one_or_none()


async def claim_album_post(session: AsyncSession, week: str) -> bool:
    """True for exactly one caller per album: whoever gets True posts it."""
    claimed = await session.execute(update(Album).where(
        Album.week == week, Album.posted_at.is_(None)).values(posted_at=now()))
    await session.commit()
    return bool(claimed.rowcount)  # type: ignore[attr-defined]


async def gathering_by_id(session: AsyncSession, gathering_id: int) -> Gathering | None:
    return await session.get(Gathering, gathering_id)


async def chat_by_id(session: AsyncSession, chat_id: int) -> Chat | None:
    return await session.get(Chat, chat_id)


async def set_gathering(session: AsyncSession, gathering_id: int, **values: Any) -> None:
    """Set columns of a gathering (its status, its job), if it is still there."""
    gathering = await session.get(Gathering, gathering_id)
    if gathering is not None:
        for name, value in values.items():
            setattr(gathering, name, value)
        await session.commit()


async def share_group_song(session: AsyncSession, track_id: int, owner_id: int) -> None:
    """Every voice said yes: the group song goes into the album pool, its owner consenting."""
    track = await session.get(Track, track_id)
    owner = await session.get(User, owner_id)
    if track is not None and owner is not None:
        track.shared, track.shared_at = True, now()
        owner.album_consent = True
        await session.commit()
