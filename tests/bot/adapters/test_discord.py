"""The Discord adapter end to end: the real discord.py client against the fake gateway and REST
API, through the real commands, job engine and engine (in threads)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bot.adapters.discord import CUSTOM_ID_PREFIX, DiscordAdapter
from bot.commands import NOT_AUDIO
from bot.config import Settings
from bot.jobs import JobResult, Runner, run_engine
from bot.service import Service
from storage.models import Album, Job
from storage.queries import subscribed_chats
from tests.bot.service import running_service, service_settings
from tests.conftest import ffmpeg_make
from tests.fakes.discord_api import (
    APPLICATION_ID,
    DEFERRED_CHANNEL_MESSAGE,
    DEFERRED_UPDATE_MESSAGE,
    TEXT_CHANNEL_ID,
    Call,
    FakeDiscord,
    Upload,
)

TIMEOUT_S = 60
READY_S = 0.05  # how long discord.py waits for more guilds before "ready"
MESSAGE_CONTENT_INTENT = 1 << 15
SLASH_COMMANDS = {"sing", "melody", "piano", "album", "history", "forget", "share", "style",
                  "help", "together"}


# --- Fixtures and helpers ------------------------------------------------------------------


@pytest.fixture(scope="session")
def voice_clip(speech_clip: Path) -> bytes:
    """Four seconds of the real speech recording, as a voice message's OGG/Opus."""
    return ffmpeg_make("-i", str(speech_clip), "-t", "4", "-c:a", "libopus", "-b:a", "32k",
                       suffix=".ogg")


@pytest.fixture()
async def fake() -> AsyncIterator[FakeDiscord]:
    server = FakeDiscord()
    await server.start()
    try:
        yield server
    finally:
        await server.close()


def discord_settings(tmp_path: Path, fake: FakeDiscord, **options: Any) -> Settings:
    return service_settings(tmp_path, discord_token=fake.token,
                            discord_api_base=fake.api_base, **options)


@asynccontextmanager
async def running(settings: Settings, runner: Runner = run_engine
                  ) -> AsyncIterator[tuple[Service, DiscordAdapter]]:
    """The service and the adapter, started in the order `singsong serve` starts them."""
    async with running_service(settings, runner) as service:
        adapter = DiscordAdapter(service.commands, settings, guild_ready_timeout_s=READY_S)
        try:
            await adapter.start()
            service.commands.attach("discord", adapter)
            await service.commands.deliver_unsent()
            yield service, adapter
            await service.jobs.wait()  # every song delivered before the adapter goes
        finally:
            await adapter.stop()


@pytest.fixture()
async def discord_bot(fake: FakeDiscord, tmp_path: Path
                      ) -> AsyncIterator[tuple[Service, DiscordAdapter]]:
    async with running(discord_settings(tmp_path, fake)) as both:
        yield both


class GatedRunner:
    """The real engine, held at the door until the test opens it."""

    def __init__(self) -> None:
        self.entered, self.door = threading.Event(), threading.Event()

    def __call__(self, kind: str, data: bytes | None,
                 parameters: dict[str, Any]) -> JobResult:
        self.entered.set()
        if not self.door.wait(TIMEOUT_S):
            raise TimeoutError("the test never opened the door")
        return run_engine(kind, data, parameters)

    async def until_entered(self) -> None:
        assert await asyncio.to_thread(self.entered.wait, TIMEOUT_S)


def voice(data: bytes) -> Upload:
    return Upload("voice-message.ogg", data, "audio/ogg", voice=True)


def posted(path: str, suffix: str | None = None, text: str | None = None
           ) -> Callable[[Call], bool]:
    """A POST to `path` carrying a file ending in `suffix` and/or content with `text`."""
    def matches(call: Call) -> bool:
        return (call.method == "POST" and call.path == path
                and (suffix is None or any(f.endswith(suffix) for f in call.filenames))
                and (text is None or text in call.content))
    return matches


def channel_messages(channel_id: int) -> str:
    return f"/channels/{channel_id}/messages"


def follow_ups(interaction: dict[str, Any]) -> str:
    return f"/webhooks/{APPLICATION_ID}/{interaction['token']}"


def callback(interaction: dict[str, Any]) -> str:
    return f"/interactions/{interaction['id']}/{interaction['token']}/callback"


