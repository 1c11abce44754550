"""Fixtures of the chat side's tests: the service, and the web chat with two browsers."""

from collections.abc import AsyncIterator

import aiohttp
import pytest

from bot.adapters.web import WebAdapter
from bot.service import Service
from tests.bot.adapters.test_web import browser, running_web
from tests.bot.service import service  # noqa: F401
from tests.database import database, empty_database  # noqa: F401


@pytest.fixture()
async def web(service: Service) -> AsyncIterator[WebAdapter]:  # noqa: F811
    """The web chat of the service, on a free port of 127.0.0.1."""
    async with running_web(service) as adapter:
        yield adapter


@pytest.fixture()
async def alice(web: WebAdapter) -> AsyncIterator[aiohttp.ClientSession]:
    async with browser(web) as session:
        yield session


@pytest.fixture()
async def bob(web: WebAdapter) -> AsyncIterator[aiohttp.ClientSession]:
    async with browser(web) as session:
        yield session
