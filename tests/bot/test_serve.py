"""`singsong serve` as a newcomer runs it: the real command in its own process, on the
embedded default (SQLite, process pool, web chat on 127.0.0.1), stopped with SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import aiohttp

SINGSONG = Path(sys.executable).parent / "singsong"
START_TIMEOUT_S = 60.0
JOB_TIMEOUT_S = 90.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def until_listening(url: str, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    async with aiohttp.ClientSession() as client:
        while time.monotonic() < deadline:
            assert server.poll() is None, "singsong serve exited at start"
            try:
                async with client.get(url) as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientConnectionError:
                pass
            await asyncio.sleep(0.2)
    raise AssertionError(f"singsong serve did not answer on {url}")


async def test_serve_answers_on_localhost_and_stops_cleanly(tmp_path: Path) -> None:
    port = free_port()
    environment = {key: value for key, value in os.environ.items()
                   if not key.startswith("SINGSONG_")}
    environment |= {"SINGSONG_DATA_DIR": str(tmp_path / "data"),
                    "SINGSONG_WEB_PORT": str(port)}
    server = subprocess.Popen([str(SINGSONG), "serve"], cwd=tmp_path, env=environment,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        url = f"http://127.0.0.1:{port}"
        await until_listening(url + "/", server)
        # unsafe: keep the cookie that names this browser although the host is an IP address
        jar = aiohttp.CookieJar(unsafe=True)
        async with aiohttp.ClientSession(url, cookie_jar=jar) as client:
            async with client.post("/api/jobs", json={"kind": "melody", "key": "D"}) as made:
                assert made.status == 202
                job = await made.json()
            async with asyncio.timeout(JOB_TIMEOUT_S):
                while job["status"] not in ("done", "failed"):
                    await asyncio.sleep(0.3)
                    async with client.get(job["url"]) as polled:
                        job = await polled.json()
            assert job["status"] == "done" and job["track"]["key"] == "D major"
            async with client.get(job["track"]["urls"]["audio"]) as song:
                assert (await song.read())[:4] == b"OggS"
    finally:
        server.send_signal(signal.SIGTERM)
        _, errors = server.communicate(timeout=60)
    assert server.returncode == 0, errors.decode()
    assert f"listening on http://127.0.0.1:{port}" in errors.decode()
    assert (tmp_path / "data" / "singsong.db").is_file()


def test_a_port_in_use_is_one_clear_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        environment = {key: value for key, value in os.environ.items()
                       if not key.startswith("SINGSONG_")}
        environment |= {"SINGSONG_DATA_DIR": str(tmp_path / "data"),
                        "SINGSONG_WEB_PORT": str(port)}
        result = subprocess.run([str(SINGSONG), "serve"], cwd=tmp_path, env=environment,
                                capture_output=True, timeout=120)
    assert result.returncode == 2
    last = result.stderr.decode().strip().splitlines()[-1]
    assert last.startswith(f"singsong serve: cannot serve on 127.0.0.1:{port}")
    assert "Traceback" not in result.stderr.decode()


def test_a_bad_setting_is_one_clear_line(tmp_path: Path) -> None:
    environment = {key: value for key, value in os.environ.items()
                   if not key.startswith("SINGSONG_")}
    environment |= {"SINGSONG_WEB_PORT": "eighty"}
    result = subprocess.run([str(SINGSONG), "serve"], cwd=tmp_path, env=environment,
                            capture_output=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.decode().startswith("singsong serve: SINGSONG_WEB_PORT:")