def replied_to(call: Call) -> str | None:
    reference = (call.json or {}).get("message_reference") or {}
    return str(reference["message_id"]) if "message_id" in reference else None


def song_message(fake: FakeDiscord) -> dict[str, Any]:
    """The bot's newest message with an OGG attached."""
    return next(message for message in reversed(fake.bot_messages())
                if any(a["filename"].endswith(".ogg") for a in message["attachments"]))


def action(call: Call, verb: str) -> str:
    return next(custom_id for custom_id in call.custom_ids
                if custom_id.startswith(CUSTOM_ID_PREFIX + verb + ":"))


# --- Tests ---------------------------------------------------------------------------------


async def test_a_voice_message_in_a_server_comes_back_as_a_reply_with_the_song(
        fake: FakeDiscord, discord_bot: tuple[Service, DiscordAdapter],
        voice_clip: bytes) -> None:
    assert {command["name"] for command in fake.commands} == SLASH_COMMANDS
    assert fake.identified[-1]["intents"] & MESSAGE_CONTENT_INTENT
    # Discord rate-limits the first post once: discord.py waits and sends it again.
    fake.fail_next("POST", rf"^{channel_messages(TEXT_CHANNEL_ID)}$")
    alice = fake.user("alice")
    asked = await fake.message(alice, attachments=[voice(voice_clip)])
    song = await fake.wait_for(posted(channel_messages(TEXT_CHANNEL_ID), ".ogg"), TIMEOUT_S)
    posts = fake.sent(rf"^{channel_messages(TEXT_CHANNEL_ID)}$")
    assert [call.content for call in posts[:2]] == [posts[0].content] * 2  # 429, then again
    assert "Writing a melody" in posts[0].content and replied_to(posts[1]) == asked["id"]
    assert replied_to(song) == asked["id"] and song is posts[2]
    assert song.filenames[0].endswith(".ogg") and song.files[0].data.startswith(b"OggS")
    assert "Here is your song" in song.content
    assert {custom_id.split(":")[1] for custom_id in song.custom_ids} == {
        "another", "short", "piano", "midi", "picture", "share", "like"}  # others can like it
    assert not [call for call in fake.calls if call.path.startswith("/webhooks/")]


async def test_a_voice_message_in_a_dm_is_answered_in_the_dm(
        fake: FakeDiscord, discord_bot: tuple[Service, DiscordAdapter],
        voice_clip: bytes) -> None:
    bob = fake.user("bob")
    dm = fake.dm_channel_id(bob)
    asked = await fake.message(bob, attachments=[voice(voice_clip)], dm=True)
    song = await fake.wait_for(posted(channel_messages(dm), ".ogg"), TIMEOUT_S)
    assert replied_to(song) == asked["id"] and song.custom_ids
    assert not fake.sent(channel_messages(TEXT_CHANNEL_ID))


async def test_plain_text_is_sung_in_a_dm_and_ignored_in_a_server(
        fake: FakeDiscord, discord_bot: tuple[Service, DiscordAdapter]) -> None:
    carol = fake.user("carol")
    await fake.message(carol, content="just chatting here")
    await fake.message(carol, content="twinkle twinkle little star", dm=True)
    song = await fake.wait_for(posted(channel_messages(fake.dm_channel_id(carol)), ".ogg"),
                               TIMEOUT_S)
    assert "Here is your song" in song.content and "Sung in English." in song.content
    assert not fake.sent(channel_messages(TEXT_CHANNEL_ID))
    [job] = await jobs_of(discord_bot[0])
    assert job.parameters["language"] is None  # a plain message does not say the locale


async def test_slash_sing_is_deferred_then_followed_up_with_the_song(
        fake: FakeDiscord, discord_bot: tuple[Service, DiscordAdapter]) -> None:
    alice = fake.user("alice")
    asked = await fake.slash(alice, None, "sing", {"text": "hello my friend how are you"})
    song = await fake.wait_for(posted(follow_ups(asked), ".ogg"), TIMEOUT_S)
    deferred = fake.sent(callback(asked))
    assert [call.json["type"] for call in deferred] == [DEFERRED_CHANNEL_MESSAGE]
    assert fake.calls.index(deferred[0]) < fake.calls.index(song)
    working = fake.sent(follow_ups(asked))[0]
    assert "Warming up my voice" in working.content
    assert action(song, "midi")


