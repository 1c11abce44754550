"""The whole service for adapter tests: SQLite in a temporary data directory, the real engine
in a thread pool (no process start-up per test), seeded job seeds, loose rate limits."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from bot.config import Settings
from bot.jobs import LOOSE_LIMITS, Runner, close_worker_threads, run_engine
from bot.service import Service, open_service

TEST_SEED = 1


def service_settings(tmp_path: Path, **options: Any) -> Settings:
    """Settings that read no .env file and keep everything under tmp_path."""
    return Settings(_env_file=None, data_dir=tmp_path / "data", **options)  # type: ignore[call-arg]


@asynccontextmanager
async def running_service(settings: Settings, runner: Runner = run_engine
                          ) -> AsyncIterator[Service]:
    """A started service whose jobs go to `runner` (the real engine unless given)."""
    executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="singsong-job")
    running = await open_service(settings, runner=runner, executor=executor,
                                 limits=LOOSE_LIMITS, seed=TEST_SEED)
    try:
        await running.start()
        yield running
    finally:
        await running.close()
        # In threads: the workers' connections may go through a proxy on this loop.
        await asyncio.to_thread(executor.shutdown, wait=True)
        await asyncio.to_thread(close_worker_threads)


@pytest.fixture()
async def service(tmp_path: Path) -> AsyncIterator[Service]:
    """A started service with no adapter attached (attach yours, then use it)."""
    async with running_service(service_settings(tmp_path)) as running:
        yield running
