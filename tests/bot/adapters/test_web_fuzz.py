"""The web API under fuzzing: thousands of requests made from /api/openapi.json, those that
follow it and those that break it, and not one answer the document does not promise: no 5xx,
no undocumented status, every body and header as declared. Seeded: a run sends the same
requests each time. (benchmarks/web_api_fuzz.py runs a longer one.)"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.adapters.openapi import openapi_document
from bot.service import Service
from tests.bot.adapters.api_fuzz import fuzz, recorded_engine, recorded_melody
from tests.bot.adapters.test_web import running_web
from tests.bot.service import running_service, service_settings

CASES = 2000
SEED = 17


@pytest.fixture()
async def quick_service(tmp_path: Path) -> AsyncIterator[Service]:
    """The service with a recorded engine result for every job (see api_fuzz)."""
    await asyncio.to_thread(recorded_melody)
    async with running_service(service_settings(tmp_path), recorded_engine) as running:
        yield running


async def test_fuzzing_the_api_finds_no_5xx_and_no_undocumented_status(
        quick_service: Service) -> None:
    async with running_web(quick_service) as web:
        report = await asyncio.to_thread(fuzz, web.url, CASES, SEED)
    assert report.cases >= CASES
    assert report.server_errors == []
    assert report.undocumented == []
    assert report.failures == []
    # Requests that follow the document reached every operation (schemathesis leaves out
    # the document it was loaded from).
    assert {label.removesuffix(" (positive)") for label in report.by_operation
            if label.endswith("(positive)")} == {
        f"{method.upper()} {path}" for path, operations in openapi_document()["paths"].items()
        for method in operations if path != "/api/openapi.json"}
    assert {200, 202, 400, 404} <= set(report.statuses)
