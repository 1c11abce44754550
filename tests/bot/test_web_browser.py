"""The web page in Debian's headless chromium, driven by Playwright, against the real service.

Chromium is the system's (/usr/bin/chromium, installed by `scripts/setup --dev`); Playwright
never downloads a browser here. A missing chromium fails these tests rather than skipping them.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from playwright.async_api import Browser, ConsoleMessage, Page, async_playwright, expect

from bot.service import Service
from tests.bot.test_web import running_web
from tests.conftest import ROOT

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--disable-quic", "--autoplay-policy=no-user-gesture-required"]
FAKE_MICROPHONE = ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"]
TIMEOUT_MS = 120_000
PLAYS_ON = """audio => new Promise(resolve => {
    const check = () => { if (audio.currentTime > 0.3 && !audio.paused) resolve(true); };
    audio.addEventListener("timeupdate", check);
    check();
})"""  # the <audio> element's own events say that it plays
expect.set_options(timeout=TIMEOUT_MS)  # a song takes seconds, a slow machine more


def artifacts_dir() -> Path:
    """Where screenshots go: $SINGSONG_TEST_ARTIFACTS, else tests/artifacts (gitignored)."""
    folder = Path(os.environ.get("SINGSONG_TEST_ARTIFACTS") or ROOT / "tests" / "artifacts")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@asynccontextmanager
async def chromium(*extra_args: str) -> AsyncIterator[Browser]:
    if not CHROMIUM.is_file():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (scripts/setup --dev)")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=[*CHROMIUM_ARGS, *extra_args])
        try:
            yield browser
        finally:
            await browser.close()


NO_ALBUM_YET = re.compile(r"/api/album(\?|$)")  # its 404 is how a page learns there is none


@asynccontextmanager
async def open_site(service: Service, path: str = "/", *extra_args: str,
                    locale: str = "en-US") -> AsyncIterator[tuple[Page, list[str]]]:
    """A page of the site, loaded in a fresh browser (whose language is `locale`), and the
    problems its console reports (CSP refusals, script errors; the 404 that says there is no
    album yet is not one)."""
    async with running_web(service) as web, chromium(*extra_args) as browser:
        context = await browser.new_context(locale=locale)
        page = await context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        problems: list[str] = []

        def note(message: ConsoleMessage) -> None:
            url = str(message.location.get("url"))
            if message.type == "error" and not NO_ALBUM_YET.search(url):
                problems.append(f"{message.text} ({url})")

        page.on("console", note)
        page.on("pageerror", lambda error: problems.append(str(error)))
        await page.goto(web.url + path)
        try:
            yield page, problems
        finally:
            await context.close()


@asynccontextmanager
async def open_page(service: Service, *extra_args: str, locale: str = "en-US"
                    ) -> AsyncIterator[tuple[Page, list[str]]]:
    """The chat page, once its pickers are filled in, and its console's problems."""
    async with open_site(service, "/", *extra_args, locale=locale) as (page, problems):
        await expect(page.locator("#melody-style option")).to_have_count(5)  # options loaded
        yield page, problems


async def test_an_uploaded_clip_becomes_a_song_that_plays(service: Service,
                                                          speech_clip: Path) -> None:
    async with open_page(service) as (page, problems):
        await expect(page.locator("#history-empty")).to_be_visible()
        await page.set_input_files("#audio-file", speech_clip)
        await page.click("#upload-sing")
        await expect(page.locator("#progress")).to_be_visible()
        await expect(page.locator("#progress-text")).not_to_be_empty()

        await expect(page.locator("#result")).to_be_visible()
        await expect(page.locator("#progress")).to_be_hidden()
        await expect(page.locator("#error")).to_be_hidden()
        await expect(page.locator("#result-about")).to_contain_text("#1: song")
        async with asyncio.timeout(TIMEOUT_MS / 1000):
            await page.locator("#result-audio").evaluate(PLAYS_ON)
        await expect(page.locator("#result-picture")).to_be_visible()
        assert await page.locator("#result-picture").evaluate(
            "image => image.complete && image.naturalWidth > 0")
        await expect(page.locator("#download-audio")).to_have_attribute(
            "href", "/api/tracks/1/audio?download=1")
        await expect(page.locator("#download-midi")).to_have_attribute(
            "href", "/api/tracks/1/midi?download=1")

        await expect(page.locator("#history li")).to_have_count(1)
        await expect(page.locator("#history li")).to_contain_text("#1: song")
        await expect(page.locator("#history-empty")).to_be_hidden()
        await page.screenshot(path=artifacts_dir() / "web-song.png", full_page=True)

        await page.click("#share")
        await expect(page.locator("#result-note")).to_contain_text("album")
        await expect(page.locator("#history li")).to_contain_text("shared")

        page.once("dialog", lambda dialog: dialog.accept())
        await page.click("#forget")
        await expect(page.locator("#forget-note")).to_contain_text("forgot")
        await expect(page.locator("#history li")).to_have_count(0)
        assert problems == []


