"""A web chat served beyond this machine is private: its API asks for SINGSONG_WEB_TOKEN."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import aiohttp
from pydantic import SecretStr

from bot.adapters.web import WebAdapter
from bot.service import Service

TOKEN = "a-long-random-web-token"
SINGSONG = Path(sys.executable).parent / "singsong"


async def test_the_api_asks_for_the_token_and_the_link_with_it_opens_the_page(
        service: Service) -> None:
    settings = service.settings.model_copy(update={"web_port": 0,
                                                   "web_token": SecretStr(TOKEN)})
    web = WebAdapter(service.commands, settings)
    await web.start()
    try:
        jar = aiohttp.CookieJar(unsafe=True)
        async with aiohttp.ClientSession(base_url=web.url, cookie_jar=jar) as client:
            async with client.get("/api/history") as refused:
                assert refused.status == 401
                assert "private" in (await refused.json())["error"]
            async with client.get("/api/history",
                                  headers={"Authorization": "Bearer wrong"}) as wrong:
                assert wrong.status == 401
            async with client.get("/api/history",
                                  headers={"Authorization": f"Bearer {TOKEN}"}) as allowed:
                assert allowed.status == 200
            async with client.get("/api/openapi.json") as described:
                assert described.status == 200  # what the API is, is no secret
            async with client.get(f"/?token={TOKEN}", allow_redirects=False) as opened:
                assert opened.status == 303 and opened.headers["Location"] == "/"
            async with client.get("/api/history") as with_cookie:
                assert with_cookie.status == 200
            async with client.get("/healthz") as health:
                assert health.status == 200  # for the orchestrator: no token asked
    finally:
        await web.stop()


def test_serving_beyond_this_machine_without_a_token_is_refused(tmp_path: Path) -> None:
    environment = {key: value for key, value in os.environ.items()
                   if not key.startswith("SINGSONG_")}
    environment |= {"SINGSONG_DATA_DIR": str(tmp_path / "data"),
                    "SINGSONG_WEB_HOST": "0.0.0.0"}
    result = subprocess.run([str(SINGSONG), "serve"], cwd=tmp_path, env=environment,
                            capture_output=True, timeout=60)
    assert result.returncode == 2
    assert "set SINGSONG_WEB_TOKEN" in result.stderr.decode()
    assert not (tmp_path / "data").exists()  # refused before anything was made
