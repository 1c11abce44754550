"""Group songs through the fake Telegram and Discord servers: people join by answering the
invitation with a voice note, the song comes once with every voice credited, a note after
the close hears that it closed, a restart while gathering keeps the notes, a person's forget
makes the song again without them, and the album waits for every voice's yes. A quick fake
engine stands in for the group song itself (tests/engine/test_group.py tests that)."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import select

from bot import together
from bot.commands import Person
from bot.group_bundle import unpack_voices
from bot.jobs import JobResult, run_engine
from storage.models import Gathering, Track
from tests.bot.adapters.test_discord import channel_messages, discord_settings, running, voice
from tests.bot.adapters.test_telegram import replying
from tests.bot.adapters.test_web import browser, running_web
from tests.bot.service import running_service, service_settings
from tests.fakes.discord_api import TEXT_CHANNEL_ID, FakeDiscord
from tests.fakes.telegram_api import ApiCall, FakeTelegram
from tests.faults import WAIT_S, quick_runner
from tests.faults.services import telegram_bot, telegram_settings

GROUP = -100200  # a Telegram group's chat id
ALICE, BOB, CY, DAN = 1001, 1002, 1003, 1004
SILENT = b"SILENT"  # a note the fake engine cannot sing


def group_runner(kind: str, data: bytes | None, parameters: dict[str, Any]) -> JobResult:
    """Songs in no time; a group song says which voices it sang (all but the silent)."""
    made = quick_runner(kind, data, parameters)
    if kind == "group":
        voices, names = unpack_voices(data or b"")
        made = dataclasses.replace(made, sung={"form": "group", "sections": [], "voices": [
            {"name": name, "sung": not note.startswith(SILENT),
             "reason": "the clip is silent" if note.startswith(SILENT) else None}
            for note, name in zip(voices, names, strict=True)]})
    return made


def note(person: int) -> bytes:
    return f"OggS a voice note of {person}".encode()


async def invitation(fake: FakeTelegram, starter: int) -> int:
    """/together in the group: the bot's invitation's message id."""
    asked = await fake.text(starter, GROUP, "/together", chat_type="group")
    call = await fake.wait_for(replying("sendMessage", asked), WAIT_S)
    assert "Reply to this message with a voice note" in call.params["text"]
    (close,) = [b for row in call.params["reply_markup"]["inline_keyboard"] for b in row]
    assert close["callback_data"] == "together:done"
    return int(call.result["message_id"])


async def join(fake: FakeTelegram, person: int, invited: int, data: bytes | None = None) -> str:
    """A voice note answering the invitation: what the bot said back."""
    sent = await fake.voice(person, GROUP, data or note(person), duration=3,
                            reply_to=invited, chat_type="group")
    return str((await fake.wait_for(replying("sendMessage", sent), WAIT_S)).params["text"])


def saying(words: str) -> Callable[[ApiCall], bool]:
    def matches(call: ApiCall) -> bool:
        return call.method == "sendMessage" and words in call.params["text"]
    return matches


def joined(fake: FakeDiscord, posts: str, count: int) -> Callable[[], bool]:
    def enough() -> bool:
        return sum("You're in" in call.content for call in fake.sent(posts)) == count
    return enough


def songs(fake: FakeTelegram) -> list[ApiCall]:
    return fake.calls_to("sendVoice")


async def test_three_join_the_song_comes_once_with_three_credits_and_a_late_note_hears_closed(
        tmp_path: Path) -> None:
    async with FakeTelegram() as fake, telegram_bot(telegram_settings(tmp_path, fake),
                                                    group_runner) as (service, _):
        invited = await invitation(fake, ALICE)
        again = await fake.text(BOB, GROUP, "/together", chat_type="group")
        reminder = await fake.wait_for(replying("sendMessage", again), WAIT_S)
        assert reminder.params["text"].startswith("A group song is already gathering here")
        said = [await join(fake, person, invited) for person in (ALICE, BOB, CY)]
        assert said[0].startswith("You're in, User1001! 1 of 6 voices")
        assert said[2].startswith("You're in, User1003! 3 of 6 voices")
        done = await fake.text(ALICE, GROUP, "/together done", chat_type="group")
        closed = await fake.wait_for(replying("sendMessage", done), WAIT_S)
        assert "Closed with 3 voices (User1001, User1002 and User1003)" in closed.params["text"]
        song = await fake.wait_for(lambda call: call.method == "sendVoice", WAIT_S)
        assert "sung by User1001, User1002 and User1003" in song.params["caption"]
        late = await join(fake, DAN, invited)
        assert late.startswith("That group song has closed")
        async with asyncio.timeout(WAIT_S):
            await service.jobs.wait()
    assert len(songs(fake)) == 1


async def test_only_the_starter_closes_early_and_a_note_that_cannot_be_sung_is_left_out(
        tmp_path: Path) -> None:
    async with FakeTelegram() as fake, telegram_bot(telegram_settings(tmp_path, fake),
                                                    group_runner):
        invited = await invitation(fake, ALICE)
        for person in (ALICE, BOB):
            await join(fake, person, invited)
        await join(fake, CY, invited, SILENT)
        early = await fake.text(BOB, GROUP, "/together done", chat_type="group")
        refused = await fake.wait_for(replying("sendMessage", early), WAIT_S)
        assert refused.params["text"].startswith("Only the person who started")
        await fake.press(ALICE, GROUP, invited, "together:done")  # the invitation's button
        song = await fake.wait_for(lambda call: call.method == "sendVoice", WAIT_S)
        caption = song.params["caption"]
        assert "sung by User1001 and User1002" in caption
        assert "User1003's note was left out: the clip is silent." in caption


async def test_a_restart_while_gathering_keeps_the_notes_and_the_time_closes_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two join, the service stops and starts again; a third joins; the gathering's time
    runs out (shortened here) and the closer makes the song, once, with all three."""
    async with FakeTelegram() as fake:
        settings = telegram_settings(tmp_path, fake)
        async with telegram_bot(settings, group_runner):
            invited = await invitation(fake, ALICE)
            for person in (ALICE, BOB):
                await join(fake, person, invited)
        monkeypatch.setattr(together, "CLOSER_EVERY_S", 0.05)
        async with telegram_bot(settings, group_runner) as (service, _):
            await join(fake, CY, invited)
            async with service.sessions() as session:
                gathering = (await session.execute(select(Gathering))).scalar_one()
                gathering.closes_at = gathering.opened_at  # its time is up
                await session.commit()
            song = await fake.wait_for(lambda call: call.method == "sendVoice", WAIT_S)
            assert "sung by User1001, User1002 and User1003" in song.params["caption"]
            async with asyncio.timeout(WAIT_S):
                await service.jobs.wait()
        assert len(songs(fake)) == 1


