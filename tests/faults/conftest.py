"""The fault tests' fixtures: a store on SQLite, a database of its own on the machine's
PostgreSQL, and retries made quick."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot import outages
from bot.jobs import constants
from storage.blobs import BlobStore
from storage.database import create_engine, migrate, session_factory
from tests.database import POSTGRES_SERVER


@dataclass
class Store:
    database: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    blobs: BlobStore
    url: str
    data_dir: Path


@pytest.fixture()
async def sqlite_store(tmp_path: Path) -> AsyncIterator[Store]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'faults.db'}"
    database = create_engine(url)
    await migrate(database)
    yield Store(database, session_factory(database), BlobStore(tmp_path / "data" / "blobs"),
                url, tmp_path / "data")
    await database.dispose()


@pytest.fixture()
async def postgres_name() -> AsyncIterator[str]:
    """A database of its own on the machine's PostgreSQL, dropped afterwards."""
    name = f"singsong_{secrets.token_hex(6)}"
    admin = create_engine(f"{POSTGRES_SERVER}/test")
    async with admin.connect() as connection:
        await connection.execution_options(isolation_level="AUTOCOMMIT")
        await connection.execute(text(f"CREATE DATABASE {name}"))
    try:
        yield name
    finally:
        async with admin.connect() as connection:
            await connection.execution_options(isolation_level="AUTOCOMMIT")
            await connection.execute(text(f"DROP DATABASE {name} WITH (FORCE)"))
        await admin.dispose()


@pytest.fixture()
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Retries and reconnections a hundred times sooner than in service (same shape)."""
    monkeypatch.setattr(constants, "RETRY_BASE_S", 0.02)
    monkeypatch.setattr(outages, "RECONNECT_S", 0.05)
    monkeypatch.setattr(outages, "RECONNECT_MAX_S", 0.2)
    monkeypatch.setattr(constants, "SWEEP_S", 0.2)


