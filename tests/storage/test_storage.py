import asyncio
import hashlib
import json

import pytest
from sqlalchemy import inspect, select, text

from storage.blobs import BlobStore
from storage.database import downgrade, migrate
from storage.models import Job, JobKind, JobStatus, Track, Vote
from storage.queries import (
    chat_for,
    claim_reply,
    count_rows_of,
    forget,
    history,
    idempotency_key,
    referenced_blobs,
    save_track,
    set_picture,
    share,
    submit_job,
    user_for,
)
from tests.database import Database

TABLES = {"users", "chats", "jobs", "tracks", "albums", "album_tracks", "votes"}


async def table_names(engine) -> set[str]:
    async with engine.connect() as connection:
        return set(await connection.run_sync(lambda c: inspect(c).get_table_names()))


async def test_migrations_up_and_down(empty_database) -> None:
    await migrate(empty_database)
    assert await table_names(empty_database) >= TABLES
    await downgrade(empty_database, "base")
    assert not TABLES & await table_names(empty_database)
    await migrate(empty_database)
    assert await table_names(empty_database) >= TABLES


async def insert_ann_and_her_job(database, kind: str, status: str, parameters: str) -> None:
    """User 1 (Ann, on Telegram) and her job 1, written as SQL so that an older schema takes
    them."""
    async with database.begin() as connection:
        await connection.execute(text(
            "INSERT INTO users (id, platform, platform_user_id, display_name, album_consent,"
            " preferred_style, created_at) VALUES (1, 'telegram', '42', 'Ann', false, 'pop',"
            " CURRENT_TIMESTAMP)"))
        await connection.execute(text(
            "INSERT INTO jobs (id, kind, status, idempotency_key, user_id, parameters,"
            " attempts, timings_s, replied, created_at) VALUES (1, :kind, :status, 'k', 1,"
            " :parameters, 0, '{}', false, CURRENT_TIMESTAMP)"),
            {"kind": kind, "status": status, "parameters": parameters})


async def test_a_jobs_answer_moves_out_of_its_parameters_and_back(empty_database) -> None:
    """Migration 0006: how a job is answered (reply_to, private) moves from its parameters
    to columns of its own, and back on downgrade; the engine's parameters stay."""
    asked = {"seed": 3, "voices": [{"name": "Ann", "reply_to": {"message_id": 7}}],
             "reply_to": {"message_id": 9}, "private": False}
    await migrate(empty_database, "0005")
    await insert_ann_and_her_job(empty_database, "group", "queued", json.dumps(asked))
    await migrate(empty_database)
    async with empty_database.connect() as connection:
        row = (await connection.execute(select(Job.parameters, Job.reply_to, Job.private))).one()
    assert row == ({"seed": 3, "voices": [{"name": "Ann"}]}, {"message_id": 9}, False)
    await downgrade(empty_database, "0005")
    async with empty_database.connect() as connection:
        parameters = (await connection.execute(text("SELECT parameters FROM jobs"))).scalar_one()
    parameters = json.loads(parameters) if isinstance(parameters, str) else parameters
    assert parameters == {"seed": 3, "voices": [{"name": "Ann"}],
                          "reply_to": {"message_id": 9}, "private": False}


