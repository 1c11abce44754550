"""Real PostgreSQL and Redis servers of a test's (or a benchmark's) own, on free ports, in a
temporary folder, so that they can really be restarted (Redis without persistence, so its
queue is really gone) while the machine's own servers stay untouched."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

POSTGRES_BIN = Path("/usr/lib/postgresql/15/bin")
START_TIMEOUT_S = 60.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _until_listening(port: int, process: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the server on port {port} exited ({process.returncode})")
        if time.monotonic() > deadline:
            raise TimeoutError(f"nothing listens on port {port}")
        time.sleep(0.02)


class OwnRedis:
    """`redis-server` keeping nothing on disk: a restart starts it empty."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self._process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--loglevel", "warning"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _until_listening(self.port, self._process)

    def stop(self) -> None:
        """Kill it (its data is gone with it)."""
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait(START_TIMEOUT_S)
        self._process = None

    def restart(self, away_s: float = 0.0) -> None:
        self.stop()
        time.sleep(away_s)
        self.start()


class OwnPostgres:
    """A PostgreSQL 15 cluster (trust auth, database `test`) run as the postgres user."""

    def __init__(self) -> None:
        self.port = free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="singsong-pg-"))
        self.url = f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/test"
        self._created = False
        shutil.chown(self.folder, "postgres", "postgres")
        self._as_postgres(POSTGRES_BIN / "initdb", "-D", str(self.folder / "data"),
                          "--auth=trust", "--username=postgres", "--no-sync")
        with (self.folder / "data" / "postgresql.conf").open("a") as conf:
            conf.write(f"\nport = {self.port}\nlisten_addresses = '127.0.0.1'\n"
                       f"unix_socket_directories = '{self.folder}'\nfsync = off\n"
                       "synchronous_commit = off\nfull_page_writes = off\n")

    def _as_postgres(self, *command: str | Path) -> None:
        prefix = [] if os.geteuid() != 0 else ["runuser", "-u", "postgres", "--"]
        subprocess.run([*prefix, *map(str, command)], check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, cwd=self.folder)

    def _pg_ctl(self, *arguments: str) -> None:
        self._as_postgres(POSTGRES_BIN / "pg_ctl", "-D", str(self.folder / "data"), "-w",
                          "-t", str(int(START_TIMEOUT_S)), "-l", str(self.folder / "log"),
                          *arguments)

    def start(self) -> None:
        self._pg_ctl("start")
        _until_listening(self.port)
        if not self._created:
            self._as_postgres(POSTGRES_BIN / "createdb", "-h", "127.0.0.1", "-p",
                              str(self.port), "-U", "postgres", "test")
            self._created = True

    def stop(self, mode: str = "fast") -> None:
        self._pg_ctl("stop", "-m", mode)

    def restart(self, away_s: float = 0.0) -> None:
        """Stop it ('fast': sessions are ended), wait `away_s`, start it again."""
        self.stop()
        time.sleep(away_s)
        self.start()

    def remove(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self.stop("immediate")
        shutil.rmtree(self.folder, ignore_errors=True)


@contextlib.contextmanager
def own_redis() -> Iterator[OwnRedis]:
    server = OwnRedis()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@contextlib.contextmanager
def own_postgres() -> Iterator[OwnPostgres]:
    server = OwnPostgres()
    try:
        server.start()
        yield server
    finally:
        server.remove()