async def test_forget_makes_the_song_again_without_them_and_the_album_waits_for_every_yes(
        tmp_path: Path) -> None:
    async with FakeTelegram() as fake, telegram_bot(telegram_settings(tmp_path, fake),
                                                    group_runner) as (service, _):
        invited = await invitation(fake, ALICE)
        for person in (ALICE, BOB, CY):
            await join(fake, person, invited)
        await fake.text(ALICE, GROUP, "/together done", chat_type="group")
        first = await fake.wait_for(lambda call: call.method == "sendVoice", WAIT_S)
        song_id = int(first.result["message_id"])
        share = next(b["callback_data"] for row in first.params["reply_markup"]
                     ["inline_keyboard"] for b in row if b["text"] == "Share to album")
        for person, expected in ((ALICE, "1 of 3"), (BOB, "2 of 3")):
            await fake.press(person, GROUP, song_id, share)
            said = await fake.wait_for(saying(expected), WAIT_S)
            assert "every voice has pressed Share" in said.params["text"]
        async with service.sessions() as session:
            assert not (await session.execute(select(Track.shared))).scalar_one()
        await fake.press(CY, GROUP, song_id, share)
        await fake.wait_for(lambda call: call.method == "sendMessage"
                            and "Every voice said yes" in call.params["text"], WAIT_S)
        async with service.sessions() as session:
            assert (await session.execute(select(Track.shared))).scalar_one()

        forgotten = await service.commands.forget(_person(BOB))
        assert forgotten.text.startswith("Done: I forgot you")
        await fake.wait_for(lambda call: call.method == "sendMessage"
                            and "making it again without their voice" in call.params["text"],
                            WAIT_S)
        again = await fake.wait_for(lambda call: call.method == "sendVoice"
                                    and call is not first, WAIT_S)
        assert "sung by User1001 and User1003" in again.params["caption"]
        async with asyncio.timeout(WAIT_S):
            await service.jobs.wait()
        async with service.sessions() as session:
            assert len((await session.execute(select(Track))).scalars().all()) == 1


def _person(user_id: int) -> Person:
    return Person("telegram", str(user_id), f"User{user_id}")


