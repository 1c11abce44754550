"""The Telegram adapter end to end: the real python-telegram-bot client against the fake Bot
API server, through the real commands, job engine and engine (in threads)."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from sqlalchemy import select

from bot.adapters.telegram import SECRET_HEADER, TelegramAdapter
from bot.commands import NOT_AUDIO, SOMETHING_WENT_WRONG
from bot.config import Settings
from bot.jobs import LOOSE_LIMITS, JobResult, close_worker_threads, run_engine
from bot.service import Service, open_service
from storage.models import Job
from tests.bot.service import service_settings
from tests.conftest import ffmpeg_make
from tests.fakes.telegram_api import ApiCall, FakeTelegram

TOKEN = "987654:SECRET-test-token"
ALICE = 1001  # in a private chat, the chat id is the user's id
GROUP = -2002
TIMEOUT_S = 60
SPANISH = "Hola amigos, vamos a cantar esta canción juntos"
SONG_BUTTONS = ["Another melody", "Short version", "Piano version", "MIDI file", "Picture",
                "Share to album"]


@pytest.fixture()
async def fake() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram(TOKEN) as server:
        yield server


def telegram_settings(tmp_path: Path, fake: FakeTelegram, **options: object) -> Settings:
    return service_settings(tmp_path, telegram_token=TOKEN, telegram_base_url=fake.base_url,
                            telegram_base_file_url=fake.base_file_url, **options)


@asynccontextmanager
async def running_adapter(service: Service, settings: Settings) -> AsyncIterator[TelegramAdapter]:
    adapter = TelegramAdapter(service.commands, settings)
    await adapter.start()
    service.commands.attach("telegram", adapter)
    try:
        yield adapter
    finally:
        await adapter.stop()


@pytest.fixture()
async def telegram(service: Service, fake: FakeTelegram,
                   tmp_path: Path) -> AsyncIterator[TelegramAdapter]:
    async with running_adapter(service, telegram_settings(tmp_path, fake)) as adapter:
        yield adapter
        await service.jobs.wait()  # every song delivered before the adapter goes


def replying(method: str, message_id: int) -> Callable[[ApiCall], bool]:
    """Matches a successful call of `method` made in reply to message `message_id`."""
    def matches(call: ApiCall) -> bool:
        return (call.method == method and call.ok
                and call.params.get("reply_parameters", {}).get("message_id") == message_id)
    return matches


def button_actions(call: ApiCall) -> dict[str, str]:
    rows = call.params.get("reply_markup", {}).get("inline_keyboard", [])
    return {button["text"]: button["callback_data"] for row in rows for button in row}


async def test_a_voice_note_comes_back_as_a_song_and_its_buttons_work(
        fake: FakeTelegram, telegram: TelegramAdapter, speech_clip: Path) -> None:
    asked = await fake.voice(ALICE, ALICE, speech_clip.read_bytes(), duration=14)
    song = await fake.wait_for(replying("sendVoice", asked), TIMEOUT_S)
    assert song.files["voice"].data[:4] == b"OggS"
    assert list(button_actions(song)) == SONG_BUTTONS
    assert "song #" in song.params["caption"]
    working = fake.calls_to("sendMessage")[0]
    assert working.params["reply_parameters"]["message_id"] == asked
    assert {call.params["action"] for call in fake.calls_to("sendChatAction")} == {
        "record_voice"}

    song_id = song.result["message_id"]
    midi_press = await fake.press(ALICE, ALICE, song_id, button_actions(song)["MIDI file"])
    midi = await fake.wait_for(replying("sendDocument", song_id), TIMEOUT_S)
    assert midi.files["document"].data[:4] == b"MThd"
    assert midi.files["document"].filename.endswith(".mid")
    assert any(call.params["callback_query_id"] == midi_press
               for call in fake.calls_to("answerCallbackQuery"))

    # The picture is drawn when asked for, then kept: a second press sends the same file.
    def pictures() -> list[ApiCall]:
        return [call for call in fake.calls_to("sendDocument") if call.ok
                and call.files["document"].filename.endswith(".png")]

    assert pictures() == []
    def pictures_sent(count: int) -> Callable[[ApiCall], bool]:
        return lambda _: len(pictures()) == count

    for presses in (1, 2):
        await fake.press(ALICE, ALICE, song_id, button_actions(song)["Picture"])
        await fake.wait_for(pictures_sent(presses), TIMEOUT_S)
    first, second = (call.files["document"] for call in pictures())
    assert first.data[:4] == b"\x89PNG" and first.data == second.data

    await fake.press(ALICE, ALICE, song_id, button_actions(song)["Share to album"])
    shared = await fake.wait_for(lambda call: replying("sendMessage", song_id)(call)
                                 and "album" in call.params["text"], TIMEOUT_S)
    assert "community album" in shared.params["text"]
    assert len(fake.calls_to("sendVoice")) == 1


async def jobs_of(service: Service) -> list[Job]:
    async with service.sessions() as session:
        return list((await session.execute(select(Job).order_by(Job.id))).scalars())


async def test_lyrics_from_a_spanish_speaker_are_sung_in_spanish(
        fake: FakeTelegram, service: Service, telegram: TelegramAdapter) -> None:
    fake.set_language(ALICE, "es")
    asked = await fake.text(ALICE, ALICE, SPANISH)
    song = await fake.wait_for(replying("sendVoice", asked), TIMEOUT_S)
    caption = song.params["caption"]
    assert caption.startswith("Here is your song #1") and caption.endswith("Sung in Spanish.")
    assert "\nVerse, chorus" in caption  # its parts, then its language
    [job] = await jobs_of(service)
    assert (job.kind, job.parameters["language"], job.parameters["form"]) == (
        "lyrics", "es", "full")
    assert job.parameters["sung"]["language"]["code"] == "es"


async def test_the_short_version_button_sings_the_same_song_short_once(
        fake: FakeTelegram, service: Service, telegram: TelegramAdapter,
        short_speech_clip: Path) -> None:
    asked = await fake.voice(ALICE, ALICE, short_speech_clip.read_bytes(), duration=3,
                             kind="audio", mime="audio/wav", file_name="take.wav")
    song = await fake.wait_for(replying("sendVoice", asked), TIMEOUT_S)
    song_id = song.result["message_id"]
    await fake.press(ALICE, ALICE, song_id, button_actions(song)["Short version"])
    short = await fake.wait_for(replying("sendVoice", song_id), TIMEOUT_S)
    await service.jobs.wait()
    assert len(fake.calls_to("sendVoice")) == 2  # the song, then its short version: once
    assert list(button_actions(short)) == ["Another melody", "Full song", "Piano version",
                                           "MIDI file", "Picture", "Share to album"]
    full, shortened = await jobs_of(service)
    assert (full.parameters["form"], shortened.parameters["form"]) == ("full", "short")
    assert shortened.parameters["sung"]["form"] == "short"
    assert {k: full.parameters[k] for k in ("seed", "style")} == {
        k: shortened.parameters[k] for k in ("seed", "style")}
    assert short.files["voice"].data != song.files["voice"].data


async def test_melody_sends_the_tune_its_midi_and_a_picture_button(
        fake: FakeTelegram, telegram: TelegramAdapter) -> None:
    asked = await fake.text(ALICE, ALICE, "/melody A minor lofi")
    tune = await fake.wait_for(replying("sendVoice", asked), TIMEOUT_S)
    assert "A minor" in tune.params["caption"]
    assert list(button_actions(tune)) == ["Another melody", "Picture", "Share to album"]
    midi = await fake.wait_for(lambda call: replying("sendDocument", asked)(call)
                               and call.files["document"].filename.endswith(".mid"), TIMEOUT_S)
    assert midi.files["document"].data[:4] == b"MThd"
    assert len(fake.calls_to("sendDocument")) == 1  # its piano roll only when asked for
    await fake.press(ALICE, ALICE, tune.result["message_id"], button_actions(tune)["Picture"])
    roll = await fake.wait_for(lambda call: call.method == "sendDocument" and call.ok
                               and call.files["document"].filename.endswith(".png"), TIMEOUT_S)
    assert roll.files["document"].data[:4] == b"\x89PNG"
    assert "upload_voice" in {call.params["action"] for call in fake.calls_to("sendChatAction")}


async def test_piano_as_a_reply_to_a_voice_note(
        fake: FakeTelegram, telegram: TelegramAdapter, speech_clip: Path) -> None:
    voice_note = await fake.voice(ALICE, ALICE, speech_clip.read_bytes(), duration=14)
    await fake.wait_for(replying("sendVoice", voice_note), TIMEOUT_S)  # sung as it arrived
    asked = await fake.text(ALICE, ALICE, "/piano", reply_to=voice_note)
    piano = await fake.wait_for(replying("sendVoice", asked), TIMEOUT_S)
    assert piano.params["caption"].startswith("Your clip on the piano")
    notes = await fake.wait_for(replying("sendDocument", asked), TIMEOUT_S)
    assert notes.files["document"].data[:4] == b"MThd"
    alone = await fake.text(ALICE, ALICE, "/piano")
    explained = await fake.wait_for(replying("sendMessage", alone), TIMEOUT_S)
    assert "reply to a voice note" in explained.params["text"]


async def test_forget_asks_first_and_the_answer_replaces_the_question(
        fake: FakeTelegram, telegram: TelegramAdapter) -> None:
    asked = await fake.text(ALICE, ALICE, "/forget")
    question = await fake.wait_for(replying("sendMessage", asked), TIMEOUT_S)
    assert "Are you sure?" in question.params["text"]
    question_id = question.result["message_id"]
    await fake.press(ALICE, ALICE, question_id, button_actions(question)["Yes, forget me"])
    edit = await fake.wait_for(lambda call: call.method == "editMessageText" and call.ok,
                               TIMEOUT_S)
    assert edit.params["message_id"] == question_id
    assert "nothing of yours" in edit.params["text"]
    assert "reply_markup" not in fake.message(ALICE, question_id)  # the buttons are gone

    style = await fake.text(ALICE, ALICE, "/style")
    styles = await fake.wait_for(replying("sendMessage", style), TIMEOUT_S)
    [lofi] = [action for action in button_actions(styles).values() if action == "style:lofi"]
    await fake.press(ALICE, ALICE, styles.result["message_id"], lofi)
    await fake.wait_for(lambda call: call.method == "editMessageText" and call.ok
                        and "lofi band" in call.params["text"], TIMEOUT_S)

    start = await fake.text(ALICE, ALICE, "/start")
    welcome = await fake.wait_for(replying("sendMessage", start), TIMEOUT_S)
    assert "voice note" in welcome.params["text"]
    assert [command["command"] for command in fake.commands][:2] == ["sing", "melody"]


async def test_files_it_cannot_take_get_a_clear_answer(
        fake: FakeTelegram, telegram: TelegramAdapter) -> None:
    too_big = await fake.voice(ALICE, ALICE, b"OggS never fetched", duration=900,
                               file_size=25 * 1024 * 1024)
    answer = await fake.wait_for(replying("sendMessage", too_big), TIMEOUT_S)
    assert "at most 20 MB" in answer.params["text"]
    pdf = await fake.voice(ALICE, ALICE, b"%PDF-1.4", duration=0, kind="document",
                           mime="application/pdf", file_name="notes.pdf")
    not_audio = await fake.wait_for(replying("sendMessage", pdf), TIMEOUT_S)
    assert not_audio.params["text"] == NOT_AUDIO
    silence = ffmpeg_make("-f", "lavfi", "-i", "anullsrc=r=48000:cl=mono", "-t", "3",
                          "-c:a", "libopus", suffix=".ogg")
    quiet = await fake.voice(ALICE, ALICE, silence, duration=3)
    said = await fake.wait_for(lambda call: replying("sendMessage", quiet)(call)
                               and not call.params["text"].startswith("Got it"), TIMEOUT_S)
    assert "sound" in said.params["text"] or "voice" in said.params["text"]
    assert fake.downloads == [fake.message(ALICE, quiet)["voice"]["file_id"]]
    assert [call.params["file_id"] for call in fake.calls_to("getFile")] == fake.downloads
    assert not fake.calls_to("sendVoice")


async def test_a_song_refused_with_429_is_sent_again_once(
        fake: FakeTelegram, telegram: TelegramAdapter, speech_clip: Path) -> None:
    """Also: an audio file sent as a document, known by its extension, is sung."""
    fake.fail_next("sendVoice", status=429, retry_after=1)
    asked = await fake.voice(ALICE, ALICE, speech_clip.read_bytes(), duration=14,
                             kind="document", mime="application/octet-stream",
                             file_name="take 1.ogg")
    await fake.wait_for(replying("sendVoice", asked), TIMEOUT_S)
    refused = [call for call in fake.calls if call.method == "sendVoice" and not call.ok]
    assert [call.status for call in refused] == [429]
    assert len(fake.calls_to("sendVoice")) == 1


async def test_a_restart_mid_job_ends_in_exactly_one_song(
        fake: FakeTelegram, tmp_path: Path, speech_clip: Path) -> None:
    """The adapter stops while the job runs, so the song cannot be sent; the next process on
    the same data sends it, once."""
    settings = telegram_settings(tmp_path, fake)
    may_run = threading.Event()

    def held_runner(kind: str, data: bytes | None, parameters: dict[str, Any]) -> JobResult:
        may_run.wait(TIMEOUT_S)
        return run_engine(kind, data, parameters)

    asked = 0
    for runner in (held_runner, run_engine):
        executor = ThreadPoolExecutor(2)
        service = await open_service(settings, runner=runner, executor=executor,
                                     limits=LOOSE_LIMITS, seed=1)
        try:
            await service.start()
            async with running_adapter(service, settings):
                await service.commands.deliver_unsent()
                if not asked:
                    asked = await fake.voice(ALICE, ALICE, speech_clip.read_bytes(),
                                             duration=14)
                    await fake.wait_for(replying("sendMessage", asked), TIMEOUT_S)
                else:
                    await fake.wait_for(replying("sendVoice", asked), TIMEOUT_S)
        finally:
            may_run.set()  # the first job finishes with its adapter gone
            await service.close()
            executor.shutdown()
            close_worker_threads()
        if runner is held_runner:
            assert not fake.calls_to("sendVoice")  # the song could not go out
    assert len(fake.calls_to("sendVoice")) == 1


@asynccontextmanager
async def webhook_server() -> AsyncIterator[tuple[str, list[TelegramAdapter]]]:
    """An HTTP server that hands POST /telegram/webhook to the adapter put in the list (as
    `singsong serve` mounts it on the web app): (its URL, the list)."""
    adapters: list[TelegramAdapter] = []

    async def forward(request: web.Request) -> web.Response:
        return await adapters[0].on_webhook(request)

    app = web.Application()
    app.router.add_post("/telegram/webhook", forward)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/telegram/webhook", adapters
    finally:
        await runner.cleanup()


async def test_the_webhook_takes_updates_signed_with_the_secret(
        fake: FakeTelegram, service: Service, tmp_path: Path) -> None:
    async with webhook_server() as (url, adapters):
        settings = telegram_settings(tmp_path, fake, telegram_webhook_url=url,
                                     telegram_webhook_secret="s3cret-Value_1")
        async with running_adapter(service, settings) as adapter:
            adapters.append(adapter)
            assert fake.webhook.url == url and fake.webhook.secret_token == "s3cret-Value_1"
            asked = await fake.text(ALICE, ALICE, "/help")
            answer = await fake.wait_for(replying("sendMessage", asked), TIMEOUT_S)
            assert "/melody" in answer.params["text"]
            async with aiohttp.ClientSession() as client, client.post(
                    url, json={"update_id": 99, "message": {}},
                    headers={SECRET_HEADER: "wrong"}) as forged:
                assert forged.status == 403
        await fake.wait_until(lambda: bool(fake.webhook.deliveries))
        assert fake.webhook.deliveries == [(1, 200)]
        assert not [call for call in fake.calls if call.method == "getUpdates"]


async def test_an_error_is_logged_without_the_token_and_the_person_told(
        fake: FakeTelegram, telegram: TelegramAdapter,
        caplog: pytest.LogCaptureFixture) -> None:
    fake.fail_next("sendMessage", status=400, description="Bad Request: injected bot" + TOKEN)
    caplog.set_level(logging.DEBUG)
    await fake.text(ALICE, ALICE, "/help")
    apology = await fake.wait_for(lambda call: call.method == "sendMessage" and call.ok,
                                  TIMEOUT_S)
    assert apology.params["text"] == SOMETHING_WENT_WRONG
    failure = next(record for record in caplog.records if record.name == "singsong.telegram"
                   and record.levelno == logging.ERROR)
    assert "handling Telegram update" in failure.getMessage()
    assert "BadRequest" in (failure.exc_text or "")
    assert TOKEN not in caplog.text


async def test_in_a_group_it_answers_only_what_is_meant_for_it(
        fake: FakeTelegram, telegram: TelegramAdapter) -> None:
    chatter = await fake.text(ALICE, GROUP, "hello everyone", chat_type="group")
    other_bot = await fake.text(ALICE, GROUP, "/help@other_bot", chat_type="group")
    ours = await fake.text(ALICE, GROUP, "/sing@singsong_test_bot", chat_type="group")
    answer = await fake.wait_for(replying("sendMessage", ours), TIMEOUT_S)
    assert answer.params["text"].startswith("Send /sing followed by")
    answered = {call.params["reply_parameters"]["message_id"]
                for call in fake.calls_to("sendMessage")}
    assert chatter not in answered and other_bot not in answered


async def test_the_fake_server_speaks_the_bot_api(fake: FakeTelegram) -> None:
    """What the adapter tests do not reach: JSON bodies, long polling, offsets, error shapes."""
    api = f"{fake.base_url}{TOKEN}"
    async with aiohttp.ClientSession() as client:
        async def call(method: str, **params: Any) -> tuple[int, dict[str, Any]]:
            async with client.post(f"{api}/{method}", json=params) as answer:
                return answer.status, await answer.json()

        polling = asyncio.create_task(call("getUpdates", timeout=30,
                                           allowed_updates=["message"]))
        await fake.wait_until(lambda: fake.polls_waiting == 1)
        first = await fake.text(ALICE, ALICE, "/start")
        async with asyncio.timeout(5):
            status, body = await polling  # answered as soon as the update came, not in 30 s
        assert status == 200 and body["ok"]
        [update] = body["result"]
        assert update["message"]["message_id"] == first
        assert update["message"]["entities"] == [{"type": "bot_command", "offset": 0,
                                                 "length": 6}]
        _, body = await call("getUpdates", offset=update["update_id"] + 1, timeout=0)
        assert body == {"ok": True, "result": []}

        big = await fake.voice(ALICE, ALICE, b"", duration=1, file_size=21 * 1024 * 1024)
        file_id = fake.message(ALICE, big)["voice"]["file_id"]
        status, body = await call("getFile", file_id=file_id)
        assert (status, body) == (400, {"ok": False, "error_code": 400,
                                        "description": "Bad Request: file is too big"})
        fake.fail_next("sendMessage", retry_after=7)
        status, body = await call("sendMessage", chat_id=ALICE, text="hi")
        assert status == 429 and body["parameters"] == {"retry_after": 7}
        status, body = await call("sendMessage", chat_id=ALICE, text="hi")
        assert body["result"]["text"] == "hi" and body["result"]["from"]["is_bot"]
        status, body = await call("sendMessage", chat_id=555, text="hi")
        assert (status, body["description"]) == (400, "Bad Request: chat not found")
        async with client.post(f"{fake.base_url}0:wrong/getMe") as answer:
            assert answer.status == 401
