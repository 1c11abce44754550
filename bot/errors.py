"""The bot's one root of errors, and its kinds. A feature raises the kind that fits, with one
sentence for the person; each door decides in one place what the person sees of each kind:
the chat doors a sentence (`Commands.handle`), the web an HTTP status (`web.refusal_response`),
the command line an exit status (`cli.main`). The engine keeps its own root
(`engine.errors.EngineError`); the doors map its InvalidRequest as a Mistake."""

from __future__ import annotations


class BotError(Exception):
    """A request the bot will not take now; the message is meant for the person."""


class Mistake(BotError):
    """The request cannot be done as asked: the person can put it right."""


class TooLarge(Mistake):
    """A file over the limit of the door it came through."""


class UnsupportedForm(Mistake):
    """A request in a shape the door does not read (an HTTP body that is neither form nor
    JSON)."""


class NotFound(BotError):
    """What was asked for is not there, or not the person's."""


class NotAllowed(BotError):
    """The person may not do that (close someone else's group song, ask from another site)."""


class Unauthorized(NotAllowed):
    """The door is private and the request did not carry its token."""


class Closed(BotError):
    """What was asked for was there and has closed (a group song that stopped gathering)."""


class SlowDown(BotError):
    """Too many requests from one person, or too many at once for the service."""

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s
