"""The platform-neutral commands, through the real service (real engine in threads) and an
outbox that records what it is given."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bot.commands import (
    Message,
    Person,
    Place,
    Reply,
    SungAs,
    Target,
    melody_options,
    too_large,
)
from bot.jobs import LOOSE_LIMITS, JobResult, close_worker_threads, run_engine
from bot.service import Service, open_service
from engine.errors import InvalidRequest
from storage.models import Album, Job, Track, now
from tests.bot.service import service_settings
from tests.conftest import ffmpeg_make

ALICE = Person("test", "alice", "Alice")
BOB = Person("test", "bob", "Bob")
ALICE_DM = Place("test", "dm-alice", private=True)
GROUP = Place("test", "group-1", private=False)
TIMEOUT_S = 60


class RecordingOutbox:
    def __init__(self, failures: int = 0) -> None:
        self.sent: list[tuple[Target, Reply]] = []
        self.failures = failures
        self.arrived = asyncio.Event()

    async def deliver(self, target: Target, reply: Reply) -> None:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("the platform is down")
        self.sent.append((target, reply))
        self.arrived.set()


def message(text: str = "", *, command: str | None = None, clip: bytes | None = None,
            person: Person = ALICE, place: Place = ALICE_DM, message_id: str = "1",
            reply_to: dict[str, Any] | None = None) -> Message:
    from bot.commands import Clip

    return Message(person, place, message_id, command, text,
                   Clip(clip) if clip is not None else None, reply_to or {"message_id": 1})


async def finished(service: Service, reply: Reply) -> None:
    assert reply.job_id is not None, reply.text
    async with asyncio.timeout(TIMEOUT_S):
        await service.commands.answered(reply.job_id)


@pytest.fixture()
def outbox(service: Service) -> RecordingOutbox:
    box = RecordingOutbox()
    service.commands.attach("test", box)
    return box


async def test_a_voice_note_comes_back_once_as_a_song_with_buttons(
        service: Service, outbox: RecordingOutbox, speech_clip: Path) -> None:
    clip = speech_clip.read_bytes()
    first = await service.commands.handle(message(clip=clip, reply_to={"message_id": 42}))
    again = await service.commands.handle(message(clip=clip))  # the platform redelivered it
    assert first.job_id == again.job_id and first.job_kind == "sing"
    await finished(service, first)
    await service.jobs.wait()
    assert len(outbox.sent) == 1
    target, song = outbox.sent[0]
    assert target == Target("dm-alice", {"message_id": 42})
    assert song.voice is not None and song.voice.data[:4] == b"OggS"
    assert [b.label for b in song.buttons] == ["Another melody", "Short version",
                                               "Piano version", "MIDI file", "Picture",
                                               "Share to album"]


async def test_buttons_make_midi_another_melody_and_the_piano_version(
        service: Service, outbox: RecordingOutbox, speech_clip: Path) -> None:
    commands = service.commands
    await finished(service, await commands.handle(message(clip=speech_clip.read_bytes())))
    track_id = int(outbox.sent[0][1].buttons[0].action.split(":")[1])

    midi = await commands.press(ALICE, ALICE_DM, f"midi:{track_id}", "p1", {})
    assert midi.files[0].data[:4] == b"MThd" and midi.files[0].filename.endswith(".mid")
    for verb in ("another", "piano"):  # someone else's voice is theirs to use
        refused = await commands.press(BOB, ALICE_DM, f"{verb}:{track_id}", f"b-{verb}", {})
        assert refused.job_id is None and "Only the person" in refused.text
    another = await commands.press(ALICE, ALICE_DM, f"another:{track_id}", "p2", {})
    piano = await commands.press(ALICE, ALICE_DM, f"piano:{track_id}", "p3", {})
    await finished(service, another)
    await finished(service, piano)
    async with service.sessions() as session:
        jobs = {job.id: job for job in (await session.execute(select(Job))).scalars()}
    assert jobs[another.job_id or 0].kind == "sing" and jobs[piano.job_id or 0].kind == "piano"
    assert jobs[another.job_id or 0].parameters["seed"] != jobs[1].parameters["seed"]
    first, *later = [reply for _, reply in outbox.sent]
    (song,) = [reply for reply in later if reply.text.startswith("Here is your song")]
    (on_piano,) = [reply for reply in later if reply.text.startswith("Your clip on the piano")]
    assert song.voice is not None and first.voice is not None
    assert song.voice.data != first.voice.data
    assert on_piano.files[0].data[:4] == b"MThd"


async def test_the_picture_button_draws_it_once_in_a_thread_and_keeps_it(
        service: Service, outbox: RecordingOutbox, short_speech_clip: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A song comes with its picture's card, not its picture: the Picture button draws it
    (off the event loop), keeps it with the track, and a second press sends the kept one."""
    from engine import picture

    commands = service.commands
    await finished(service, await commands.handle(message(clip=short_speech_clip.read_bytes())))
    (_, reply), = outbox.sent
    assert reply.files == ()  # no picture with the song
    assert "picture:1" in [b.action for b in reply.buttons]
    async with service.sessions() as session:
        track = (await session.execute(select(Track))).scalar_one()
    assert track.picture_blob is None and track.picture_card_blob is not None
    card = service.blobs.get(track.picture_card_blob)
    drawn_in: list[str] = []
    real_draw = picture.draw

    def draw(data: bytes) -> bytes:
        import threading

        drawn_in.append(threading.current_thread().name)
        return real_draw(data)

    monkeypatch.setattr(picture, "draw", draw)
    first = await commands.press(ALICE, ALICE_DM, f"picture:{track.id}", "p1", {})
    (png,) = first.files
    assert png.data == real_draw(card) and png.data[:4] == b"\x89PNG"
    assert png.filename == f"singsong-{track.id}.png" and png.mime == "image/png"
    assert len(drawn_in) == 1 and drawn_in[0] != "MainThread"
    async with service.sessions() as session:
        kept = await session.get(Track, track.id)
    assert kept is not None and service.blobs.get(kept.picture_blob or "") == png.data
    again = await commands.press(BOB, ALICE_DM, f"picture:{track.id}", "p2", {})
    assert again.files == first.files and len(drawn_in) == 1  # kept: not drawn again
    web = await commands.track_file(ALICE, track.id, "picture")
    assert web is not None and web.data == png.data and len(drawn_in) == 1

    await commands.press(ALICE, ALICE_DM, "forget:yes", "p3", {})  # the card and the PNG go
    assert list((service.settings.data_dir / "blobs").rglob("*.*")) == []