async def test_lyrics_in_the_browsers_language_short_then_the_full_song(
        service: Service) -> None:
    async with open_page(service, locale="de-DE") as (page, problems):
        await page.fill("#lyrics-text", "la la la la")
        await page.select_option("#lyrics-song-form", "short")
        await page.click("#lyrics-form button[type=submit]")
        await expect(page.locator("#result-about")).to_contain_text("#1: sung lyrics")
        await expect(page.locator("#result-sung")).to_have_text(
            "Sung in German (your language setting).")
        await expect(page.locator("#short")).to_be_hidden()
        await expect(page.locator("#piano")).to_be_hidden()  # no recording behind lyrics

        await page.click("#full")
        await expect(page.locator("#result-about")).to_contain_text("#2: sung lyrics")
        await expect(page.locator("#result-sung")).to_contain_text("Sung in German")
        await expect(page.locator("#short")).to_be_visible()
        await expect(page.locator("#full")).to_be_hidden()
        await page.screenshot(path=artifacts_dir() / "web-lyrics.png", full_page=True)
        assert problems == []


async def test_a_melody_in_a_chosen_key_then_another(service: Service) -> None:
    async with open_page(service) as (page, problems):
        await page.select_option("#melody-key", "A minor")
        await page.select_option("#melody-style", "lofi")
        await page.click("#melody-form button[type=submit]")
        await expect(page.locator("#result-about")).to_contain_text("#1: melody, A minor")
        await expect(page.locator("#piano")).to_be_hidden()  # no recording behind a melody
        await expect(page.locator("#short")).to_be_hidden()  # nor a form
        await expect(page.locator("#full")).to_be_hidden()

        await page.click("#another")
        await expect(page.locator("#result-about")).to_contain_text("#2: melody")
        await expect(page.locator("#history li")).to_have_count(2)
        await expect(page.locator("#history li").first).to_contain_text("#2: melody")
        assert problems == []


async def test_a_recording_from_the_microphone_is_sent(service: Service) -> None:
    async with open_page(service, *FAKE_MICROPHONE) as (page, problems):
        await page.click("#record")
        await expect(page.locator("#record")).to_have_attribute("aria-pressed", "true")
        await expect(page.locator("#record-time")).to_have_text("Recording: 3 s")
        await page.click("#record")
        await expect(page.locator("#record")).to_have_attribute("aria-pressed", "false")

        # Chromium's fake microphone beeps: the song may come, or the voice check may say
        # clearly that it heard no voice. Either is an answer; silence is not.
        outcome = page.locator("#result:not([hidden]), #error:not([hidden])")
        await expect(outcome).to_be_visible()
        if await page.locator("#error").is_visible():
            error = await page.locator("#error").text_content() or ""
            # The engine's own sentence (no voice, one syllable, too short), not an apology.
            assert ("send" in error or "say" in error) and "wrong" not in error, error
        else:
            await expect(page.locator("#history li")).to_have_count(1)
        await page.screenshot(path=artifacts_dir() / "web-recording.png", full_page=True)
        assert problems == []


async def test_a_denied_microphone_says_what_to_do(service: Service) -> None:
    async with open_page(service) as (page, problems):
        await page.click("#record")
        await expect(page.locator("#error")).to_be_visible()
        await expect(page.locator("#error")).to_contain_text("upload a clip")
        await expect(page.locator("#record")).to_have_attribute("aria-pressed", "false")
        assert problems == []
