"""The web chat's JSON API over HTTP, against the real service (real engine in threads)."""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import pytest
from sqlalchemy import select

from bot.adapters.web import COOKIE, WebAdapter
from bot.commands import Commands
from bot.jobs import JobResult, Limits, close_worker_threads, run_engine
from bot.scheduler import build_album
from bot.service import Service, open_service
from bot.weeks import week_of
from storage import queries
from storage.models import Album, AlbumTrack, Job, Track, User
from tests.bot.service import TEST_SEED, service_settings
from tests.conftest import ffmpeg_make

TIMEOUT_S = 120
PNG = b"\x89PNG\r\n\x1a\n"
WEEK = "2026-W47"
ALBUM_RATE = 48000


@asynccontextmanager
async def running_web(service: Service) -> AsyncIterator[WebAdapter]:
    """The adapter on a free port of 127.0.0.1, attached to the service."""
    settings = service.settings.model_copy(update={"web_port": 0})
    adapter = WebAdapter(service.commands, settings)
    service.commands.attach("web", adapter)
    await adapter.start()
    try:
        yield adapter
    finally:
        await adapter.stop()


@asynccontextmanager
async def browser(web: WebAdapter) -> AsyncIterator[aiohttp.ClientSession]:
    """One browser: its own cookie jar (the jar takes cookies from an IP address)."""
    async with aiohttp.ClientSession(base_url=web.url,
                                     cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        yield session


@dataclass(frozen=True)
class AlbumSong:
    ogg: bytes
    duration_s: float
    key: str


@dataclass(frozen=True)
class AlbumMedia:
    """What an album test stores: two real songs, the album file joined from them (OGG/Opus
    and MP3) and a PNG cover."""

    songs: tuple[AlbumSong, AlbumSong]
    ogg: bytes
    mp3: bytes
    cover: bytes

    @property
    def chapters(self) -> list[tuple[float, float]]:
        """(start s, end s) of each song in the album file."""
        first = self.songs[0].duration_s
        return [(0.0, first), (first, first + self.songs[1].duration_s)]


@functools.cache
def album_media() -> AlbumMedia:
    """Two short seeded melodies from the engine (piano and band, 4 bars each), joined as an
    album would be; made once per test run (a few seconds)."""
    from engine import audio, picture, pipeline

    pieces = [pipeline.melody(seed=seed, bars=4, formats=("ogg",), style=style)
              for seed, style in ((3, None), (4, "lofi"))]
    decoded = [audio.decode(piece.files["ogg"], sample_rate=ALBUM_RATE) for piece in pieces]
    songs = tuple(AlbumSong(piece.files["ogg"], clip.duration_s,
                            str(pipeline.melody_summary(piece.melody)["key"]))
                  for piece, clip in zip(pieces, decoded, strict=True))
    joined = np.concatenate([clip.samples for clip in decoded])
    return AlbumMedia((songs[0], songs[1]), audio.encode(joined, ALBUM_RATE, "ogg"),
                      audio.encode(joined, ALBUM_RATE, "mp3"),
                      picture.piano_roll_png(pieces[0].melody, title=f"SingSong {WEEK}"))


async def make_album(service: Service, week: str = WEEK,
                     parts: tuple[str, ...] = ("audio", "mp3", "cover")) -> AlbumMedia:
    """Store a week's album as the weekly run would: Alice's and Bob's shared songs (tracks
    of Telegram users with display names), the album's files and its chapters."""
    media, blobs = album_media(), service.blobs
    async with service.sessions() as session:
        track_ids = []
        for number, (name, song) in enumerate(zip(("Alice", "Bob"), media.songs, strict=True)):
            user = await queries.user_for(session, "telegram", f"{week}-{number}", name)
            user.album_consent = True
            job, _ = await queries.submit_job(session, key=f"album-test:{week}:{number}",
                                              kind="melody", user=user)
            track = await queries.save_track(session, job, audio_blob=blobs.put(song.ogg),
                                             midi_blob=None, picture_blob=None,
                                             duration_s=song.duration_s, key=song.key)
            track.shared = True
            track_ids.append(track.id)
        album = Album(week=week, duration_s=sum(song.duration_s for song in media.songs),
                      audio_blob=blobs.put(media.ogg) if "audio" in parts else None,
                      mp3_blob=blobs.put(media.mp3) if "mp3" in parts else None,
                      cover_blob=blobs.put(media.cover) if "cover" in parts else None)
        session.add(album)
        await session.flush()
        session.add_all(AlbumTrack(album_id=album.id, track_id=track_id, position=position,
                                   start_s=start_s, end_s=end_s)
                        for position, (track_id, (start_s, end_s))
                        in enumerate(zip(track_ids, media.chapters, strict=True), 1))
        await session.commit()
    return media


def clip_form(kind: str, data: bytes, filename: str = "voice.ogg") -> aiohttp.FormData:
    form = aiohttp.FormData()
    form.add_field("kind", kind)
    form.add_field("audio", data, filename=filename, content_type="application/octet-stream")
    return form


async def start_job(session: aiohttp.ClientSession, path: str = "/api/jobs", *,
                    form: aiohttp.FormData | None = None,
                    body: dict[str, Any] | None = None) -> dict[str, Any]:
    async with session.post(path, data=form, json=body) as response:
        job: dict[str, Any] = await response.json()
        assert response.status == 202, job
        assert response.headers["Location"] == f"/api/jobs/{job['id']}"
    assert job["status"] in ("queued", "running", "done", "failed")
    assert job["message"]
    return job


async def finished_job(service: Service, session: aiohttp.ClientSession,
                       job: dict[str, Any]) -> dict[str, Any]:
    """The job once the core has answered it, as the page's poll sees it then."""
    async with asyncio.timeout(TIMEOUT_S):
        await service.commands.answered(job["id"])
    async with session.get(job["url"]) as response:
        assert response.status == 200
        seen: dict[str, Any] = await response.json()
    assert seen["status"] in ("done", "failed"), seen
    return seen


async def song_from(service: Service, session: aiohttp.ClientSession, *,
                    form: aiohttp.FormData | None = None,
                    body: dict[str, Any] | None = None) -> dict[str, Any]:
    """A finished song's track (the job must succeed)."""
    job = await finished_job(service, session, await start_job(session, form=form, body=body))
    assert job["status"] == "done", job
    track: dict[str, Any] = job["track"]
    return track


async def fetch(session: aiohttp.ClientSession, url: str,
                headers: dict[str, str] | None = None) -> tuple[int, bytes, dict[str, str]]:
    async with session.get(url, headers=headers) as response:
        return response.status, await response.read(), dict(response.headers)


async def error_of(response: aiohttp.ClientResponse) -> str:
    assert response.content_type == "application/json"
    body = await response.json()
    message: str = body["error"]
    assert message and message[0].isupper() and message.endswith((".", "!", "?")), message
    return message


async def test_a_voice_clip_becomes_a_song_with_its_files(
        service: Service, alice: aiohttp.ClientSession, speech_clip: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    track = await song_from(service, alice, form=clip_form("sing", speech_clip.read_bytes()))

    assert track["kind"] == "sing"
    assert track["parts"] == ["audio", "midi", "picture"]
    assert track["duration_s"] > 5
    status, audio, headers = await fetch(alice, track["urls"]["audio"])
    assert status == 200 and audio.startswith(b"OggS")
    assert headers["Content-Type"] == "audio/ogg"
    assert headers["Content-Disposition"] == f'inline; filename="singsong-{track["id"]}.ogg"'
    status, midi, headers = await fetch(alice, track["urls"]["midi"] + "?download=1")
    assert status == 200 and midi.startswith(b"MThd")
    assert headers["Content-Type"] == "audio/midi"
    assert headers["Content-Disposition"] == (
        f'attachment; filename="singsong-{track["id"]}.mid"')
    assert await picture_blob_of(service, track["id"]) is None  # not drawn with the song
    status, picture, headers = await fetch(alice, track["urls"]["picture"])
    assert status == 200 and picture.startswith(PNG)
    assert headers["Content-Type"] == "image/png"
    assert service.blobs.get(await picture_blob_of(service, track["id"]) or "") == picture
    monkeypatch.setattr("engine.picture.draw", lambda card: b"drawn again")
    assert (await fetch(alice, track["urls"]["picture"]))[:2] == (200, picture)  # the kept one
    # An <audio> element seeking asks for byte ranges.
    status, part, headers = await fetch(alice, track["urls"]["audio"], {"Range": "bytes=4-9"})
    assert (status, part) == (206, audio[4:10])
    assert headers["Content-Range"] == f"bytes 4-9/{len(audio)}"


async def picture_blob_of(service: Service, track_id: int) -> str | None:
    async with service.sessions() as session:
        track = await session.get(Track, track_id)
    assert track is not None
    return track.picture_blob


async def test_the_browser_gets_a_private_cookie_and_safe_headers(
        alice: aiohttp.ClientSession) -> None:
    async with alice.get("/") as response:
        assert response.status == 200
        assert "<title>SingSong</title>" in await response.text()
        cookie = response.cookies[COOKIE]
        policy = response.headers["Content-Security-Policy"]
        assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert len(cookie.value) == 32 and int(cookie.value, 16) >= 0  # 128 bits, hex
    assert cookie["httponly"] and cookie["samesite"] == "Lax"
    assert "default-src 'self'" in policy and "media-src 'self' blob:" in policy
    async with alice.get("/static/app.js") as response:
        assert response.status == 200
        assert response.headers["X-Content-Type-Options"] == "nosniff"
    async with alice.get("/api/history") as response:
        assert COOKIE not in response.cookies  # the same browser keeps its id
        assert response.headers["Cache-Control"] == "no-store"


async def test_lyrics_are_sung(service: Service, alice: aiohttp.ClientSession) -> None:
    track = await song_from(service, alice, body={"kind": "lyrics",
                                                  "text": "sunshine on the morning train"})

    assert track["kind"] == "lyrics"
    status, audio, _ = await fetch(alice, track["urls"]["audio"])
    assert status == 200 and audio.startswith(b"OggS")


async def job_parameters(service: Service, job_id: int) -> dict[str, Any]:
    async with service.sessions() as session:
        job = (await session.execute(select(Job).where(Job.id == job_id))).scalar_one()
    return dict(job.parameters)


async def test_lyrics_in_the_form_asked_for_and_the_browsers_language(
        service: Service, alice: aiohttp.ClientSession) -> None:
    job = await finished_job(service, alice, await start_job(alice, body={
        "kind": "lyrics", "text": "Hola amigos, vamos a cantar esta canción juntos",
        "form": "short",
        "language": "es-ES"}))
    track = job["track"]
    assert (track["form"], track["sections"] != [], track["about"]) == (
        "short", True, "Sung in Spanish.")
    assert track["language"] == {"code": "es", "name": "Spanish", "chosen_by": "text"}
    parameters = await job_parameters(service, job["id"])
    assert (parameters["form"], parameters["language"]) == ("short", "es-ES")

    full = await finished_job(service, alice,
                              await start_job(alice, f"/api/tracks/{track['id']}/full"))
    assert full["track"]["form"] == "full" and full["track"]["about"].endswith(
        "Sung in Spanish.")
    assert (await job_parameters(service, full["id"]))["seed"] == parameters["seed"]


@pytest.mark.parametrize(("field", "value", "says"), [
    ("form", "medium", "full or short"),
    ("language", "<script>", "language tag"),
])
async def test_a_bad_form_or_language_is_refused_with_a_sentence(
        alice: aiohttp.ClientSession, field: str, value: str, says: str) -> None:
    body = {"kind": "lyrics", "text": "hello there", field: value}
    async with alice.post("/api/jobs", json=body) as response:
        assert response.status == 400
        assert says in await error_of(response)


async def test_the_short_version_of_a_song(service: Service, alice: aiohttp.ClientSession,
                                           short_speech_clip: Path) -> None:
    form = clip_form("sing", short_speech_clip.read_bytes(), "take.wav")
    track = await song_from(service, alice, form=form)
    assert track["form"] == "full" and track["language"] is None
    assert "chorus" in {s["name"] for s in track["sections"]}

    job = await finished_job(service, alice,
                             await start_job(alice, f"/api/tracks/{track['id']}/short"))
    assert (job["status"], job["kind"], job["track"]["form"]) == ("done", "sing", "short")
    assert (await job_parameters(service, job["id"]))["form"] == "short"
    async with alice.get("/api/history") as response:
        assert [t["form"] for t in (await response.json())["tracks"]] == ["short", "full"]
    async with alice.get("/api/options") as response:
        assert (await response.json())["forms"] == ["full", "short"]


async def test_a_melody_in_the_key_and_style_asked_for(
        service: Service, alice: aiohttp.ClientSession) -> None:
    form = aiohttp.FormData({"kind": "melody", "key": "A minor", "style": "lofi"})
    track = await song_from(service, alice, form=form)

    assert (track["kind"], track["key"]) == ("melody", "A minor")
    status, midi, _ = await fetch(alice, track["urls"]["midi"])
    assert status == 200 and midi.startswith(b"MThd")


async def test_a_bad_key_is_refused_with_a_sentence(alice: aiohttp.ClientSession) -> None:
    async with alice.post("/api/jobs", json={"kind": "melody", "key": "Q flat"}) as response:
        assert response.status == 400
        assert "key" in (await error_of(response)).lower()


@pytest.mark.parametrize(("kind", "body", "says"), [
    ("jazz", {"kind": "jazz"}, "kind"),
    ("sing", {"kind": "sing"}, "audio clip"),
    ("piano", {"kind": "piano"}, "audio clip"),
    ("lyrics", {"kind": "lyrics", "text": "   "}, "words"),
])
async def test_incomplete_requests_say_what_is_missing(
        alice: aiohttp.ClientSession, kind: str, body: dict[str, str], says: str) -> None:
    async with alice.post("/api/jobs", json=body) as response:
        assert response.status == 400
        assert says in await error_of(response)
    async with alice.post("/api/jobs", data=b"kind=" + kind.encode(),
                          headers={"Content-Type": "text/plain"}) as response:
        assert response.status == 415  # neither a form nor JSON
        await error_of(response)


async def test_not_audio_and_silence_fail_with_a_clear_error(
        service: Service, alice: aiohttp.ClientSession) -> None:
    silence = ffmpeg_make("-f", "lavfi", "-i", "anullsrc=r=48000:cl=mono", "-t", "3",
                          "-c:a", "libopus", suffix=".ogg")
    for data, says in ((b"this is a text file, not a voice note\n" * 40, "not audio"),
                       (silence, "")):
        job = await finished_job(service, alice,
                                 await start_job(alice, form=clip_form("sing", data)))
        assert job["status"] == "failed" and job["track"] is None
        error = job["error"]
        assert error[0].isupper() and error.endswith(".")
        assert says in error and "send" in error and "wrong" not in error, error


async def test_a_clip_over_the_limit_is_refused_with_413(
        alice: aiohttp.ClientSession) -> None:
    limit = Commands.MAX_CLIP_BYTES
    # Just over the limit: read, measured, refused. Far over it: aiohttp refuses the body.
    for size in (limit + 1, limit + 1024 * 1024):
        async with alice.post("/api/jobs", data=clip_form("sing", bytes(size))) as response:
            assert response.status == 413
            message = await error_of(response)
            assert "MB" in message and "at most" in message, message


async def test_someone_elses_jobs_and_songs_are_not_found(
        service: Service, alice: aiohttp.ClientSession, bob: aiohttp.ClientSession) -> None:
    job = await finished_job(service, alice,
                             await start_job(alice, body={"kind": "melody", "key": "C"}))
    track_id = job["track"]["id"]

    async with bob.get(job["url"]) as response:
        assert response.status == 404
        await error_of(response)
    for part in ("audio", "midi", "picture"):
        async with bob.get(f"/api/tracks/{track_id}/{part}") as response:
            assert response.status == 404
    for action in ("share", "another", "piano"):
        async with bob.post(f"/api/tracks/{track_id}/{action}") as response:
            assert response.status == 404
            await error_of(response)
    async with bob.get("/api/history") as response:
        assert (await response.json())["tracks"] == []
    async with alice.get("/api/history") as response:
        assert [t["id"] for t in (await response.json())["tracks"]] == [track_id]
    async with alice.get(f"/api/tracks/{track_id}/sheet") as response:
        assert response.status == 404
    async with alice.get("/api/jobs/999999") as response:
        assert response.status == 404


async def test_sharing_puts_a_song_in_the_pool_that_others_may_hear(
        service: Service, alice: aiohttp.ClientSession, bob: aiohttp.ClientSession) -> None:
    track = await song_from(service, alice, body={"kind": "melody"})

    async with alice.post(f"/api/tracks/{track['id']}/share") as response:
        assert response.status == 200
        assert "album" in (await response.json())["message"]
    async with alice.get("/api/history") as response:
        assert (await response.json())["tracks"][0]["shared"] is True
    status, audio, _ = await fetch(bob, track["urls"]["audio"])
    assert status == 200 and audio.startswith(b"OggS")
    async with alice.get("/api/album") as response:
        assert response.status == 404  # shared, but no weekly album was made yet
        await error_of(response)


async def test_another_melody_and_the_piano_version_of_a_song(
        service: Service, alice: aiohttp.ClientSession, speech_clip: Path) -> None:
    track = await song_from(service, alice, form=clip_form("sing", speech_clip.read_bytes()))

    for action, kind in (("another", "sing"), ("piano", "piano")):
        job = await finished_job(service, alice,
                                 await start_job(alice, f"/api/tracks/{track['id']}/{action}"))
        assert (job["status"], job["kind"]) == ("done", kind), job
        assert job["track"]["id"] != track["id"]
    async with alice.get("/api/history") as response:
        assert len((await response.json())["tracks"]) == 3
    async with alice.post(f"/api/tracks/{track['id']}/dance") as response:
        assert response.status == 404


async def test_forgetting_deletes_everything_of_this_browser(
        service: Service, alice: aiohttp.ClientSession) -> None:
    track = await song_from(service, alice, body={"kind": "lyrics", "text": "hello there"})

    async with alice.post("/api/forget") as response:
        assert response.status == 200
        assert "forgot" in (await response.json())["message"]
        assert response.cookies[COOKIE].value == ""  # a new id next time
    async with alice.get("/api/history") as response:
        assert (await response.json())["tracks"] == []
    status, _, _ = await fetch(alice, track["urls"]["audio"])
    assert status == 404


async def test_a_web_persons_name_reaches_the_album_credits_and_forget_deletes_it(
        service: Service, alice: aiohttp.ClientSession, bob: aiohttp.ClientSession) -> None:
    mine = await song_from(service, alice, body={"kind": "melody"})
    theirs = await song_from(service, bob, body={"kind": "melody"})
    async with alice.post("/api/name", json={"name": "  Alice\n the   Singer "}) as response:
        assert response.status == 200
        named = await response.json()
    assert named["name"] == "Alice the Singer" and "Alice the Singer" in named["message"]
    async with alice.get("/api/name") as response:
        assert (await response.json())["name"] == "Alice the Singer"
    for session, track in ((alice, mine), (bob, theirs)):
        async with session.post(f"/api/tracks/{track['id']}/share") as response:
            assert response.status == 200
    await build_album(service.sessions, service.blobs, week_of(datetime.now(UTC)))
    async with alice.get("/api/album") as response:
        credits = {t["title"]: t["credit"] for t in (await response.json())["tracks"]}
    assert credits == {f"Song #{mine['id']} by Alice the Singer": "Alice the Singer",
                       f"Song #{theirs['id']} by a SingSong singer": "a SingSong singer"}

    async with alice.post("/api/forget") as response:
        assert response.status == 200
    async with service.sessions() as db:
        names = (await db.execute(select(User.display_name))).scalars().all()
    assert "Alice the Singer" not in names
    async with alice.get("/api/name") as response:
        assert (await response.json())["name"] == ""


async def test_a_request_from_another_site_is_refused(alice: aiohttp.ClientSession) -> None:
    async with alice.post("/api/forget", headers={"Origin": "https://evil.example"}) as response:
        assert response.status == 403
        await error_of(response)


async def test_the_openapi_document_names_every_route(web: WebAdapter,
                                                      alice: aiohttp.ClientSession) -> None:
    async with alice.get("/api/openapi.json") as response:
        assert response.status == 200
        document = await response.json()
    assert document["openapi"].startswith("3.1")
    routes = {(resource.canonical, route.method.lower())
              for resource in web.app.router.resources()
              if resource.canonical.startswith("/api/")
              for route in resource if route.method != "HEAD"}
    documented = {(path, method) for path, operations in document["paths"].items()
                  for method in operations}
    assert routes == documented
    for path, operations in document["paths"].items():
        for operation in operations.values():
            assert operation["responses"], path
    schemas = document["components"]["schemas"]
    assert {"Job", "Track", "Error", "History", "Album", "AlbumTrack"} <= set(schemas)
    assert {"/api/album", "/api/albums/{week}/{part}"} <= set(document["paths"])
    assert "/api/album/{filename}" not in document["paths"]  # the old album files are gone
    assert set(schemas["Album"]["required"]) == {"week", "duration_s", "tracks", "files",
                                                 "page"}
    for request in ("JobJson", "JobForm"):
        assert schemas[request]["properties"]["form"]["enum"] == ["full", "short"]
        assert schemas[request]["properties"]["language"]["type"] == "string"
    assert {"form", "sections", "language", "about"} <= set(schemas["Track"]["required"])
    [action] = [p for p in document["paths"]["/api/tracks/{id}/{action}"]["post"]["parameters"]
                if p["name"] == "action"]
    assert action["schema"]["enum"] == ["another", "piano", "full", "short"]


async def test_the_weekly_album_and_its_files_are_public(service: Service,
                                                         web: WebAdapter) -> None:
    media = await make_album(service)
    # No cookie at all: albums hold only songs people shared, so anyone may have them.
    async with aiohttp.ClientSession(base_url=web.url,
                                     cookie_jar=aiohttp.DummyCookieJar()) as anyone:
        for path in ("/api/album", f"/api/album?week={WEEK}"):
            async with anyone.get(path) as response:
                assert response.status == 200
                album = await response.json()
            assert album["week"] == WEEK
            assert album["page"] == f"/album?week={WEEK}"
            assert album["duration_s"] == pytest.approx(sum(s.duration_s for s in media.songs),
                                                        abs=0.01)
            assert album["files"] == {part: f"/api/albums/{WEEK}/{part}"
                                      for part in ("audio", "mp3", "cover")}
            assert [(t["position"], t["title"], t["credit"], t["key"])
                    for t in album["tracks"]] == [
                (1, "Song #1 by Alice", "Alice", media.songs[0].key),
                (2, "Song #2 by Bob", "Bob", media.songs[1].key)]
            assert [(t["start_s"], t["end_s"]) for t in album["tracks"]] == [
                pytest.approx(chapter, abs=0.001) for chapter in media.chapters]

        for part, data, mime, extension in (("audio", media.ogg, "audio/ogg", "ogg"),
                                            ("mp3", media.mp3, "audio/mpeg", "mp3"),
                                            ("cover", media.cover, "image/png", "png")):
            status, body, headers = await fetch(anyone, album["files"][part])
            assert (status, body) == (200, data), part
            assert headers["Content-Type"] == mime
            filename = f"singsong-album-{WEEK}.{extension}"
            assert headers["Content-Disposition"] == f'inline; filename="{filename}"'
            assert headers["Accept-Ranges"] == "bytes"
            _, _, headers = await fetch(anyone, album["files"][part] + "?download=1")
            assert headers["Content-Disposition"] == f'attachment; filename="{filename}"'
        assert media.ogg.startswith(b"OggS") and media.cover.startswith(PNG)

        # Seeking in the player asks for byte ranges, as with the songs' own files.
        url, size = album["files"]["audio"], len(media.ogg)
        status, part_of, headers = await fetch(anyone, url, {"Range": "bytes=100-199"})
        assert (status, part_of) == (206, media.ogg[100:200])
        assert headers["Content-Range"] == f"bytes 100-199/{size}"
        status, part_of, headers = await fetch(anyone, url, {"Range": "bytes=-50"})
        assert (status, part_of) == (206, media.ogg[-50:])
        status, part_of, _ = await fetch(anyone, url, {"Range": f"bytes={size - 10}-"})
        assert (status, part_of) == (206, media.ogg[-10:])
        status, _, headers = await fetch(anyone, url, {"Range": f"bytes={size}-"})
        assert (status, headers["Content-Range"]) == (416, f"bytes */{size}")

        async with anyone.get("/album") as response:
            assert response.status == 200
            assert response.content_type == "text/html"
            assert '<script src="/static/album.js"' in await response.text()


async def test_the_newest_album_unless_a_week_is_asked_for(service: Service,
                                                           alice: aiohttp.ClientSession) -> None:
    async with alice.get("/api/album") as response:
        assert response.status == 404
        assert "no community album yet" in await error_of(response)
    await make_album(service, "2026-W46", parts=("audio",))
    await make_album(service, WEEK)

    async with alice.get("/api/album") as response:
        assert (await response.json())["week"] == WEEK
    async with alice.get("/api/album?week=2026-W46") as response:
        older = await response.json()
    assert older["week"] == "2026-W46"
    assert older["files"] == {"audio": "/api/albums/2026-W46/audio"}  # only what exists
    assert [t["title"] for t in older["tracks"]] == ["Song #1 by Alice", "Song #2 by Bob"]
    for missing in ("/api/albums/2026-W46/mp3", "/api/albums/2026-W46/cover",
                    "/api/albums/2026-W45/audio", f"/api/albums/{WEEK}/midi",
                    "/api/albums/2026-W99/audio",
                    "/api/albums/latest/audio"):
        async with alice.get(missing) as response:
            assert response.status == 404, missing
            await error_of(response)


@pytest.mark.parametrize(("week", "status"), [
    ("2026-W45", 404), ("2026-W1", 400), ("2026-47", 400), ("W47", 400), ("2026-W00", 400),
    ("2026-W54", 400), ("2021-W53", 400), ("", 404)])
async def test_a_week_that_has_no_album_is_404_and_a_bad_week_400(
        service: Service, alice: aiohttp.ClientSession, week: str, status: int) -> None:
    """2021 had 52 ISO weeks; an empty week means the newest, and there is none here."""
    async with alice.get("/api/album", params={"week": week}) as response:
        assert response.status == status
        message = await error_of(response)
    if status == 400:
        assert "2026-W47" in message  # says how a week is written


async def test_unknown_api_addresses_answer_json(alice: aiohttp.ClientSession) -> None:
    async with alice.get("/api/nothing/here") as response:
        assert response.status == 404
        await error_of(response)
    async with alice.delete("/api/history") as response:
        assert response.status == 405
        await error_of(response)


async def test_too_many_songs_at_once_answers_429_with_retry_after(tmp_path: Path) -> None:
    release = threading.Event()

    def held_engine(kind: str, data: bytes | None, parameters: dict[str, Any]
                    ) -> JobResult:
        """The real engine, once the test lets the job go: it stays active until then."""
        release.wait(TIMEOUT_S)
        return run_engine(kind, data, parameters)

    executor = ThreadPoolExecutor(max_workers=1)
    service = await open_service(service_settings(tmp_path), runner=held_engine,
                                 executor=executor, limits=Limits(per_user_active=1),
                                 seed=TEST_SEED)
    await service.start()
    try:
        async with running_web(service) as web, browser(web) as session:
            first = await start_job(session, body={"kind": "melody"})
            async with session.post("/api/jobs", json={"kind": "melody"}) as response:
                assert response.status == 429
                assert int(response.headers["Retry-After"]) > 0
                await error_of(response)
            release.set()
            assert (await finished_job(service, session, first))["status"] == "done"
    finally:
        release.set()
        await service.close()
        executor.shutdown(wait=True)
        close_worker_threads()