async def test_a_picture_from_before_cards_is_sent_and_a_track_without_one_says_so(
        service: Service, monkeypatch: pytest.MonkeyPatch) -> None:
    """A track stored before pictures were drawn on request has its PNG and no card: it is
    sent as it is. A track with neither has no Picture button, part or file."""
    from bot.commands import finished_reply
    from bot.commands._base import file_of
    from engine import picture
    from storage import queries

    def never(data: bytes) -> bytes:
        raise AssertionError("nothing is drawn here")

    monkeypatch.setattr(picture, "draw", never)
    old_png = b"\x89PNG\r\n\x1a\n an old picture"
    async with service.sessions() as session:
        user = await queries.user_for(session, "test", "alice", "Alice")
        tracks = []
        for key, picture_blob in (("old", service.blobs.put(old_png)), ("none", None)):
            job, _ = await queries.submit_job(session, key=key, kind="sing", user=user)
            tracks.append(await queries.save_track(
                session, job, audio_blob=service.blobs.put(key.encode()), midi_blob=None,
                picture_blob=picture_blob, duration_s=2.0, key="C major", tempo_bpm=90.0))
    old, bare = tracks
    sent = await service.commands.press(ALICE, ALICE_DM, f"picture:{old.id}", "p1", {})
    assert [f.data for f in sent.files] == [old_png]
    old_view = await service.commands.track_view(ALICE, old.id)
    assert old_view is not None and old_view.parts == ("audio", "picture")
    refused = await service.commands.press(ALICE, ALICE_DM, f"picture:{bare.id}", "p2", {})
    assert refused.text == "That one has no picture." and refused.files == ()
    bare_view = await service.commands.track_view(ALICE, bare.id)
    assert bare_view is not None and bare_view.parts == ("audio",)
    assert await service.commands.track_file(ALICE, bare.id, "picture") is None
    audio = file_of(service.blobs, bare, "audio")
    assert "Picture" not in [b.label for b in finished_reply("sing", bare, audio, None).buttons]
    assert "Picture" in [b.label for b in finished_reply("sing", old, audio, None).buttons]