async def test_three_join_in_a_discord_channel_and_the_song_comes_once(
        tmp_path: Path) -> None:
    fake = FakeDiscord()
    await fake.start()
    try:
        async with running(discord_settings(tmp_path, fake), group_runner) as (service, _):
            people = [fake.user(name) for name in ("ann", "bo", "cy")]
            channel = TEXT_CHANNEL_ID
            await fake.slash(people[0], channel, "together")
            await fake.wait_until(lambda: any("A group song is open" in call.content
                                              for call in fake.calls), WAIT_S)
            posts = channel_messages(channel)
            for count, person in enumerate(people, 1):  # one after the other: join order
                await fake.message(person, channel, attachments=[voice(note(person.id))])
                await fake.wait_until(joined(fake, posts, count), WAIT_S)
            await fake.slash(people[0], channel, "together", {"close": "done"})
            await fake.wait_until(lambda: any(call.filenames for call in fake.calls
                                              if "sung by ann, bo and cy" in call.content),
                                  WAIT_S)
            async with asyncio.timeout(WAIT_S):
                await service.jobs.wait()
        assert len([call for call in fake.calls if call.filenames
                    and "sung by" in call.content]) == 1
    finally:
        await fake.close()


async def test_three_browsers_join_by_link_and_each_hears_the_song(tmp_path: Path) -> None:
    """The web: one browser starts a group song and sends its link; three join with a voice
    note (named through /api/name); only the starter closes it; the song plays for each of
    them by the link; a note after the close is refused with 409."""
    async with (running_service(service_settings(tmp_path), group_runner) as service,
                running_web(service) as page, browser(page) as ann, browser(page) as bo,
                browser(page) as cy, browser(page) as dan):
        people = {"Ann": ann, "Bo": bo, "Cy": cy}
        for name, client in people.items():
            async with client.post("/api/name", json={"name": name}) as named:
                assert named.status == 200
        async with ann.post("/api/together") as started:
            assert started.status == 201
            gathering = await started.json()
        link = f"/api/together/{gathering['token']}"
        for name, client in people.items():
            async with client.post(f"{link}/voices", data=voice_form(name)) as joined:
                assert joined.status == 202, await joined.text()
                assert (await joined.json())["voices"][-1] == name
        async with bo.post(f"{link}/close") as early:
            assert early.status == 403
        async with ann.post(f"{link}/close") as closed:
            assert closed.status == 202
            assert (await closed.json())["status"] == "closed"
        async with dan.post(f"{link}/voices", data=voice_form("Dan")) as late:
            assert late.status == 409
        async with asyncio.timeout(WAIT_S):
            await service.jobs.wait()
        for client in people.values():
            async with client.get(link) as shown:
                state = await shown.json()
            assert state["voices"] == ["Ann", "Bo", "Cy"] and state["song"] is not None
            async with client.get(state["song"]["audio_url"]) as song:
                assert song.status == 200 and (await song.read()).startswith(b"OggS")


def voice_form(name: str) -> aiohttp.FormData:
    form = aiohttp.FormData()
    form.add_field("audio", f"OggS a voice note of {name}".encode(), filename="voice.ogg",
                   content_type="audio/ogg")
    return form


async def test_a_real_group_song_through_telegram(tmp_path: Path) -> None:
    """The real engine behind the door: two people's recordings and a note that is not
    audio make one song sung by the two, saying whose note was left out and why."""
    speech = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "speech"
    notes = {ALICE: (speech / "cmu_arctic" / "cmu_arctic_us_aew_a0001.wav").read_bytes(),
             BOB: (speech / "cmu_arctic" / "cmu_arctic_us_axb_a0004.wav").read_bytes(),
             CY: b"not a recording"}
    async with FakeTelegram() as fake, telegram_bot(telegram_settings(tmp_path, fake),
                                                    run_engine) as (service, _):
        invited = await invitation(fake, ALICE)
        for person, data in notes.items():
            await join(fake, person, invited, data)
        await fake.text(ALICE, GROUP, "/together done", chat_type="group")
        song = await fake.wait_for(lambda call: call.method == "sendVoice", WAIT_S)
        async with asyncio.timeout(WAIT_S):
            await service.jobs.wait()
    caption = song.params["caption"]
    assert "sung by User1001 and User1002" in caption
    assert "User1003's note was left out: this is not audio" in caption
    assert song.files["voice"].data.startswith(b"OggS")
