"""The same storage tests on the embedded SQLite and on the real PostgreSQL (127.0.0.1:5432,
database `test`), each in a schema of its own that is dropped afterwards."""

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

POSTGRES_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"


@dataclass
class Database:
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    blobs: BlobStore


@pytest.fixture(params=["sqlite", "postgresql"])
async def empty_database(request: pytest.FixtureRequest,
                         tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    """An engine on a database with no tables yet."""
    if request.param == "sqlite":
        engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'test.db'}")
        yield engine
        await engine.dispose()
        return
    schema = f"t_{secrets.token_hex(6)}"
    admin = create_engine(POSTGRES_URL)
    async with admin.begin() as connection:
        await connection.execute(text(f"CREATE SCHEMA {schema}"))
    engine = create_engine_in_schema(schema)
    try:
        yield engine
    finally:
        await engine.dispose()
        async with admin.begin() as connection:
            await connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        await admin.dispose()


def create_engine_in_schema(schema: str) -> AsyncEngine:
    from sqlalchemy.ext.asyncio import create_async_engine

    return create_async_engine(POSTGRES_URL,
                               connect_args={"server_settings": {"search_path": schema}})


@pytest.fixture()
async def database(empty_database: AsyncEngine, tmp_path: Path) -> Database:
    await migrate(empty_database)
    return Database(empty_database, session_factory(empty_database), BlobStore(tmp_path / "blobs"))
