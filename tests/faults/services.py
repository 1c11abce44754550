"""The service with the Telegram adapter in front of it, as `singsong serve` starts them, for
the fault tests (quick fake songs unless told otherwise)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from bot.adapters.telegram import TelegramAdapter
from bot.config import Settings
from bot.jobs import LOOSE_LIMITS, Runner, close_worker_threads
from bot.service import Service, open_service
from tests.bot.service import service_settings
from tests.fakes.telegram_api import FakeTelegram
from tests.faults import quick_runner


def telegram_settings(tmp_path: Path, fake: FakeTelegram, **options: Any) -> Settings:
    return service_settings(tmp_path, telegram_token=fake.token,
                            telegram_base_url=fake.base_url,
                            telegram_base_file_url=fake.base_file_url, **options)


@asynccontextmanager
async def telegram_bot(settings: Settings, runner: Runner = quick_runner
                       ) -> AsyncIterator[tuple[Service, TelegramAdapter]]:
    executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="singsong-job")
    service = await open_service(settings, runner=runner, executor=executor,
                                 limits=LOOSE_LIMITS, seed=1)
    adapter = TelegramAdapter(service.commands, settings)
    try:
        await service.start()
        await adapter.start()
        service.commands.attach("telegram", adapter)
        yield service, adapter
        await service.jobs.wait()
    finally:
        await adapter.stop()
        await service.close()
        # In threads: the workers' connections may go through a proxy on this loop.
        await asyncio.to_thread(executor.shutdown, wait=True)
        await asyncio.to_thread(close_worker_threads)