async def jobs_of(service: Service) -> list[Job]:
    async with service.sessions() as session:
        return list((await session.execute(select(Job).order_by(Job.id))).scalars())


async def test_slash_sing_takes_the_language_of_the_persons_discord(
        fake: FakeDiscord, discord_bot: tuple[Service, DiscordAdapter]) -> None:
    service, _adapter = discord_bot
    sofia = fake.user("sofia", locale="es-ES")
    # "la la la la" could be any language: her Discord's decides.
    asked = await fake.slash(sofia, None, "sing", {"text": "la la la la"})
    song = await fake.wait_for(posted(follow_ups(asked), ".ogg"), TIMEOUT_S)
    assert song.content.endswith(". Sung in Spanish (your language setting).")
    [job] = await jobs_of(service)
    assert job.parameters["language"] == "es-ES"
    assert job.parameters["sung"]["language"] == {"code": "es", "name": "Spanish",
                                                  "chosen_by": "setting"}


async def test_the_short_version_button_sings_the_same_song_short(
        fake: FakeDiscord, discord_bot: tuple[Service, DiscordAdapter],
        voice_clip: bytes) -> None:
    service, _adapter = discord_bot
    kim = fake.user("kim")
    dm = fake.dm_channel_id(kim)
    await fake.message(kim, attachments=[voice(voice_clip)], dm=True)
    song = await fake.wait_for(posted(channel_messages(dm), ".ogg"), TIMEOUT_S)
    pressed = await fake.click(kim, None, int(song_message(fake)["id"]), action(song, "short"),
                               dm=True)
    short = await fake.wait_for(posted(follow_ups(pressed), ".ogg"), TIMEOUT_S)
    await service.jobs.wait()
    assert len([call for call in fake.sent(follow_ups(pressed)) if call.files]) == 1
    assert action(short, "full") and not [c for c in short.custom_ids if ":short:" in c]
    full, shortened = await jobs_of(service)
    assert (full.parameters["form"], shortened.parameters["form"]) == ("full", "short")
    assert full.parameters["seed"] == shortened.parameters["seed"]


async def test_song_buttons_send_the_midi_file_and_share_the_song(
        fake: FakeDiscord, discord_bot: tuple[Service, DiscordAdapter],
        voice_clip: bytes) -> None:
    alice = fake.user("alice")
    await fake.message(alice, attachments=[voice(voice_clip)])
    song = await fake.wait_for(posted(channel_messages(TEXT_CHANNEL_ID), ".ogg"), TIMEOUT_S)
    message_id = int(song_message(fake)["id"])

    pressed = await fake.click(alice, None, message_id, action(song, "midi"))
    midi = await fake.wait_for(posted(follow_ups(pressed), ".mid"), TIMEOUT_S)
    assert midi.files[0].data.startswith(b"MThd")
    assert [call.json["type"] for call in fake.sent(callback(pressed))] == [
        DEFERRED_UPDATE_MESSAGE]

    pressed = await fake.click(alice, None, message_id, action(song, "picture"))
    picture = await fake.wait_for(posted(follow_ups(pressed), ".png"), TIMEOUT_S)
    assert picture.files[0].data.startswith(b"\x89PNG") and "picture" in picture.content
    pressed = await fake.click(alice, None, message_id, action(song, "picture"))
    again = await fake.wait_for(posted(follow_ups(pressed), ".png"), TIMEOUT_S)
    assert again.files[0].data == picture.files[0].data  # kept: the same file

    pressed = await fake.click(alice, None, message_id, action(song, "share"))
    shared = await fake.wait_for(posted(follow_ups(pressed), text="community album"), TIMEOUT_S)
    assert "#" in shared.content


async def test_a_file_over_the_upload_limit_is_left_out_with_a_sentence(
        fake: FakeDiscord, discord_bot: tuple[Service, DiscordAdapter]) -> None:
    fake.attachment_size_limit = 2_000  # bytes: far less than any song
    asked = await fake.slash(fake.user("olga"), None, "sing", {"text": "tiny little song"})
    song = await fake.wait_for(posted(follow_ups(asked), text="left it out"), TIMEOUT_S)
    assert not song.files and "Here is your song" in song.content and song.custom_ids


