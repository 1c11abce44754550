"""From update to reply through the fake Telegram server: the real python-telegram-bot
client, the embedded service (SQLite, in-process queue, a process pool of one worker per
core) and the real engine. 15 s voice notes from 1, 4 and 16 people at once; latency is from
the moment the update is queued on the server to the moment the bot's sendVoice reaches it.
Prints JSON: p50/p95 per level, and the replies lost or doubled (both must be 0).

    .venv/bin/python -m benchmarks.e2e [--rounds-1 8] [--rounds-4 3] [--rounds-16 2]

A level given 0 rounds is left out (`--rounds-4 0 --rounds-16 0`: one person only).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from bot.adapters.telegram import TelegramAdapter
from bot.config import Settings
from bot.jobs import LOOSE_LIMITS
from bot.service import open_service
from tests.fakes.telegram_api import ApiCall, FakeTelegram

SPEECH = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "speech"
CLIPS = ("198-209-0000.ogg", "3436-172162-0000.ogg", "5703-47212-0000.ogg")
REPLY_TIMEOUT_S = 120.0


def replying_to(call: ApiCall) -> tuple[int, int] | None:
    """(chat, message) a sendVoice answers, or None for any other call."""
    if call.method != "sendVoice" or not call.ok:
        return None
    parameters = call.params.get("reply_parameters") or {}
    return int(call.params["chat_id"]), int(parameters.get("message_id", 0))


async def one_round(fake: FakeTelegram, users: list[int], clips: list[bytes],
                    round_index: int) -> list[float]:
    """Every user sends one voice note at the same moment; each one's latency."""

    async def send_and_wait(position: int, user: int) -> float:
        started = time.perf_counter()
        message_id = await fake.voice(user, user, clips[(position + round_index) % len(clips)],
                                      duration=15)
        await fake.wait_for(lambda call: replying_to(call) == (user, message_id),
                            timeout=REPLY_TIMEOUT_S)
        return time.perf_counter() - started

    return list(await asyncio.gather(*(send_and_wait(i, user) for i, user in enumerate(users))))


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


async def measure(rounds: dict[int, int]) -> dict[str, Any]:
    clips = [(SPEECH / name).read_bytes() for name in CLIPS]
    with tempfile.TemporaryDirectory(prefix="singsong-e2e-") as folder:
        async with FakeTelegram() as fake:
            settings = Settings(_env_file=None, data_dir=Path(folder),  # type: ignore[call-arg]
                                telegram_token=SecretStr(fake.token),
                                telegram_base_url=fake.base_url,
                                telegram_base_file_url=fake.base_file_url)
            service = await open_service(settings, limits=LOOSE_LIMITS)
            adapter = TelegramAdapter(service.commands, settings)
            await adapter.start()
            service.commands.attach("telegram", adapter)
            await service.start()
            try:
                # Start every worker process and load the model there: not measured.
                await one_round(fake, [9001, 9002, 9003, 9004], clips, 0)
                levels = {}
                next_user = 1
                for people, count in rounds.items():
                    if count <= 0:
                        continue  # a level not asked for
                    users = list(range(next_user, next_user + people))
                    next_user += people
                    latencies: list[float] = []
                    for index in range(count):
                        latencies += await one_round(fake, users, clips, index)
                    levels[f"{people}_users"] = {
                        "voice_notes": len(latencies),
                        "p50_s": round(statistics.median(latencies), 3),
                        "p95_s": round(percentile(latencies, 0.95), 3),
                        "max_s": round(max(latencies), 3),
                    }
                await service.jobs.wait()
                await asyncio.sleep(0.5)  # a doubled reply would arrive now
            finally:
                await adapter.stop()
                await service.close()
            asked = [call for call in fake.calls if call.method == "getUpdates"]
            answers = Counter(key for call in fake.calls if (key := replying_to(call)))
            sent = sum(count * people for people, count in rounds.items()) + 4
    return {
        "levels": levels,
        "voice_notes_sent": sent,
        "replies_lost": sent - len(answers),
        "replies_doubled": sum(n - 1 for n in answers.values() if n > 1),
        "workers": service.jobs.workers,
        "get_updates_calls": len(asked),
        "targets": {"p95_1_user_s": 1.5, "p95_16_users_s": 8.0},  # issue 20
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds-1", type=int, default=8, help="rounds of 1 user")
    parser.add_argument("--rounds-4", type=int, default=3, help="rounds of 4 users at once")
    parser.add_argument("--rounds-16", type=int, default=2, help="rounds of 16 users at once")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    result = asyncio.run(measure({1: args.rounds_1, 4: args.rounds_4, 16: args.rounds_16}))
    result["cpu_count"] = os.cpu_count()
    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