async def test_a_track_keeps_its_picture_card_from_0007_and_loses_it_on_downgrade(
        empty_database) -> None:
    """Migration 0007: tracks get picture_card_blob (null for those before it, which keep
    their picture_blob); a downgrade drops the column and leaves the rest."""
    await migrate(empty_database, "0006")
    await insert_ann_and_her_job(empty_database, "sing", "done", "{}")
    async with empty_database.begin() as connection:
        await connection.execute(text(
            "INSERT INTO tracks (id, job_id, user_id, audio_blob, picture_blob, duration_s,"
            " shared, created_at) VALUES (1, 1, 1, 'a', 'old-png', 9.5, false,"
            " CURRENT_TIMESTAMP)"))
    await migrate(empty_database)
    async with empty_database.begin() as connection:
        row = (await connection.execute(select(Track.picture_blob, Track.picture_card_blob))).one()
        assert tuple(row) == ("old-png", None)
        await connection.execute(text("UPDATE tracks SET picture_card_blob = 'card'"))
    await downgrade(empty_database, "0006")
    async with empty_database.connect() as connection:
        columns = await connection.run_sync(
            lambda sync: {c["name"] for c in inspect(sync).get_columns("tracks")})
        kept = (await connection.execute(text("SELECT picture_blob FROM tracks"))).scalar_one()
    assert "picture_card_blob" not in columns and "picture_blob" in columns
    assert kept == "old-png"


def test_blob_store(tmp_path) -> None:
    blobs = BlobStore(tmp_path)
    name = blobs.put(b"song")
    assert name == hashlib.sha256(b"song").hexdigest()
    assert blobs.put(b"song") == name and blobs.get(name) == b"song"
    other = blobs.put(b"melody")
    assert blobs.names() == {name, other}
    assert blobs.keep_only([other]) == 1 and blobs.names() == {other}
    for bad in ("../../etc/passwd", "x" * 64, name.upper(), ""):
        with pytest.raises(ValueError, match="not a blob name"):
            blobs.get(bad)
    assert not list(tmp_path.rglob("*.part"))


async def test_a_redelivered_message_makes_one_job(database: Database) -> None:
    async with database.sessions() as session:
        user = await user_for(session, "telegram", "42", "Ann")
        chat = await chat_for(session, "telegram", "42")
        key = idempotency_key("telegram", "42", "1001")
        first, created = await submit_job(session, key=key, kind="sing", user=user, chat=chat)
        again, created_again = await submit_job(session, key=key, kind="sing", user=user)
    assert created and not created_again and first.id == again.id


async def test_a_reply_is_claimed_once(database: Database) -> None:
    async with database.sessions() as session:
        user = await user_for(session, "discord", "5")
        job, _ = await submit_job(session, key="discord:5:1", kind="melody", user=user)

    async def claim() -> bool:
        async with database.sessions() as session:
            return await claim_reply(session, job.id)

    assert sorted(await asyncio.gather(*(claim() for _ in range(10)))) == [False] * 9 + [True]


async def test_concurrent_submissions_none_lost_none_doubled(database: Database) -> None:
    """200 messages from 50 people at once, each delivered twice."""

    async def send(person: int, message: int) -> tuple[int, bool]:
        async with database.sessions() as session:
            user = await user_for(session, "discord", str(person), f"p{person}")
            job, created = await submit_job(
                session, key=idempotency_key("discord", str(person), str(message)),
                kind="melody", user=user)
            return job.id, created

    results = await asyncio.gather(*(send(i % 50, i) for _ in range(2) for i in range(200)))
    assert len({job_id for job_id, _ in results}) == 200
    assert sum(created for _, created in results) == 200
    async with database.sessions() as session:
        assert len((await session.execute(select(Job))).scalars().all()) == 200


async def make_track(database: Database, user, message: str, audio: bytes) -> Track:
    async with database.sessions() as session:
        job, _ = await submit_job(session, key=idempotency_key("web", "c", message),
                                  kind="sing", user=user,
                                  input_blob=database.blobs.put(b"in-" + audio))
        return await save_track(session, job, audio_blob=database.blobs.put(audio),
                                midi_blob=database.blobs.put(b"mid-" + audio),
                                picture_blob=None, duration_s=3.0, key="C major",
                                tempo_bpm=100.0)


async def test_history_and_share(database: Database) -> None:
    async with database.sessions() as session:
        ann = await user_for(session, "web", "ann")
        bob = await user_for(session, "web", "bob")
    tracks = [await make_track(database, ann, f"m{i}", f"song {i}".encode()) for i in range(12)]
    async with database.sessions() as session:
        latest = await history(session, ann)
        assert [t.id for t in latest] == [t.id for t in reversed(tracks)][:10]
        assert await share(session, bob, tracks[0].id) is None  # not his
        shared = await share(session, ann, tracks[0].id)
        assert shared is not None and shared.shared and shared.shared_at is not None