def test_a_songs_reply_names_its_parts_and_the_language_it_was_sung_in() -> None:
    names = ("intro", "verse", "chorus", "chorus", "ending")
    sections = tuple({"name": name, "start_s": 2.0 * i} for i, name in enumerate(names))
    spanish = {"code": "es", "name": "Spanish", "chosen_by": "text"}
    assert SungAs("full", sections, spanish).about() == "Verse, chorus x2. Sung in Spanish."
    german = {"code": "de", "name": "German", "chosen_by": "setting"}
    assert SungAs("short", sections[1:2], german).about() == (
        "Sung in German (your language setting).")
    back_again = tuple({"name": name, "start_s": 0.0}
                       for name in ("verse", "chorus", "verse", "chorus", "ending"))
    assert SungAs("full", back_again).about() == "Verse, chorus, verse, chorus."
    assert SungAs("short", sections[1:2]).about() == ""  # a voice note, sung once


async def test_a_language_setting_it_cannot_sing_in_does_not_fail_lyrics(
        service: Service, outbox: RecordingOutbox) -> None:
    kenji = Person("test", "kenji", "Kenji", language="ja")
    reply = await service.commands.handle(Message(kenji, ALICE_DM, "1", "sing", "la la la la",
                                                  form="short"))
    await finished(service, reply)
    [(_, song)] = outbox.sent
    assert song.voice is not None and song.text.endswith("Sung in English.")
    assert [b.label for b in song.buttons][:2] == ["Another melody", "Full song"]
    refused = await service.commands.handle(Message(kenji, ALICE_DM, "2", "sing", "la la",
                                                    form="medium"))
    assert refused.job_id is None and "full or short" in refused.text


async def test_lyrics_melody_and_what_plain_text_means_where(
        service: Service, outbox: RecordingOutbox) -> None:
    commands = service.commands
    lyrics = await commands.handle(message("la la land is where I stand"))
    melody = await commands.handle(message("A minor lofi", command="melody", message_id="2"))
    await finished(service, lyrics)
    await finished(service, melody)
    async with service.sessions() as session:
        job = await session.get(Job, melody.job_id)
    assert job is not None and job.parameters["key"] == "A minor"
    assert job.parameters["style"] == "lofi"
    tune = next(reply for _, reply in outbox.sent if reply.text.startswith("A new melody"))
    assert "A minor" in tune.text
    assert [f.filename[-3:] for f in tune.files] == ["mid"]  # its piano roll when asked
    assert [b.label for b in tune.buttons] == ["Another melody", "Picture", "Share to album"]
    in_a_group = await commands.handle(message("hello there", place=GROUP, message_id="3"))
    assert in_a_group.job_id is None and "/sing" in in_a_group.text


@pytest.mark.parametrize(("text", "expected"), [
    ("", {}), ("lofi", {"style": "lofi"}), ("A minor", {"key": "A minor"}),
    ("F#m Ballad", {"key": "F# minor", "style": "ballad"}),
])
def test_melody_options(text: str, expected: dict[str, str]) -> None:
    assert melody_options(text) == expected


async def test_mistakes_get_a_sentence_and_start_nothing(service: Service,
                                                         outbox: RecordingOutbox) -> None:
    commands = service.commands
    bad_key = await commands.handle(message("H major", command="melody"))
    assert bad_key.job_id is None and "H major" in bad_key.text
    assert (await commands.handle(message(command="piano"))).text.startswith("Send /piano")
    assert "/help" in (await commands.handle(message(command="dance"))).text
    too_long = await commands.handle(message("la " * 200, command="sing"))
    assert too_long.job_id is None and "300" in too_long.text
    assert "23.9 MB" in too_large(25_000_000, 20 * 2**20).text
    assert "20.1 MB and I can take at most 20 MB" in too_large(20 * 2**20 + 1,
                                                                       20 * 2**20).text
    async with service.sessions() as session:
        assert (await session.execute(select(Job))).first() is None


async def test_silence_and_a_non_audio_file_fail_with_a_clear_reply(
        service: Service, outbox: RecordingOutbox) -> None:
    commands = service.commands
    silence = ffmpeg_make("-f", "lavfi", "-i", "anullsrc=r=16000:cl=mono", "-t", "3",
                          "-c:a", "libopus", suffix=".ogg")
    quiet = await commands.handle(message(clip=silence))
    junk = await commands.handle(message(clip=b"%PDF-1.4 not a song" * 50, message_id="2"))
    await finished(service, quiet)
    await finished(service, junk)
    texts = {reply.text for _, reply in outbox.sent}
    assert any("could not hear a voice" in text for text in texts), texts
    assert any("not audio" in text.lower() or "could not read" in text.lower()
               for text in texts), texts
    assert all(reply.voice is None and not reply.buttons for _, reply in outbox.sent)


def broken_runner(kind: str, data: bytes | None, parameters: dict[str, Any]) -> JobResult:
    raise RuntimeError("disk on fire")


