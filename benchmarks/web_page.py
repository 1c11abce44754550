"""The web page in Debian's headless Chromium against the real service (the real engine in
threads): from the click that sends to the moment the song can play (its <audio> element has
enough to play on), for a recording (fake microphone, 3 s), an upload (an 11 s speech clip),
lyrics and a melody; and the chat page's and a song page's weight and first paint on a
throttled phone (Chromium's DevTools protocol: a 360 x 740 screen at 3x, CPU 4x slower, a
slow 4G network: 150 ms, 1.6 Mbit/s down, 750 kbit/s up). Prints JSON.

    .venv/bin/python -m benchmarks.web_page [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from playwright.async_api import Browser, Page

from benchmarks import print_json
from tests.bot.adapters.test_web import running_web
from tests.bot.adapters.test_web_browser import FAKE_MICROPHONE, chromium
from tests.bot.service import running_service, service_settings

SPEECH = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "speech"
CLIP = SPEECH / "198-209-0000.ogg"
RECORDING_S = 3.0
TIMEOUT_MS = 120_000
PHONE = {"viewport": {"width": 360, "height": 740}, "device_scale_factor": 3,
         "is_mobile": True, "has_touch": True}
SLOW_4G = {"offline": False, "latency": 150, "downloadThroughput": 1.6e6 / 8,
           "uploadThroughput": 750e3 / 8}
CPU_SLOWDOWN = 4
NEW_SONG_PLAYABLE = """old => new Promise(resolve => {
    const audio = document.getElementById("result-audio");
    const ready = () => audio.src && audio.src !== old && audio.readyState >= 3;
    const check = () => { if (ready()) resolve(performance.now()); };
    audio.addEventListener("canplay", check);
    const timer = setInterval(check, 20);
    check();
})"""


async def click_to_playable(page: Page, flow: str) -> float:
    """Seconds from the click that sends to the new song being playable."""
    old = await page.locator("#result-audio").evaluate("audio => audio.src")
    if flow == "record":
        await page.click("#record")
        await page.wait_for_timeout(RECORDING_S * 1000)
        await page.click("#record-stop")
        await page.locator("#record-review").wait_for()
        button = "#record-send"
    elif flow == "upload":
        await page.set_input_files("#audio-file", CLIP)
        button = "#upload-sing"
    elif flow == "lyrics":
        await page.fill("#lyrics-text", "Sunshine on the morning train, coffee in my hand")
        button = "#lyrics-form button[type=submit]"
    else:
        button = "#melody-form button[type=submit]"
    clicked = await page.evaluate("() => performance.now()")
    await page.click(button)
    playable = await page.evaluate(NEW_SONG_PLAYABLE, old)
    return float(playable - clicked) / 1000


async def flows(browser: Browser, url: str, rounds: int) -> dict[str, Any]:
    context = await browser.new_context()
    page = await context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    await page.goto(url)
    await page.locator("#melody-style option").nth(4).wait_for(state="attached")
    timings: dict[str, list[float]] = {}
    failures: dict[str, int] = {}
    for _ in range(rounds):
        for flow in ("record", "upload", "lyrics", "melody"):
            try:
                timings.setdefault(flow, []).append(await click_to_playable(page, flow))
            except Exception:  # the fake microphone's beeps may be refused as no voice
                failures[flow] = failures.get(flow, 0) + 1
                await page.goto(url)
    await context.close()
    return {flow: {**percentiles(values), "runs": len(values),
                   "not_a_song": failures.get(flow, 0)} for flow, values in timings.items()}


def percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {"p50_s": round(statistics.median(ordered), 3), "p95_s": round(p95, 3)}


async def phone_load(browser: Browser, url: str, loads: int = 3) -> dict[str, Any]:
    """Cold loads on the throttled phone (medians): bytes over the wire, requests, first
    paint and first contentful paint, the load event."""
    results = [await one_phone_load(browser, url) for _ in range(loads)]
    return {name: round(statistics.median(r[name] for r in results), 1)
            for name in results[0]}


async def one_phone_load(browser: Browser, url: str) -> dict[str, float]:
    context = await browser.new_context(**PHONE)  # type: ignore[arg-type]
    page = await context.new_page()
    cdp = await context.new_cdp_session(page)
    await cdp.send("Network.enable")
    await cdp.send("Network.setCacheDisabled", {"cacheDisabled": True})
    await cdp.send("Network.emulateNetworkConditions", SLOW_4G)
    await cdp.send("Emulation.setCPUThrottlingRate", {"rate": CPU_SLOWDOWN})
    transferred: list[float] = []
    cdp.on("Network.loadingFinished",
           lambda event: transferred.append(float(event["encodedDataLength"])))
    started = time.perf_counter()
    await page.goto(url, wait_until="load")
    loaded_s = time.perf_counter() - started
    await page.wait_for_timeout(1000)  # the page's own API calls after load
    paints = await page.evaluate("() => Object.fromEntries(performance.getEntriesByType("
                                 "'paint').map(p => [p.name, p.startTime]))")
    await context.close()
    return {"bytes": sum(transferred), "requests": len(transferred),
            "first_paint_ms": paints.get("first-paint", -1.0),
            "first_contentful_paint_ms": paints.get("first-contentful-paint", -1.0),
            "load_s": loaded_s}


async def shared_page_url(url: str, browser: Browser) -> str:
    """A song page: a melody made and shared by link from the chat page."""
    context = await browser.new_context()
    page = await context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    await page.goto(url)
    await page.click("#melody-form button[type=submit]")
    await page.click("#link")
    await page.locator("#link-shown").wait_for()
    link = await page.locator("#link-url").input_value()
    await context.close()
    return link


async def measure(rounds: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:
        async with (running_service(service_settings(Path(folder))) as service,
                    running_web(service) as web, chromium(*FAKE_MICROPHONE) as browser):
            timings = await flows(browser, web.url + "/", rounds)
            song_page = await shared_page_url(web.url + "/", browser)
            return {"click_to_playable": timings,
                    "phone": {"profile": {**PHONE, "network": SLOW_4G,
                                          "cpu_slowdown": CPU_SLOWDOWN},
                              "chat_page": await phone_load(browser, web.url + "/"),
                              "song_page": await phone_load(browser, song_page)}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    print_json(asyncio.run(measure(parser.parse_args().rounds)))


if __name__ == "__main__":
    main()
