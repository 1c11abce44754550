"""The nightly curation and the weekly album through the real storage, engine and (for the
posting) the real Telegram and Discord clients against their fakes."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy import select

from bot.adapters.discord import DiscordAdapter
from bot.adapters.telegram import TelegramAdapter
from bot.cli import main
from bot.commands import PIANO_STAYS_OUT, Message, Person, Place
from bot.jobs import LOOSE_LIMITS, close_worker_threads, measure
from bot.scheduler import AlbumSettings, Scheduler, build_album, run_curation
from bot.service import Service, open_service
from bot.weeks import last_week, week_bounds, week_of
from engine import pipeline
from engine.errors import InvalidRequest
from engine.theory import parse_key
from storage import queries
from storage.models import Album, AlbumTrack, Track, User
from tests.bot.commands.test_commands import RecordingOutbox
from tests.bot.service import service_settings
from tests.fakes.discord_api import TEXT_CHANNEL_ID, FakeDiscord
from tests.fakes.telegram_api import FakeTelegram

WEEK = "2026-W46"  # Monday 9 to Sunday 15 November 2026
IN_WEEK = datetime(2026, 11, 11, 12, tzinfo=UTC)
AFTER_WEEK = datetime(2026, 11, 16, 10, tzinfo=UTC)  # Monday, after the album hour (9 UTC)
TIMEOUT_S = 60


@pytest.fixture(scope="module")
def songs() -> list[tuple[bytes, str, float]]:
    """Five real, different short pieces (melodies with a band) as OGG: (audio, key, tempo)."""
    made = []
    for seed, key, style in ((1, "C major", "pop"), (2, "G major", "ballad"),
                             (3, "A minor", "lofi"), (4, "F major", "pop"),
                             (5, "D minor", "robot")):
        piece = pipeline.melody(seed=seed, key=parse_key(key), bars=4, tempo_bpm=120.0,
                                formats=("ogg",), style=style)
        made.append((piece.files["ogg"], key, 120.0))
    return made


async def shared_track(service: Service, person: str, song: tuple[bytes, str | None, float],
                       *,
                       consent: bool = True, shared: bool = True,
                       shared_at: datetime = IN_WEEK, measured: bool = True) -> Track:
    audio, key, tempo = song
    async with service.sessions() as session:
        user = await queries.user_for(session, "test", person, person.capitalize())
        user.album_consent = consent
        count = len(await queries.history(session, user, limit=100))
        job, _ = await queries.submit_job(session, key=f"test:{person}:{count}",
                                          kind="melody", user=user)
        track = await queries.save_track(
            session, job, audio_blob=service.blobs.put(audio), midi_blob=None,
            picture_blob=None, duration_s=8.0, key=key, tempo_bpm=tempo,
            features=measure(audio, key, tempo, downbeat_s=0.0) if measured else None)
        track.shared, track.shared_at = shared, shared_at if shared else None
        await session.commit()
        return track


async def album_tracks(service: Service) -> list[int]:
    async with service.sessions() as session:
        rows = await session.execute(select(AlbumTrack.track_id).order_by(AlbumTrack.position))
        return list(rows.scalars())


def test_weeks() -> None:
    assert week_of(IN_WEEK) == WEEK and last_week(AFTER_WEEK) == WEEK
    start, end = week_bounds(WEEK)
    assert start == datetime(2026, 11, 9, tzinfo=UTC) and (end - start).days == 7
    for bad in ("2026-47", "2026-W60", "next week"):
        with pytest.raises(InvalidRequest):
            week_bounds(bad)


async def test_the_album_holds_only_what_consenting_people_shared_that_week(
        service: Service, songs: list[tuple[bytes, str, float]]) -> None:
    alice = await shared_track(service, "alice", songs[0])
    bob = await shared_track(service, "bob", songs[1])
    await shared_track(service, "carol", songs[2], shared=False)  # kept to herself
    await shared_track(service, "dave", songs[3], consent=False)  # shared, then withdrew
    await shared_track(service, "erin", songs[4], shared_at=AFTER_WEEK)  # the week after

    report = await build_album(service.sessions, service.blobs, WEEK)
    assert report["created"] and report["candidates"] == 2
    assert sorted(await album_tracks(service)) == sorted([alice.id, bob.id])
    titles = {track["title"] for track in report["tracks"]}
    assert titles == {f"Song #{alice.id} by Alice", f"Song #{bob.id} by Bob"}
    chapters = [(t["start_s"], t["end_s"]) for t in report["tracks"]]
    assert chapters[0][0] == 0 and chapters[0][1] == chapters[1][0]
    assert chapters[-1][1] == pytest.approx(report["duration_s"], abs=0.01)

    again = await build_album(service.sessions, service.blobs, WEEK)  # idempotent
    assert not again["created"] and again["album_id"] == report["album_id"]
    async with service.sessions() as session:
        album = (await session.execute(select(Album))).scalar_one()
    assert service.blobs.get(album.audio_blob or "")[:4] == b"OggS"
    assert service.blobs.get(album.mp3_blob or "")[:3] == b"ID3"
    assert service.blobs.get(album.cover_blob or "")[:4] == b"\x89PNG"


async def test_forget_takes_a_person_out_of_future_albums_and_copies_collapse(
        service: Service, songs: list[tuple[bytes, str, float]]) -> None:
    await shared_track(service, "alice", songs[0])
    bob = await shared_track(service, "bob", songs[1])
    copy = await shared_track(service, "carol", songs[1])  # Bob's song, shared again
    forgotten = await service.commands.press(Person("test", "alice"), Place("test", "alice"),
                                             "forget:yes", "p1", {})
    assert forgotten.text.startswith("Done")
    report = await build_album(service.sessions, service.blobs, WEEK,
                               AlbumSettings(size=10, per_person=2))
    assert await album_tracks(service) in ([bob.id], [copy.id])
    assert report["candidates"] == 2


async def test_a_piano_version_stays_out_of_the_album(
        service: Service, songs: list[tuple[bytes, str, float]]) -> None:
    alice = await shared_track(service, "alice", songs[0])
    piano = await shared_track(service, "bob", (songs[1][0], None, 120.0))  # no key: piano
    report = await build_album(service.sessions, service.blobs, WEEK)
    assert await album_tracks(service) == [alice.id] and report["candidates"] == 1
    said = await service.commands.share(Person("test", "bob"), str(piano.id))
    assert said.text == PIANO_STAYS_OUT
    async with service.sessions() as session:
        stored = await session.get(Track, piano.id)
        assert stored is not None and not stored.shared


async def test_a_song_without_a_name_is_credited_to_a_singsong_singer(
        service: Service, songs: list[tuple[bytes, str, float]]) -> None:
    async with service.sessions() as session:
        await queries.user_for(session, "test", "nameless")
    track = await shared_track(service, "nameless", songs[0])
    async with service.sessions() as session:
        user = (await session.execute(select(User).filter_by(platform_user_id="nameless"))
                ).scalar_one()
        user.display_name = ""
        await session.commit()
    report = await build_album(service.sessions, service.blobs, WEEK)
    assert [t["title"] for t in report["tracks"]] == [f"Song #{track.id} by a SingSong singer"]
    view = await service.commands.album_view(WEEK)
    assert view is not None and view.tracks[0].credit == "a SingSong singer"
    said = await service.commands.handle(Message(Person("telegram", "7", "Tina"),
                                                 Place("telegram", "7"), "n1", command="name",
                                                 text="Someone Else"))
    assert said.text == "The album credits you by your Telegram name (Tina)."


async def test_nobody_shared_nothing_is_made(service: Service) -> None:
    report = await build_album(service.sessions, service.blobs, WEEK)
    assert report["album_id"] is None and not report["created"]
    async with service.sessions() as session:
        assert (await session.execute(select(Album))).first() is None


async def test_curation_measures_what_is_missing_and_marks_what_cannot_be(
        service: Service, songs: list[tuple[bytes, str, float]]) -> None:
    good = await shared_track(service, "alice", songs[0], measured=False)
    broken = await shared_track(service, "bob", (b"not audio at all", "C major", 100.0),
                                measured=False)
    report = await run_curation(service.sessions, service.blobs, IN_WEEK)
    assert report["measured"] == 2 and report["failed"] == 1
    assert [c["track_id"] for c in report["candidates"]] == [good.id]
    async with service.sessions() as session:
        tracks = {t.id: t for t in (await session.execute(select(Track))).scalars()}
    assert "failed" in (tracks[broken.id].features or {})
    assert (tracks[good.id].features or {}).get("key") == "C major"
    again = await run_curation(service.sessions, service.blobs, IN_WEEK)
    assert again["measured"] == 0


async def test_a_finished_job_is_measured_at_ingest(service: Service) -> None:
    reply = await service.commands.handle(Message(Person("test", "alice"),
                                                  Place("test", "alice"), "1",
                                                  command="melody", text="E minor"))
    await service.jobs.wait()
    async with service.sessions() as session:
        track = (await session.execute(select(Track))).scalar_one()
    assert reply.job_id is not None
    assert track.features is not None and track.features["key"] == "E minor"
    assert len(track.features["fingerprint"]) > 20


async def test_the_scheduler_builds_and_posts_the_album_once_to_telegram_and_discord(
        service: Service, songs: list[tuple[bytes, str, float]], tmp_path: Path) -> None:
    for person, song in zip(("alice", "bob", "carol"), songs, strict=False):
        await shared_track(service, person, song)
    discord_server = FakeDiscord()
    await discord_server.start()
    async with FakeTelegram("555:album-token") as telegram_server:
        settings = service.settings.model_copy(update={
            "telegram_token": SecretStr("555:album-token"),
            "telegram_base_url": telegram_server.base_url,
            "telegram_base_file_url": telegram_server.base_file_url,
            "discord_token": SecretStr(discord_server.token),
            "discord_api_base": discord_server.api_base,
            "discord_album_channel_id": TEXT_CHANNEL_ID})
        telegram = TelegramAdapter(service.commands, settings)
        discord = DiscordAdapter(service.commands, settings, guild_ready_timeout_s=0.05)
        await telegram.start()
        await discord.start()
        service.commands.attach("telegram", telegram)
        service.commands.attach("discord", discord)
        try:
            await telegram_server.text(7, -3003, "/album on", chat_type="group")
            await telegram_server.wait_for(lambda call: call.method == "sendMessage" and (
                "posted here" in call.params["text"]), TIMEOUT_S)
            clock = [datetime(2026, 11, 16, 8, tzinfo=UTC)]  # Monday, before the album hour
            scheduler = Scheduler(service.sessions, service.blobs, service.commands, settings,
                                  clock=lambda: clock[0])
            before = await scheduler.tick()
            assert "curate" in before and "album" not in before
            clock[0] = AFTER_WEEK
            ran = await scheduler.tick()
            assert ran["album"]["created"] and len(ran["album"]["tracks"]) == 3
            assert ran["posted"] == 2
            assert (await scheduler.tick())["posted"] == 0  # once
            sent = await telegram_server.wait_for(
                lambda call: call.method == "sendAudio" and call.ok, TIMEOUT_S)
            assert int(sent.params["chat_id"]) == -3003
            assert sent.files["audio"].data[:3] == b"ID3"
            posted = await discord_server.wait_for(
                lambda call: call.path == f"/channels/{TEXT_CHANNEL_ID}/messages"
                and any(f.filename.endswith(".mp3") for f in call.files), TIMEOUT_S)
            assert WEEK in json.dumps(posted.json)
        finally:
            await discord.stop()
            await telegram.stop()
            await discord_server.close()


def test_the_command_line_builds_a_week_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("SINGSONG_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("SINGSONG_DATABASE_URL", raising=False)
    assert main(["curate", "--json"]) == 0
    curated: dict[str, Any] = json.loads(capsys.readouterr().out)
    assert curated["measured"] == 0 and curated["candidates"] == []
    assert main(["album", "build", "--week", WEEK, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["album_id"] is None
    assert main(["album", "build", "--week", "soon"]) == 2
    assert "YYYY-Www" in capsys.readouterr().err


async def test_forget_takes_a_voice_out_of_the_albums_it_is_in(
        service: Service, songs: list[tuple[bytes, str, float]]) -> None:
    await shared_track(service, "alice", songs[0])
    bob = await shared_track(service, "bob", songs[1])
    await build_album(service.sessions, service.blobs, WEEK)
    async with service.sessions() as session:
        album = (await session.execute(select(Album))).scalar_one()
    files = [album.audio_blob, album.mp3_blob, album.cover_blob]
    await service.commands.press(Person("test", "alice"), Place("test", "alice"),
                                 "forget:yes", "p1", {})
    async with service.sessions() as session:
        assert (await session.execute(select(Album))).first() is None
    assert not any(service.blobs.exists(name or "") for name in files)
    rebuilt = await build_album(service.sessions, service.blobs, WEEK)
    assert rebuilt["created"]
    assert await album_tracks(service) == [bob.id]


async def test_only_an_admin_can_publish_an_album_from_a_chat(
        tmp_path: Path, songs: list[tuple[bytes, str, float]]) -> None:
    executor = ThreadPoolExecutor(1)
    service = await open_service(service_settings(tmp_path, admin_ids="web:boss"),
                                 executor=executor, limits=LOOSE_LIMITS, seed=1)
    outbox = RecordingOutbox()
    service.commands.attach("web", outbox)
    try:
        await service.start()
        await shared_track(service, "alice", songs[0])
        await service.commands.album(Place("web", "group", private=False), "on")
        publish = Message(Person("web", "mallory"), Place("web", "group", False), "1",
                          command="album", text=f"publish {WEEK}")
        assert "Only SingSong's admins" in (await service.commands.handle(publish)).text
        boss = Message(Person("web", "boss"), Place("web", "group", False), "2",
                       command="album", text=f"publish {WEEK}")
        done = await service.commands.handle(boss)
        assert f"album of {WEEK} is made (1 songs); posted to 1 chats" in done.text
        assert outbox.sent[0][1].files[0].filename == f"singsong-album-{WEEK}.mp3"
        again = await service.commands.handle(boss)
        assert "already there" in again.text and "posted to 0 chats" in again.text
    finally:
        await service.close()
        executor.shutdown()
        close_worker_threads()