async def test_after_the_gateway_asks_to_reconnect_the_bot_resumes_and_answers(
        fake: FakeDiscord, discord_bot: tuple[Service, DiscordAdapter]) -> None:
    await fake.reconnect()
    await fake.wait_for_connection(TIMEOUT_S)
    assert len(fake.identified) == 1  # resumed, not identified again
    pat = fake.user("pat")
    await fake.message(pat, content="sing this after the reconnect", dm=True)
    await fake.wait_for(posted(channel_messages(fake.dm_channel_id(pat)), ".ogg"), TIMEOUT_S)


async def test_slash_melody_sends_audio_midi_and_a_picture_button(
        fake: FakeDiscord, discord_bot: tuple[Service, DiscordAdapter]) -> None:
    dave = fake.user("dave")
    asked = await fake.slash(dave, None, "melody", {"key": "A minor", "style": "lofi"})
    melody = await fake.wait_for(posted(follow_ups(asked), ".ogg"), TIMEOUT_S)
    assert sorted(name.rsplit(".", 1)[1] for name in melody.filenames) == ["mid", "ogg"]
    assert "A minor" in melody.content
    pressed = await fake.click(dave, None, int(song_message(fake)["id"]),
                               action(melody, "picture"))
    roll = await fake.wait_for(posted(follow_ups(pressed), ".png"), TIMEOUT_S)
    assert roll.files[0].data.startswith(b"\x89PNG")


async def test_slash_piano_plays_the_attached_clip(
        fake: FakeDiscord, discord_bot: tuple[Service, DiscordAdapter],
        voice_clip: bytes) -> None:
    erin = fake.user("erin")
    asked = await fake.slash(erin, None, "piano",
                             attachments={"audio": Upload("hum.ogg", voice_clip, "audio/ogg")})
    piano = await fake.wait_for(posted(follow_ups(asked), ".ogg"), TIMEOUT_S)
    assert "on the piano" in piano.content and any(n.endswith(".mid") for n in piano.filenames)
    assert fake.sent(r"^/attachments/", method="GET")  # the clip was downloaded


async def test_forget_asks_first_and_forgets_on_yes(
        fake: FakeDiscord, discord_bot: tuple[Service, DiscordAdapter]) -> None:
    frank = fake.user("frank")
    styled = await fake.slash(frank, None, "style", {"name": "ballad"})  # something to forget
    await fake.wait_for(posted(follow_ups(styled), text="ballad band"), TIMEOUT_S)
    asked = await fake.slash(frank, None, "forget")
    question = await fake.wait_for(posted(follow_ups(asked), text="Are you sure"), TIMEOUT_S)
    message_id = next(int(message["id"]) for message in fake.bot_messages()
                      if "Are you sure" in message["content"])
    pressed = await fake.click(frank, None, message_id, action(question, "forget"))
    assert action(question, "forget") == CUSTOM_ID_PREFIX + "forget:yes"
    done = await fake.wait_for(posted(follow_ups(pressed), text="I forgot you"), TIMEOUT_S)
    assert done.content.startswith("Done")


def silence() -> bytes:
    return ffmpeg_make("-f", "lavfi", "-i", "anullsrc=r=48000:cl=mono", "-t", "3", "-c:a",
                       "libopus", suffix=".ogg")


UNSINGABLE: dict[str, tuple[Callable[[], Upload], str]] = {
    "too-large": (lambda: Upload("long.ogg", b"OggS", "audio/ogg", voice=True, size=25_000_000),
                  "I can take at most"),
    "not-audio": (lambda: Upload("notes.pdf", b"%PDF-1.4", "application/pdf"), NOT_AUDIO),
    "silence": (lambda: Upload("quiet.ogg", silence(), "audio/ogg", voice=True),
                "could not hear a voice"),
}


@pytest.mark.parametrize("case", UNSINGABLE)
async def test_files_that_cannot_be_sung_get_a_clear_answer(
        fake: FakeDiscord, discord_bot: tuple[Service, DiscordAdapter], case: str) -> None:
    make_upload, answer = UNSINGABLE[case]
    upload = make_upload()
    grace = fake.user("grace")
    asked = await fake.message(grace, attachments=[upload], dm=True)
    reply = await fake.wait_for(posted(channel_messages(fake.dm_channel_id(grace)),
                                       text=answer), TIMEOUT_S)
    assert replied_to(reply) == asked["id"]
    if case != "silence":
        assert not fake.sent(r"^/attachments/", method="GET")  # refused, not downloaded


