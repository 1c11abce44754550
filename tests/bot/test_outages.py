"""The one rule for waiting out a server that is away: what counts as an outage, how long it
is waited out, and that everything else is raised at once."""

from __future__ import annotations

import time

import pytest
from sqlalchemy.exc import OperationalError

from bot import outages
from bot.outages import is_outage, outlast


@pytest.fixture(autouse=True)
def quick(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(outages, "RECONNECT_S", 0.01)
    monkeypatch.setattr(outages, "RECONNECT_MAX_S", 0.02)


def test_network_faults_are_outages_and_local_faults_are_not() -> None:
    assert is_outage(ConnectionRefusedError(111, "refused"))
    assert is_outage(OSError("Multiple exceptions: [Errno 111] Connect call failed"))
    assert is_outage(OperationalError("SELECT 1", {}, Exception("the server closed")))
    assert not is_outage(FileNotFoundError(2, "no such blob"))
    assert not is_outage(OSError(28, "No space left on device"))
    assert not is_outage(ValueError("a bug"))


async def test_an_outage_is_waited_out_until_the_call_succeeds() -> None:
    calls = []

    async def flaky() -> str:
        calls.append(time.monotonic())
        if len(calls) < 4:
            raise ConnectionRefusedError(111, "refused")
        return "kept"

    assert await outlast(flaky, "test") == "kept"
    assert len(calls) == 4


async def test_a_long_outage_is_raised_after_its_bound_and_a_mistake_at_once() -> None:
    calls = 0

    async def away() -> None:
        nonlocal calls
        calls += 1
        raise ConnectionResetError(104, "reset")

    started = time.monotonic()
    with pytest.raises(ConnectionResetError):
        await outlast(away, "test", outage_s=0.2)
    assert 0.2 <= time.monotonic() - started < 2.0 and calls > 2

    async def mistaken() -> None:
        nonlocal calls
        calls = -1
        raise FileNotFoundError(2, "no such blob")

    with pytest.raises(FileNotFoundError):
        await outlast(mistaken, "test")
    assert calls == -1
