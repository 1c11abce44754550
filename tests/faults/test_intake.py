"""Nothing lost at the door: a message is kept in the database before its platform is told it
arrived. A Telegram update is not confirmed (the getUpdates offset) while the database is
away, and is answered once it is back; a webhook update that cannot be kept gets a 503; an
update or a Discord message kept by a process that stopped before handling it is handled by
the next start; a redelivered Discord message gets no second answer."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import pytest

from bot.adapters import telegram
from bot.adapters import web as web_adapter
from bot.adapters.discord import message_key
from bot.adapters.telegram import SECRET_HEADER
from bot.adapters.web import WebAdapter
from bot.jobs import LOOSE_LIMITS, close_worker_threads
from bot.service import open_service
from tests.bot.adapters.test_discord import channel_messages, discord_settings, running
from tests.bot.adapters.test_telegram import replying, webhook_server
from tests.bot.service import service_settings
from tests.fakes.discord_api import FakeDiscord
from tests.fakes.tcp_proxy import TcpProxy
from tests.fakes.telegram_api import FakeTelegram
from tests.faults import WAIT_S, quick_runner
from tests.faults.services import telegram_bot, telegram_settings

POSTGRES_PORT = 5432
TOKEN = "987654:SECRET-intake-token"
ALICE = 1001  # in a private chat, the chat id is the user's id


def postgres_url(port: int, name: str) -> str:
    return f"postgresql+asyncpg://postgres@127.0.0.1:{port}/{name}"


async def test_a_note_sent_while_postgresql_is_away_is_not_confirmed_and_is_answered_once(
        postgres_name: str, tmp_path: Path, quick_retries: None) -> None:
    """PostgreSQL refuses connections (a proxy cut) when the note arrives: the update stays
    unconfirmed at the fake Bot API (Telegram would send it again) while the adapter waits;
    once the database is back the note is kept, confirmed, and answered, once."""
    async with FakeTelegram(TOKEN) as fake, TcpProxy(POSTGRES_PORT) as proxy:
        settings = telegram_settings(tmp_path, fake,
                                     database_url=postgres_url(proxy.port, postgres_name))
        async with telegram_bot(settings) as (service, _):
            proxy.cut()
            asked = await fake.text(ALICE, ALICE, "/melody")
            await proxy.until_refused(5)  # the adapter knocking to keep the update
            assert fake.pending_updates() == 1  # not confirmed
            proxy.restore()
            await fake.wait_for(replying("sendVoice", asked), WAIT_S)
            await fake.wait_until(lambda: fake.pending_updates() == 0)
            async with asyncio.timeout(WAIT_S):
                await service.jobs.wait()
        assert len([c for c in fake.calls_to("sendVoice")
                    if replying("sendVoice", asked)(c)]) == 1
        assert len([c for c in fake.calls_to("sendMessage")
                    if replying("sendMessage", asked)(c)]) == 1  # "Composing..."


async def test_a_webhook_update_that_cannot_be_kept_gets_a_503_and_its_retry_is_answered(
        postgres_name: str, tmp_path: Path, quick_retries: None,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """With the database away longer than a webhook request may wait, the update is answered
    503 (so Telegram sends it again); the same update sent again after the database is back
    is answered with 200 and handled."""
    monkeypatch.setattr(telegram, "WEBHOOK_OUTAGE_S", 0.5)
    async with (webhook_server() as (url, adapters), FakeTelegram(TOKEN) as fake,
                TcpProxy(POSTGRES_PORT) as proxy):
        settings = telegram_settings(
            tmp_path, fake, database_url=postgres_url(proxy.port, postgres_name),
            telegram_webhook_url=url, telegram_webhook_secret="intake-secret")
        async with telegram_bot(settings) as (_, adapter):
            adapters.append(adapter)
            proxy.cut()
            asked = await fake.text(ALICE, ALICE, "/help")
            await fake.wait_until(lambda: bool(fake.webhook.deliveries))
            assert fake.webhook.deliveries == [(1, 503)]
            proxy.restore()
            update = {"update_id": 1, "message": fake.message(ALICE, asked)}
            async with aiohttp.ClientSession() as client, client.post(
                    url, json=update, headers={SECRET_HEADER: "intake-secret"}) as again:
                assert again.status == 200
            help_ = await fake.wait_for(replying("sendMessage", asked), WAIT_S)
            assert "/melody" in help_.params["text"]


async def test_an_update_kept_by_a_process_that_stopped_is_handled_at_the_next_start(
        tmp_path: Path) -> None:
    """A process got the update, kept it, confirmed it, and stopped before handling it (the
    fake no longer holds it): the next start handles it, once."""
    async with FakeTelegram(TOKEN) as fake:
        settings = telegram_settings(tmp_path, fake)
        asked = await fake.text(ALICE, ALICE, "/melody")
        (lost,) = fake.take_updates()
        service = await open_service(settings, runner=quick_runner, limits=LOOSE_LIMITS)
        assert await service.commands.inbox.keep("telegram", telegram.update_key(
            lost["update_id"]), str(ALICE), lost)
        await service.database.dispose()
        async with telegram_bot(settings) as (service, _):
            await fake.wait_for(replying("sendVoice", asked), WAIT_S)
            assert await service.commands.inbox.unhandled("telegram") == []
        assert len([c for c in fake.calls_to("sendVoice")
                    if replying("sendVoice", asked)(c)]) == 1


async def test_a_discord_message_kept_but_not_handled_is_handled_at_the_next_start(
        tmp_path: Path) -> None:
    """The message came while no adapter ran (a process that kept it and stopped): the next
    start fetches it from Discord and answers it."""
    fake = FakeDiscord()
    await fake.start()
    try:
        settings = discord_settings(tmp_path, fake)
        bob = fake.user("bob")
        message = await fake.message(bob, content="/melody", dm=True, dispatched=False)
        service = await open_service(settings, runner=quick_runner, limits=LOOSE_LIMITS)
        key = message_key(int(message["channel_id"]), int(message["id"]))
        assert await service.commands.inbox.keep(
            "discord", key, str(bob.id),
            {"channel_id": message["channel_id"], "message_id": message["id"]})
        await service.database.dispose()
        async with running(settings, quick_runner) as (service, _):
            posts = channel_messages(fake.dm_channel_id(bob))
            await fake.wait_until(lambda: len(fake.sent(posts)) >= 2)
            async with asyncio.timeout(WAIT_S):
                await service.jobs.wait()
            assert await service.commands.inbox.unhandled("discord") == []
        texts = [call.content for call in fake.sent(posts)]
        assert texts[0].startswith("Composing") and texts[1].startswith("A new melody")
        assert len(texts) == 2
    finally:
        await fake.close()


async def test_a_redelivered_discord_message_gets_no_second_answer(tmp_path: Path) -> None:
    """The gateway delivers a message again after its song was sent (and again while its
    job runs): no second "Composing..." and no second song."""
    fake = FakeDiscord()
    await fake.start()
    try:
        async with running(discord_settings(tmp_path, fake), quick_runner) as (service, _):
            bob = fake.user("bob")
            posts = channel_messages(fake.dm_channel_id(bob))
            message = await fake.message(bob, content="/melody", dm=True)
            await fake.wait_until(lambda: len(fake.sent(posts)) >= 2)
            async with asyncio.timeout(WAIT_S):
                await service.jobs.wait()
            await fake.dispatch("MESSAGE_CREATE", message)
            await fake.message(bob, content="/help", dm=True)  # a marker after it
            await fake.wait_until(lambda: len(fake.sent(posts)) >= 3)
        assert len(fake.sent(posts)) == 3
    finally:
        await fake.close()


async def test_a_web_request_made_while_the_database_is_away_gets_a_503_and_its_retry_a_job(
        postgres_name: str, tmp_path: Path, quick_retries: None,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The web answers only once the job row exists: with the database away longer than a
    request may wait, 503 with Retry-After (nothing made); the page's retry, with the same
    Idempotency-Key, gets the job, once."""
    monkeypatch.setattr(web_adapter, "REQUEST_OUTAGE_S", 0.5)
    async with TcpProxy(POSTGRES_PORT) as proxy:
        settings = service_settings(tmp_path, web_port=0,
                                    database_url=postgres_url(proxy.port, postgres_name))
        service = await open_service(settings, runner=quick_runner, limits=LOOSE_LIMITS)
        page = WebAdapter(service.commands, settings)
        try:
            await service.start()
            await page.start()
            service.commands.attach("web", page)
            async with aiohttp.ClientSession(
                    base_url=page.url, cookie_jar=aiohttp.CookieJar(unsafe=True)) as client:
                body, key = {"kind": "melody"}, {"Idempotency-Key": "k" * 32}
                proxy.cut()
                async with client.post("/api/jobs", json=body, headers=key) as refused:
                    assert refused.status == 503
                    assert int(refused.headers["Retry-After"]) > 0
                    assert "error" in await refused.json()
                proxy.restore()
                made = []
                for _ in range(2):
                    async with client.post("/api/jobs", json=body, headers=key) as answer:
                        assert answer.status == 202
                        made.append((await answer.json())["id"])
            assert made[0] == made[1]
            async with asyncio.timeout(WAIT_S):
                await service.jobs.wait()
        finally:
            await page.stop()
            await service.close()
            await asyncio.to_thread(close_worker_threads)
