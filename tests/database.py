"""The same storage tests on the embedded SQLite and on the real PostgreSQL (127.0.0.1:5432),
each in a database of its own that is dropped afterwards (a URL that worker processes can
use as it is)."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from storage.blobs import BlobStore
from storage.database import create_engine, migrate, session_factory

POSTGRES_SERVER = "postgresql+asyncpg://postgres@127.0.0.1:5432"


@dataclass
class Database:
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    blobs: BlobStore
    url: str
    data_dir: Path


@pytest.fixture(params=["sqlite", "postgresql"])
async def empty_database(request: pytest.FixtureRequest,
                         tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    """An engine on a database with no tables yet."""
    if request.param == "sqlite":
        engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'test.db'}")
        yield engine
        await engine.dispose()
        return
    name = f"singsong_{secrets.token_hex(6)}"
    admin = create_engine(f"{POSTGRES_SERVER}/test")
    async with admin.connect() as connection:
        await connection.execution_options(isolation_level="AUTOCOMMIT")
        await connection.execute(text(f"CREATE DATABASE {name}"))
    engine = create_engine(f"{POSTGRES_SERVER}/{name}")
    try:
        yield engine
    finally:
        await engine.dispose()
        async with admin.connect() as connection:
            await connection.execution_options(isolation_level="AUTOCOMMIT")
            await connection.execute(text(f"DROP DATABASE {name} WITH (FORCE)"))
        await admin.dispose()


@pytest.fixture()
async def database(empty_database: AsyncEngine, tmp_path: Path) -> Database:
    await migrate(empty_database)
    url = empty_database.url.render_as_string(hide_password=False)
    return Database(empty_database, session_factory(empty_database),
                    BlobStore(tmp_path / "data" / "blobs"), url, tmp_path / "data")