async def test_our_own_fault_is_not_explained_to_the_person(tmp_path: Path) -> None:
    from bot.jobs import constants

    executor = ThreadPoolExecutor(1)
    service = await open_service(service_settings(tmp_path), runner=broken_runner,
                                 executor=executor, limits=LOOSE_LIMITS, seed=1)
    box = RecordingOutbox()
    service.commands.attach("test", box)
    saved, constants.RETRY_BASE_S = constants.RETRY_BASE_S, 0.0
    try:
        await service.start()
        await finished(service, await service.commands.handle(message("sing this please")))
    finally:
        constants.RETRY_BASE_S = saved
        await service.close()
        executor.shutdown()
        close_worker_threads()
    assert [reply.text for _, reply in box.sent] == [
        "Sorry, something went wrong while making this one. Please send it again in a "
        "moment."]


async def test_history_share_style_and_forget(service: Service, outbox: RecordingOutbox,
                                              speech_clip: Path) -> None:
    commands = service.commands
    assert "no songs yet" in (await commands.handle(message(command="history"))).text
    assert "no songs to share" in (await commands.handle(message(command="share"))).text
    style = await commands.handle(message(command="style"))
    assert "pop" in style.text and "style:lofi" in [b.action for b in style.buttons]
    chosen = await commands.press(ALICE, ALICE_DM, "style:lofi", "p1", {})
    assert "lofi" in chosen.text
    reply = await commands.handle(message(clip=speech_clip.read_bytes(), message_id="5"))
    await finished(service, reply)
    async with service.sessions() as session:
        job = await session.get(Job, reply.job_id)
        track = (await session.execute(select(Track))).scalar_one()
    assert job is not None and job.parameters["style"] == "lofi"

    history = (await commands.handle(message(command="history"))).text
    assert f"#{track.id}: sing" in history
    refused = await commands.press(BOB, ALICE_DM, f"share:{track.id}", "p2", {})
    assert "only share your own" in refused.text
    assert await commands.track_file(BOB, track.id, "audio") is None
    shared = await commands.handle(message(command="share"))
    assert f"#{track.id}" in shared.text and "album" in shared.text
    assert await commands.track_file(BOB, track.id, "audio") is not None  # shared now

    ask = await commands.handle(message(command="forget"))
    assert [b.action for b in ask.buttons] == ["forget:yes", "forget:no"]
    assert "keep everything" in (await commands.press(ALICE, ALICE_DM, "forget:no", "p3",
                                                      {})).text
    done = await commands.press(ALICE, ALICE_DM, "forget:yes", "p4", {})
    assert "forgot" in done.text
    assert await commands.history_view(ALICE) == []
    assert list((service.settings.data_dir / "blobs").rglob("*.*")) == []
    assert "nothing of yours" in (await commands.press(ALICE, ALICE_DM, "forget:yes", "p5",
                                                       {})).text


async def test_a_reply_that_could_not_be_sent_is_sent_after_a_restart(
        tmp_path: Path, speech_clip: Path) -> None:
    """The platform fails while the song is delivered, the process stops; the next process
    sends it, once, and a third sends nothing more."""
    sent: list[Reply] = []
    for outbox in (RecordingOutbox(failures=1), RecordingOutbox(), RecordingOutbox()):
        executor = ThreadPoolExecutor(2)
        service = await open_service(service_settings(tmp_path), executor=executor,
                                     limits=LOOSE_LIMITS, seed=1)
        service.commands.attach("test", outbox)
        try:
            await service.start()
            if not sent and not outbox.sent and outbox.failures:
                reply = await service.commands.handle(message(clip=speech_clip.read_bytes()))
                await finished(service, reply)
        finally:
            await service.close()
            executor.shutdown()
            close_worker_threads()
        sent += [reply for _, reply in outbox.sent]
    assert len(sent) == 1 and sent[0].voice is not None


async def test_a_job_left_running_by_a_crash_is_finished_and_answered_once(
        tmp_path: Path, speech_clip: Path) -> None:
    settings = service_settings(tmp_path)
    service = await open_service(settings, limits=LOOSE_LIMITS, seed=1)
    async with service.sessions() as session:  # as a process that died mid-job leaves it
        from storage.queries import chat_for, submit_job, user_for

        user = await user_for(session, "test", "alice")
        chat = await chat_for(session, "test", "dm-alice")
        job, _ = await submit_job(session, key="test:dm-alice:1", kind="sing", user=user,
                                  chat=chat, input_blob=service.blobs.put(
                                      speech_clip.read_bytes()),
                                  parameters={"seed": 3},
                                  reply_to={"message_id": 1})
        job.status, job.started_at, job.attempts = "running", now(), 1
        await session.commit()
    await service.database.dispose()

    executor = ThreadPoolExecutor(2)
    service = await open_service(settings, executor=executor, limits=LOOSE_LIMITS, seed=1)
    box = RecordingOutbox()
    service.commands.attach("test", box)
    try:
        await service.start()
        await service.jobs.wait()
    finally:
        await service.close()
        executor.shutdown()
        close_worker_threads()
    assert len(box.sent) == 1 and box.sent[0][1].voice is not None