async def test_after_the_token_expires_the_song_is_posted_in_the_channel(
        fake: FakeDiscord, tmp_path: Path) -> None:
    gate = GatedRunner()
    async with running(discord_settings(tmp_path, fake), runner=gate):
        asked = await fake.slash(fake.user("heidi"), None, "sing", {"text": "la la la la"})
        await gate.until_entered()
        fake.expire(asked["token"])  # the song takes longer than 15 minutes, say
        gate.door.set()
        song = await fake.wait_for(posted(channel_messages(TEXT_CHANNEL_ID), ".ogg"),
                                   TIMEOUT_S)
    assert song.custom_ids
    assert [call for call in fake.sent(follow_ups(asked)) if call.files]  # tried first


async def test_a_restart_mid_job_ends_in_exactly_one_reply(
        fake: FakeDiscord, tmp_path: Path, voice_clip: bytes) -> None:
    settings = discord_settings(tmp_path, fake)
    gate = GatedRunner()
    ivan = fake.user("ivan")
    async with running(settings, runner=gate) as (service, adapter):
        asked = await fake.message(ivan, attachments=[voice(voice_clip)])
        await fake.wait_for(posted(channel_messages(TEXT_CHANNEL_ID)), TIMEOUT_S)
        await gate.until_entered()
        await adapter.stop()  # Discord goes away mid-job: the reply cannot be sent now
        gate.door.set()
        await service.jobs.wait()
    assert not fake.sent(channel_messages(TEXT_CHANNEL_ID))[1:]

    async with running(settings):  # the next start owes the reply, and sends it
        song = await fake.wait_for(posted(channel_messages(TEXT_CHANNEL_ID), ".ogg"),
                                   TIMEOUT_S)
    assert replied_to(song) == asked["id"]
    assert len([call for call in fake.sent(channel_messages(TEXT_CHANNEL_ID))
                if call.files]) == 1

    async with running(settings):  # its buttons still work on a client that never sent them
        pressed = await fake.click(ivan, None, int(song_message(fake)["id"]),
                                   action(song, "midi"))
        await fake.wait_for(posted(follow_ups(pressed), ".mid"), TIMEOUT_S)


async def test_the_weekly_album_is_posted_in_the_album_channel(
        fake: FakeDiscord, tmp_path: Path) -> None:
    settings = discord_settings(tmp_path, fake, discord_album_channel_id=TEXT_CHANNEL_ID)
    async with running(settings) as (service, _adapter):
        assert await service.commands.post_album("2026-W47") == 0  # no album yet
        mp3 = ffmpeg_make("-f", "lavfi", "-i", "sine=frequency=440:duration=2", suffix=".mp3")
        async with service.sessions() as session:
            session.add(Album(week="2026-W47", audio_blob=service.blobs.put(mp3),
                              mp3_blob=service.blobs.put(mp3), duration_s=2.0))
            await session.commit()
        assert await service.commands.post_album("2026-W47") == 1
        assert await service.commands.post_album("2026-W47") == 0  # once
        album = await fake.wait_for(posted(channel_messages(TEXT_CHANNEL_ID), ".mp3"),
                                    TIMEOUT_S)
    assert album.filenames == ["singsong-album-2026-W47.mp3"]
    assert album.files[0].data == mp3 and "community album" in album.content


async def test_slash_album_on_subscribes_the_channel(
        fake: FakeDiscord, discord_bot: tuple[Service, DiscordAdapter]) -> None:
    service, _adapter = discord_bot
    asked = await fake.slash(fake.user("frank"), TEXT_CHANNEL_ID, "album", {"posting": "on"})
    await fake.wait_for(posted(follow_ups(asked), text="posted here"), TIMEOUT_S)
    async with service.sessions() as session:
        chats = await subscribed_chats(session)
    assert [(c.platform, c.platform_chat_id) for c in chats] == [("discord",
                                                                  str(TEXT_CHANNEL_ID))]
