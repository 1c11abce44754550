"""Waiting out a database or Redis that is away for a while: one rule for every caller (the
intake of a message, a job's worker, the delivery of a reply), retried with backoff by
tenacity until the outage has lasted too long."""

from __future__ import annotations

import builtins
import errno
import logging
import socket
from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy.exc import DBAPIError, DisconnectionError, OperationalError, TimeoutError
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_delay,
    wait_exponential,
)

log = logging.getLogger("singsong.outages")

RECONNECT_S = 0.5  # the first wait before trying a lost database or Redis again (doubles)
RECONNECT_MAX_S = 5.0  # ... up to this
OUTAGE_S = 600.0  # how long a job, or a message kept in the inbox, waits for it to come back

Result = TypeVar("Result")


def is_outage(error: BaseException) -> bool:
    """Whether an error says a server is away (refused, closed, restarting, timed out), as
    opposed to a mistake that trying again cannot fix."""
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    if isinstance(error, RedisConnectionError | RedisTimeoutError | OperationalError
                  | DisconnectionError | TimeoutError | socket.gaierror):
        return True
    if isinstance(error, OSError):  # a network fault, not a missing file or a full disk
        return isinstance(error, ConnectionError | builtins.TimeoutError) or (
            error.errno is None or error.errno in _NETWORK_ERRNOS)
    # asyncpg's "the database system is shutting down" and a connection closed mid-query
    # arrive as DBAPIErrors that say their connection is gone.
    return isinstance(error, DBAPIError) and (
        error.connection_invalidated or isinstance(error.orig, OSError)
        or type(error.orig).__name__ in _ASYNCPG_OUTAGES
        or "CannotConnectNow" in str(error.orig))


_NETWORK_ERRNOS = frozenset({errno.ECONNREFUSED, errno.ECONNRESET, errno.ECONNABORTED,
                             errno.EPIPE, errno.ETIMEDOUT, errno.EHOSTUNREACH,
                             errno.ENETUNREACH, errno.ENETDOWN, errno.EADDRNOTAVAIL})
_ASYNCPG_OUTAGES = frozenset({"CannotConnectNowError", "ConnectionDoesNotExistError",
                              "ConnectionFailureError", "AdminShutdownError",
                              "TooManyConnectionsError", "InterfaceError"})


async def outlast(call: Callable[[], Awaitable[Result]], what: str, *,
                  outage_s: float = OUTAGE_S) -> Result:
    """`call()`, called again while it fails because a server is away (waiting RECONNECT_S,
    doubling up to RECONNECT_MAX_S), for at most `outage_s`; then its last error is
    raised. Other errors are raised at once. `call` must be safe to repeat."""
    def waiting(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        log.warning("%s: %s (%s): trying again in %.1f s", what, type(error).__name__,
                    _cause(error), state.upcoming_sleep)

    retrying = AsyncRetrying(retry=retry_if_exception(is_outage), reraise=True,
                             wait=wait_exponential(multiplier=RECONNECT_S, min=RECONNECT_S,
                                                   max=RECONNECT_MAX_S),
                             stop=stop_after_delay(outage_s), before_sleep=waiting)
    async for attempt in retrying:
        with attempt:
            return await call()
    raise AssertionError("unreachable: tenacity either returns or raises")


def _cause(error: BaseException | None) -> str:
    if error is None:
        return ""
    inner = getattr(error, "orig", None) or error.__cause__ or error
    return f"{type(inner).__name__}: {inner}"[:200]