async def test_forget_leaves_nothing_of_that_person(database: Database) -> None:
    async with database.sessions() as session:
        ann = await user_for(session, "telegram", "1", "Ann")
        bob = await user_for(session, "telegram", "2", "Bob")
    mine = await make_track(database, ann, "a1", b"ann's song")
    await make_track(database, ann, "a2", b"a song both sent")
    theirs = await make_track(database, bob, "b1", b"a song both sent")
    async with database.sessions() as session:
        session.add_all([Vote(track_id=theirs.id, user_id=ann.id),
                         Vote(track_id=mine.id, user_id=bob.id)])
        await session.commit()
        deleted = await forget(session, database.blobs, ann)
        assert await count_rows_of(session, ann.id) == 0
        assert (await session.execute(select(Vote))).scalars().all() == []
        assert await count_rows_of(session, bob.id) == 3  # Bob, his job and his track stay
        # Ann's own blobs are gone; the song Bob sent too stays for him.
        assert database.blobs.names() == await referenced_blobs(session)
        assert database.blobs.exists(theirs.audio_blob)
        assert not database.blobs.exists(mine.audio_blob)
        assert deleted == 3  # input, song and MIDI of "a1"; "a2" is byte-equal to Bob's


async def test_forget_takes_a_songs_picture_card_and_its_drawn_picture(
        database: Database) -> None:
    """The card kept with a song and the picture drawn from it when asked for are the
    person's files too; a picture drawn for a song forgotten meanwhile is not kept."""
    async with database.sessions() as session:
        ann = await user_for(session, "telegram", "1", "Ann")
        job, _ = await submit_job(session, key="picture-card", kind="sing", user=ann)
        track = await save_track(session, job, audio_blob=database.blobs.put(b"song"),
                                 midi_blob=None, picture_blob=None, duration_s=3.0,
                                 picture_card_blob=database.blobs.put(b'{"kind":"voice"}'))
        assert await set_picture(session, database.blobs, track.id,
                                 database.blobs.put(b"png"))
        stored = await session.get(Track, track.id, populate_existing=True)
        assert stored is not None and stored.picture_blob == database.blobs.put(b"png")
        assert await forget(session, database.blobs, ann) == 3  # song, card, picture
        assert database.blobs.names() == set()
        late = database.blobs.put(b"drawn while it was forgotten")
        assert not await set_picture(session, database.blobs, track.id, late)
        assert not database.blobs.exists(late)


async def test_the_migrations_make_exactly_the_models_tables(empty_database) -> None:
    """Every change to storage/models.py has its migration (nothing missing, nothing extra)."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from storage.models import Base

    await migrate(empty_database)
    async with empty_database.connect() as connection:
        differences = await connection.run_sync(
            lambda sync: compare_metadata(MigrationContext.configure(sync), Base.metadata))
    assert differences == []


async def test_job_kinds_and_statuses_are_stored_as_their_words(database: Database) -> None:
    """Every JobKind and JobStatus fits its column and reads back as its plain word, equal to
    the member (rows written before the enums read the same)."""
    async with database.sessions() as session:
        user = await user_for(session, "web", "enums")
        session.add_all(Job(kind=kind, status=status, idempotency_key=f"web:{kind}:{status}",
                            user_id=user.id, parameters={})
                        for kind in JobKind for status in JobStatus)
        await session.commit()
        rows = (await session.execute(select(Job.kind, Job.status))).all()
    assert sorted((kind, status) for kind, status in rows) == sorted(
        (kind.value, status.value) for kind in JobKind for status in JobStatus)
    assert {type(kind) for kind, _ in rows} == {str}
