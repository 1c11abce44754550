"""Fault tests. The fake runners live here, not in the test module: a spawned worker process
imports them, and this module imports next to nothing."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

from bot.jobs import JobResult, run_worker

WAIT_S = 60.0  # the bound on every wait; a passing run takes a fraction of it


def quick_runner(kind: str, data: bytes | None, parameters: dict[str, Any]) -> JobResult:
    """A song in no time: bytes that say which job made them."""
    return JobResult(audio=f"OggS{kind}:{parameters.get('n')}".encode(), midi=b"MThd",
                     duration_s=1.0, key="C major", tempo_bpm=100.0,
                     timings_s={"total": 0.001})


def killable_runner(kind: str, data: bytes | None,
                    parameters: dict[str, Any]) -> JobResult:
    """The first attempt writes its process id to parameters["pid_file"] and hangs there
    until the test kills that process; a later attempt finishes at once."""
    pid_file = Path(parameters["pid_file"])
    if pid_file.exists():
        return quick_runner(kind, data, parameters)
    written = pid_file.with_suffix(".tmp")
    written.write_text(str(os.getpid()))
    written.rename(pid_file)  # whole, or not there
    time.sleep(WAIT_S)
    raise AssertionError("this worker should have been killed")


def crashing_runner(kind: str, data: bytes | None,
                    parameters: dict[str, Any]) -> JobResult:
    """Takes its worker process down every time (as a crash in native code would)."""
    os._exit(70)


def redis_worker(redis_url: str, database_url: str, data_dir: str, queue: str) -> None:
    """A `singsong worker` process, with the killable runner."""
    asyncio.run(run_worker(redis_url, database_url, data_dir, killable_runner, queue))


def held_runner(kind: str, data: bytes | None, parameters: dict[str, Any]) -> JobResult:
    """Writes its process id to parameters["pid_file"], then waits for parameters["go_file"]
    to appear before it finishes."""
    written = Path(parameters["pid_file"]).with_suffix(".tmp")
    written.write_text(str(os.getpid()))
    written.rename(parameters["pid_file"])
    go = Path(parameters["go_file"])
    deadline = time.monotonic() + WAIT_S
    while not go.exists():
        if time.monotonic() > deadline:
            raise AssertionError("never told to go on")
        time.sleep(0.02)
    return quick_runner(kind, data, parameters)


def held_redis_worker(redis_url: str, database_url: str, data_dir: str, queue: str) -> None:
    """A `singsong worker` process, with the held runner."""
    asyncio.run(run_worker(redis_url, database_url, data_dir, held_runner, queue))
