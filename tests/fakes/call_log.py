"""What a fake server was asked, and waiting for it: the part the fakes of Telegram and
Discord share."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Generic, TypeVar

Call = TypeVar("Call")


class CallLog(Generic[Call]):
    """`calls` in the order they came; whoever changes the server's state notifies
    `_changed` (under it), which wakes the waits below."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self._changed = asyncio.Condition()

    async def wait_for(self, predicate: Callable[[Call], bool], timeout: float = 10.0) -> Call:
        """The first call (made already or still to come) that matches the predicate."""
        async with asyncio.timeout(timeout), self._changed:
            while True:
                for call in self.calls:
                    if predicate(call):
                        return call
                await self._changed.wait()

    async def wait_until(self, condition: Callable[[], bool], timeout: float = 10.0) -> None:
        """Until the condition on the server's state holds (checked at each change)."""
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(condition)
