"""Logging for the `singsong` command: plain lines by default, or one JSON object per line
with SINGSONG_LOG_FORMAT=json (for a log collector).

A JSON line holds `time` (UTC, ISO 8601), `level`, `logger` and `message`, then whatever the
call passed in `extra=` (`log.info("...", extra={"job_id": 7})` adds `"job_id": 7`), and
`exception` with the traceback when there is one. Filters on loggers (the Telegram token
redactor) run before either format, so they apply to both.

Every line logged while a job is worked on carries that job's context (`job_context`: its
`job_id` and the `person_id` who asked), whichever logger wrote it and whichever thread of
the job: a JSON line has them as fields, a plain line ends with `[job_id=7 person_id=3]`.
The context holds ids only, never a token or a message's text.

SINGSONG_LOG_FORMAT is read from the environment only, not from `.env`: logging is set up
before the settings are read.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import logging
import os
import sys
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any, TextIO

FORMAT_VARIABLE = "SINGSONG_LOG_FORMAT"
FORMATS = ("plain", "json")
PLAIN_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
_MARK = "_singsong_handler"

# Every attribute a LogRecord has of its own; anything else on a record came from `extra=`.
_RECORD_FIELDS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message", "asctime", "taskName"}


# The job being worked on in this context (asyncio copies it into tasks and to_thread).
_job: ContextVar[tuple[tuple[str, int], ...]] = ContextVar("singsong_job", default=())


@contextlib.contextmanager
def job_context(job_id: int, person_id: int | None = None) -> Iterator[None]:
    """Every record logged inside (in this task, and the tasks and threads it starts) carries
    job_id and, when given, person_id."""
    token = _job.set((("job_id", job_id),) if person_id is None
                     else (("job_id", job_id), ("person_id", person_id)))
    try:
        yield
    finally:
        _job.reset(token)


def job_fields(record: logging.LogRecord) -> dict[str, int]:
    """The job context of the code that logged this record, less what the call passed
    itself in `extra=`."""
    return {key: value for key, value in _job.get() if key not in vars(record)}


class PlainFormatter(logging.Formatter):
    """PLAIN_FORMAT, and the job context at the end of the line while there is one."""

    def __init__(self) -> None:
        super().__init__(PLAIN_FORMAT)

    def formatMessage(self, record: logging.LogRecord) -> str:
        line = super().formatMessage(record)
        context = job_fields(record)
        if not context:
            return line
        return f"{line} [{' '.join(f'{key}={value}' for key, value in context.items())}]"


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.datetime.fromtimestamp(record.created, datetime.UTC)
            .isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **job_fields(record),
        }
        for key, value in vars(record).items():
            if key not in _RECORD_FIELDS and not key.startswith("_") and key not in entry:
                entry[key] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        # default=str: an extra that JSON cannot hold is written as its text, never dropped.
        return json.dumps(entry, ensure_ascii=False, default=str)


def log_format(environ: dict[str, str] | None = None) -> str:
    """'json' or 'plain', from SINGSONG_LOG_FORMAT (anything else: plain)."""
    value = (environ if environ is not None else os.environ).get(FORMAT_VARIABLE, "")
    return "json" if value.strip().lower() == "json" else "plain"


def formatter_for(kind: str) -> logging.Formatter:
    return JsonFormatter() if kind == "json" else PlainFormatter()


def setup_logging(level: int, stream: TextIO, kind: str | None = None) -> logging.Handler | None:
    """Send log records at `level` or above to `stream` in the configured format (or `kind`).
    Like logging.basicConfig, it leaves a root logger that already has someone else's
    handlers alone (an embedding program, pytest) and returns None; a handler it installed
    before is replaced. Returns the handler installed."""
    root = logging.getLogger()
    ours = [handler for handler in root.handlers if getattr(handler, _MARK, False)]
    if len(ours) < len(root.handlers):
        return None
    for old in ours:
        root.removeHandler(old)
    handler = logging.StreamHandler(stream)
    kind = kind or log_format()
    handler.setFormatter(formatter_for(kind))
    setattr(handler, _MARK, True)
    root.addHandler(handler)
    root.setLevel(level)
    # In JSON, Python's warnings become log records too, so that stderr stays all JSON.
    logging.captureWarnings(kind == "json")
    return handler


def worker_logging(level: int = logging.INFO) -> None:
    """For a worker process the job engine spawns (ProcessPoolExecutor(initializer=...,
    initargs=(level,))): a spawned process starts with no logging set up, so without this its
    records would reach stderr through logging's last-resort handler, unformatted. The
    format comes from the environment the process inherited."""
    setup_logging(level, sys.stderr)
