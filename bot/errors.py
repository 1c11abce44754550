"""The bot's domain exceptions: each says, in one sentence, what the person can do."""

from __future__ import annotations


class BotError(Exception):
    """A request the bot will not take now; the message is meant for the person."""


class SlowDown(BotError):
    """Too many requests from one person, or too many at once for the service."""

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s
