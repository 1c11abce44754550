"""The running service: database, blob store, job engine and commands wired together, and
`singsong serve`, which puts the web chat and every adapter with a token in front of them."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import signal
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.commands import Commands, Delivery
from bot.config import Settings
from bot.jobs import JobEngine, Limits, Runner, run_engine
from bot.scheduler import AlbumSettings, Scheduler, build_album
from bot.together import Together
from storage.blobs import BlobStore
from storage.database import create_engine, migrate, session_factory

log = logging.getLogger("singsong.service")
DEFAULT_LIMITS = Limits()


@dataclass
class Service:
    settings: Settings
    database: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    blobs: BlobStore
    jobs: JobEngine
    commands: Commands

    async def start(self) -> None:
        """Start the job engine, take up the jobs a stopped process left unfinished, and send
        the replies it owed on the platforms attached so far (a reply for a platform that
        is not attached yet waits: call commands.deliver_unsent() after attaching it)."""
        resumed = await self.jobs.start()
        self.commands.together.start()
        owed = await self.commands.deliver_unsent()
        if owed or resumed:
            log.info("took up %d unfinished jobs and %d unsent replies", resumed, owed)

    async def close(self) -> None:
        """Let the jobs under way finish and reply, then close the database."""
        await self.commands.together.stop()
        await self.jobs.stop()
        await self.database.dispose()


SEED_LIMIT = 2**31  # a job's seed is a 31-bit number


async def open_service(settings: Settings, *, runner: Runner = run_engine,
                       executor: Executor | None = None, limits: Limits = DEFAULT_LIMITS,
                       seed: int | None = None) -> Service:
    """The service on the configured database (migrated here) and data directory: the one
    place where its parts are made and handed to each other. `seed` makes the seeds of new
    jobs repeatable (tests)."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    database = create_engine(settings.effective_database_url)
    await migrate(database)
    sessions = session_factory(database)
    blobs = BlobStore(settings.data_dir / "blobs")
    # The delivery comes first: the job engine tells it when a job is finished.
    delivery = Delivery(sessions, blobs)
    jobs = JobEngine(sessions, blobs, settings.effective_database_url, settings.data_dir,
                     redis_url=settings.redis_url, queue_name=settings.redis_queue,
                     limits=limits, runner=runner, stale_after_s=settings.job_stale_s,
                     executor=executor, on_finished=delivery.on_job_finished)
    new_seed = seeds(seed)
    together = Together(sessions, blobs, jobs, delivery.post, new_seed)
    album_settings = AlbumSettings.of(settings)

    async def album_builder(week: str) -> dict[str, Any]:
        return await build_album(sessions, blobs, week, album_settings)

    commands = Commands(sessions, blobs, jobs, delivery, together, new_seed=new_seed,
                        is_admin=settings.is_admin, album_builder=album_builder)
    return Service(settings, database, sessions, blobs, jobs, commands)


def seeds(seed: int | None) -> Callable[[], int]:
    """New jobs' seeds: random, or a repeatable series from `seed`."""
    if seed is None:
        return lambda: random.SystemRandom().randrange(SEED_LIMIT)
    series = random.Random(seed)
    return lambda: series.getrandbits(31)


async def serve(settings: Settings) -> None:
    """`singsong serve`: the web chat, plus Telegram and Discord when their tokens are set,
    and the nightly curation and weekly album by the clock, until SIGINT or SIGTERM; then
    the jobs under way finish and are answered."""
    from bot.adapters.web import WebAdapter

    service = await open_service(settings)
    web = WebAdapter(service.commands, settings)
    adapters: dict[str, Any] = {"web": web}
    if settings.telegram_token is not None:
        from bot.adapters.telegram import TelegramAdapter

        telegram = TelegramAdapter(service.commands, settings)
        if settings.telegram_webhook_url:
            web.app.router.add_post("/telegram/webhook", telegram.on_webhook)
        adapters["telegram"] = telegram
    if settings.discord_token is not None:
        from bot.adapters.discord import DiscordAdapter

        adapters["discord"] = DiscordAdapter(service.commands, settings)

    scheduler = Scheduler(service.sessions, service.blobs, service.commands, settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await service.start()
        for platform, adapter in adapters.items():
            await adapter.start()
            service.commands.attach(platform, adapter)
        await service.commands.deliver_unsent()
        scheduler.start()
        log.info("SingSong is listening on %s (%s)", web.url, ", ".join(adapters))
        await stop.wait()
    finally:
        log.info("stopping: finishing the jobs under way")
        await scheduler.stop()
        await service.jobs.wait()
        for adapter in reversed(adapters.values()):
            with contextlib.suppress(Exception):
                await adapter.stop()
        await service.close()
