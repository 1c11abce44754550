"""The service with the Telegram adapter in front of it, as `singsong serve` starts them, for
the fault tests (quick fake songs unless told otherwise)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from bot.adapters.telegram import TelegramAdapter
from bot.config import Settings
from bot.jobs import Runner
from bot.service import Service
from tests.bot.service import running_service, service_settings
from tests.fakes.telegram_api import FakeTelegram
from tests.faults import quick_runner


def telegram_settings(tmp_path: Path, fake: FakeTelegram, **options: Any) -> Settings:
    return service_settings(tmp_path, telegram_token=fake.token,
                            telegram_base_url=fake.base_url,
                            telegram_base_file_url=fake.base_file_url, **options)


@asynccontextmanager
async def telegram_bot(settings: Settings, runner: Runner = quick_runner
                       ) -> AsyncIterator[tuple[Service, TelegramAdapter]]:
    """The service and the Telegram adapter, started as `singsong serve` starts them."""
    async with running_service(settings, runner) as service:
        adapter = TelegramAdapter(service.commands, settings)
        try:
            await adapter.start()
            service.commands.attach("telegram", adapter)
            yield service, adapter
            await service.jobs.wait()
        finally:
            await adapter.stop()