async def test_the_album_command(service: Service, outbox: RecordingOutbox) -> None:
    commands = service.commands
    assert "no community album yet" in (await commands.handle(message(command="album"))).text
    async with service.sessions() as session:
        session.add(Album(week="2026-W47", audio_blob=service.blobs.put(b"OggS album"),
                          mp3_blob=service.blobs.put(b"ID3 album")))
        await session.commit()
    album = await commands.handle(message(command="album"))
    assert "2026-W47" in album.text
    assert [f.mime for f in album.files] == ["audio/mpeg"]


def test_engine_mistakes_are_invalid_requests() -> None:
    with pytest.raises(InvalidRequest):
        run_engine("melody", None, {"key": "X flat", "seed": 1})


async def test_in_a_group_the_others_can_like_a_song(service: Service,
                                                     outbox: RecordingOutbox) -> None:
    commands = service.commands
    reply = await commands.handle(message("sing this for the group", command="sing",
                                          place=GROUP))
    await finished(service, reply)
    song = outbox.sent[0][1]
    like = next(button.action for button in song.buttons if button.label == "Like")
    assert "yours" in (await commands.press(ALICE, GROUP, like, "l1", {})).text
    assert "1 like:" in (await commands.press(BOB, GROUP, like, "l2", {})).text
    assert "1 like:" in (await commands.press(BOB, GROUP, like, "l3", {})).text  # once
    carol = Person("test", "carol")
    assert "2 likes" in (await commands.press(carol, GROUP, like, "l4", {})).text
    dm_reply = await commands.handle(message("and this one just for me", command="sing",
                                             message_id="2"))
    await finished(service, dm_reply)
    assert all(b.label != "Like" for b in outbox.sent[1][1].buttons)


async def test_a_day_has_a_limit_per_person(tmp_path: Path) -> None:
    from bot.jobs import Limits

    executor = ThreadPoolExecutor(1)
    service = await open_service(service_settings(tmp_path), executor=executor,
                                 limits=Limits(per_user_per_day=2), seed=1)
    service.commands.attach("test", RecordingOutbox())
    try:
        await service.start()
        for number in range(2):
            reply = await service.commands.handle(message("A minor", command="melody",
                                                          message_id=str(number)))
            await finished(service, reply)
        refused = await service.commands.handle(message("C", command="melody",
                                                        message_id="3"))
        assert refused.job_id is None and "2 songs in a day" in refused.text
        assert refused.retry_after_s == 3600
    finally:
        await service.close()
        executor.shutdown()
        close_worker_threads()


class StallingOutbox(RecordingOutbox):
    """A platform that takes the request and never answers (discord.py has no timeout)."""

    def __init__(self) -> None:
        super().__init__()
        self.stalls = 1

    async def deliver(self, target: Target, reply: Reply) -> None:
        if self.stalls:
            self.stalls -= 1
            await asyncio.Event().wait()
        await super().deliver(target, reply)


async def test_a_platform_that_stalls_gets_the_reply_again_once(
        service: Service, monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.commands import _delivery

    monkeypatch.setattr(_delivery, "DELIVER_TIMEOUT_S", 0.5)  # where delivery reads it
    box = StallingOutbox()
    service.commands.attach("test", box)
    reply = await service.commands.handle(message("A minor", command="melody"))
    await service.jobs.wait()  # the first delivery timed out: the reply was given back
    assert box.sent == []
    assert await service.commands.deliver_unsent() == 1
    assert await service.commands.deliver_unsent() == 0
    assert len(box.sent) == 1 and box.sent[0][1].voice is not None
    assert reply.job_id is not None


async def test_a_song_number_too_big_for_an_id_is_no_song(service: Service) -> None:
    """/share 99999999999 (over PostgreSQL's 32-bit ids) is a person's mistake, answered
    as one, never a database error."""
    for number in ("99999999999", "2147483648", "0"):
        said = await service.commands.handle(message(number, command="share"))
        assert said.text.startswith("Tell me which song"), said.text
