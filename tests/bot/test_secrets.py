"""Secrets never reach a log: a whole `singsong serve` run with both platforms' tokens and a
webhook secret, debug logging on, songs made on Telegram and Discord and an error whose text
holds the token; then every line it logged is searched for them."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import aiohttp

from tests.bot.test_serve import free_port, until_listening
from tests.fakes.discord_api import TEXT_CHANNEL_ID, FakeDiscord
from tests.fakes.telegram_api import FakeTelegram

SINGSONG = Path(sys.executable).parent / "singsong"
TELEGRAM_TOKEN = "424242:TelegramSecretDoNotLog"
WEBHOOK_SECRET = "WebhookSecretDoNotLog"
TIMEOUT_S = 90


async def test_no_secret_reaches_the_logs_of_a_full_run(tmp_path: Path,
                                                        speech_clip: Path) -> None:
    discord = FakeDiscord()
    await discord.start()
    async with FakeTelegram(TELEGRAM_TOKEN) as telegram:
        port = free_port()
        environment = {key: value for key, value in os.environ.items()
                       if not key.startswith("SINGSONG_")}
        environment |= {
            "SINGSONG_DATA_DIR": str(tmp_path / "data"), "SINGSONG_WEB_PORT": str(port),
            "SINGSONG_TELEGRAM_TOKEN": TELEGRAM_TOKEN,
            "SINGSONG_TELEGRAM_BASE_URL": telegram.base_url,
            "SINGSONG_TELEGRAM_BASE_FILE_URL": telegram.base_file_url,
            "SINGSONG_TELEGRAM_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "SINGSONG_DISCORD_TOKEN": discord.token,
            "SINGSONG_DISCORD_API_BASE": discord.api_base,
        }
        log = tmp_path / "serve.log"  # a file: debug logging would fill a pipe and block
        server = subprocess.Popen([str(SINGSONG), "-v", "serve"], cwd=tmp_path,
                                  env=environment, stdout=log.open("wb"),
                                  stderr=subprocess.STDOUT)
        try:
            await until_listening(f"http://127.0.0.1:{port}/", server)
            await discord.wait_for_connection(TIMEOUT_S)
            clip = speech_clip.read_bytes()
            asked = await telegram.voice(1, 1, clip, duration=14)
            await telegram.wait_for(lambda call: call.method == "sendVoice" and call.ok
                                    and call.params["reply_parameters"]["message_id"] == asked,
                                    TIMEOUT_S)
            telegram.fail_next("sendMessage", status=400,
                               description="Bad Request: chat of bot" + TELEGRAM_TOKEN)
            await telegram.text(1, 1, "/help")
            await telegram.wait_for(lambda call: call.method == "sendMessage" and not call.ok,
                                    TIMEOUT_S)
            await discord.message(discord.user("dora"), TEXT_CHANNEL_ID,
                                  content="/help")
            async with aiohttp.ClientSession() as client, client.get(
                    f"http://127.0.0.1:{port}/api/history") as response:
                assert response.status == 200
            await asyncio.sleep(1.0)  # let the last log lines be written
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=60)
            await discord.close()
    logged = log.read_text(errors="replace")
    assert "sendVoice" in logged or "Telegram adapter started" in logged  # it did log
    for secret in (TELEGRAM_TOKEN, TELEGRAM_TOKEN.split(":")[1], WEBHOOK_SECRET,
                   discord.token):
        assert secret not in logged, f"a secret reached the log: {secret[:6]}..."
