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
from playwright.async_api import (
    Browser,
    ConsoleMessage,
    Locator,
    Page,
    async_playwright,
    expect,
)

from bot.service import Service
from tests.bot.adapters.test_web import running_web
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


class Steps:
    """A screenshot per step of a walk through the page, kept as the test's artifacts:
    artifacts_dir()/web/NAME-01-STEP.png, ... (the folder's older shots of NAME go first)."""

    def __init__(self, page: Page, name: str) -> None:
        self.page, self.name, self.count = page, name, 0
        self.folder = artifacts_dir() / "web"
        self.folder.mkdir(exist_ok=True)
        for old in self.folder.glob(f"{name}-*.png"):
            old.unlink()

    async def shot(self, step: str) -> None:
        self.count += 1
        await self.page.screenshot(path=self.folder / f"{self.name}-{self.count:02d}-{step}.png",
                                   full_page=True)


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



PLAYABLE = "audio => audio.readyState >= 3 && audio.duration > 0"


async def plays(audio: Locator) -> None:
    async with asyncio.timeout(TIMEOUT_MS / 1000):
        await audio.evaluate(PLAYS_ON)


async def test_an_uploaded_clip_becomes_a_named_song_shared_by_link(
        service: Service, speech_clip: Path) -> None:
    async with open_page(service) as (page, problems):
        steps = Steps(page, "upload")
        await expect(page.locator("#history-empty")).to_be_visible()
        await expect(page.locator("#album-next")).to_contain_text("The first one comes out on")
        await steps.shot("empty")
        await page.select_option("#voice-style", "lofi")
        await page.set_input_files("#audio-file", speech_clip)
        await page.click("#upload-sing")
        await expect(page.locator("#progress")).to_be_visible()
        await steps.shot("working")

        await expect(page.locator("#result")).to_be_visible()
        await expect(page.locator("#progress")).to_be_hidden()
        title = (await page.locator("#result-title").text_content()) or ""
        assert re.fullmatch(r"[A-Z][a-z]+ [A-Z][a-z]+", title), title
        await expect(page.locator("#result-meta")).to_contain_text("Song · ")
        await expect(page.locator("#result-meta")).to_contain_text("lofi band")
        await expect(page.locator("#result-origin")).to_have_text(f"From “{speech_clip.name}”.")
        await plays(page.locator("#result-audio"))
        # Drawn when the page first asks for it: waited for, not assumed loaded.
        assert await page.locator("#result-picture").evaluate(
            "image => image.decode().then(() => image.naturalWidth === 1200)")
        await expect(page.locator("#download-picture")).to_have_attribute(
            "href", "/api/tracks/1/picture?download=1")
        # One list of songs: a row per song, no players of their own, no second button.
        item = page.locator("#history li")
        await expect(item).to_have_count(1)
        await expect(item).to_contain_text(title)
        await expect(item).to_contain_text("today")
        await expect(page.locator("#history audio")).to_have_count(0)
        await expect(item.locator("button")).to_have_count(1)
        await expect(item).to_have_class(re.compile("playing"))
        await steps.shot("song")

        await page.uncheck("#link-named")
        await page.click("#link")
        await expect(page.locator("#link-shown")).to_be_visible()
        url = await page.locator("#link-url").input_value()
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/s/[A-Za-z0-9_-]{43}", url), url
        await expect(page.locator("#link-credit")).to_contain_text("a SingSong singer")
        await steps.shot("link")
        await a_friend_plays(page.context.browser, url, title, steps)

        await page.click("#share")
        await expect(page.locator("#result-note")).to_contain_text("comes out on")
        await expect(page.locator("#result-note a")).to_have_attribute("href", "/album")
        await steps.shot("album")

        await page.click("#link-revoke")
        await expect(page.locator("#link-make")).to_be_visible()
        assert (await page.request.get(url)).status == 404
        await page.click("#link")
        url = await page.locator("#link-url").input_value()
        page.once("dialog", lambda dialog: dialog.accept())
        await page.click("#forget")
        await expect(page.locator("#forget-note")).to_contain_text("forgot")
        await expect(page.locator("#history li")).to_have_count(0)
        await expect(page.locator("#result")).to_be_hidden()
        assert (await page.request.get(url)).status == 404  # forgotten: the link is gone
        await steps.shot("forgotten")
        assert problems == []


async def a_friend_plays(browser: Browser | None, url: str, title: str, steps: Steps) -> None:
    """The link in a fresh browser (no cookie): its preview tags, picture and player."""
    assert browser is not None
    context = await browser.new_context()
    try:
        friend = await context.new_page()
        await friend.goto(url)
        await expect(friend.locator("#song-title")).to_have_text(title)
        await expect(friend.locator("#song-credit")).to_have_text("by a SingSong singer")
        og = friend.locator('meta[property="og:audio"]')
        await expect(og).to_have_attribute("content", url + "/audio")
        await expect(friend.locator('meta[property="og:image"]')).to_have_attribute(
            "content", url + "/picture")
        await expect(friend.locator('meta[name="twitter:card"]')).to_have_attribute(
            "content", "summary_large_image")
        assert await friend.locator("#song-picture").evaluate(
            "image => image.complete && image.naturalWidth === 1200")
        await friend.click("#song-audio")  # a person's click: the player's own controls
        await friend.locator("#song-audio").evaluate("audio => audio.play()")
        await plays(friend.locator("#song-audio"))
        await friend.screenshot(path=steps.folder / f"{steps.name}-share-page.png",
                                full_page=True)
    finally:
        await context.close()


async def test_lyrics_with_a_band_show_their_words_then_another_melody(
        service: Service) -> None:
    async with open_page(service, locale="de-DE") as (page, problems):
        steps = Steps(page, "lyrics")
        await page.fill("#lyrics-text", "la la la la")
        await page.select_option("#lyrics-song-form", "short")
        await page.select_option("#lyrics-style", "ballad")
        await page.click("#lyrics-form button[type=submit]")
        await expect(page.locator("#result-title")).to_have_text("La la la la")
        await expect(page.locator("#result-meta")).to_contain_text("Sung lyrics · ")
        await expect(page.locator("#result-meta")).to_contain_text("ballad band")
        await expect(page.locator("#result-lyrics")).to_have_text("“la la la la”")
        await expect(page.locator("#result-sung")).to_have_text(
            "Sung in German (your language setting).")
        await expect(page.locator("#short")).to_be_hidden()
        await expect(page.locator("#piano")).to_be_hidden()  # no recording behind lyrics
        await steps.shot("short")

        await page.click("#another")
        await expect(page.locator("#result-origin")).to_have_text(
            "Another melody for “La la la la”.")
        await expect(page.locator("#history li")).to_have_count(2)
        await steps.shot("another")
        assert problems == []


async def test_a_melody_says_its_audios_length(service: Service) -> None:
    async with open_page(service) as (page, problems):
        steps = Steps(page, "melody")
        await page.select_option("#melody-key", "A minor")
        await page.select_option("#melody-style", "lofi")
        await page.click("#melody-form button[type=submit]")
        await expect(page.locator("#result-meta")).to_contain_text("Melody · A minor")
        audio = page.locator("#result-audio")
        async with asyncio.timeout(TIMEOUT_MS / 1000):
            await audio.evaluate(f"audio => new Promise(r => {{ const ok = () => ({PLAYABLE})"
                                 f"(audio) && r(true); audio.addEventListener('canplay', ok);"
                                 f" ok(); }})")
        seconds = await audio.evaluate("audio => Math.round(audio.duration)")
        clock = f"{seconds // 60}:{seconds % 60:02d}"
        await expect(page.locator("#result-meta")).to_contain_text(clock)
        await expect(page.locator("#piano")).to_be_hidden()  # no recording behind a melody
        await steps.shot("melody")
        assert problems == []


async def test_recording_shows_its_level_and_time_then_listens_back(service: Service) -> None:
    async with open_page(service, *FAKE_MICROPHONE) as (page, problems):
        steps = Steps(page, "record")
        await page.click("#record")
        await expect(page.locator("#record-live")).to_be_visible()
        await expect(page.locator("#record-time")).to_have_text("0:02 / 1:00")
        level = await page.locator("#record-level").evaluate("meter => meter.value")
        assert level > 0, level  # the fake microphone beeps: the meter moves
        await steps.shot("live")
        await page.click("#record-cancel")
        await expect(page.locator("#record-idle")).to_be_visible()

        await page.click("#record")
        await expect(page.locator("#record-time")).to_have_text("0:03 / 1:00")
        await page.click("#record-stop")
        await expect(page.locator("#record-review")).to_be_visible()
        await expect(page.locator("#record-take-about")).to_contain_text("0:03")
        await page.locator("#record-take").evaluate("audio => audio.play()")
        await plays(page.locator("#record-take"))
        await steps.shot("listen-back")
        await page.click("#record-send")
        await expect(page.locator("#record-idle")).to_be_visible()

        # Chromium's fake microphone beeps: the song may come, or the voice check may say
        # clearly that it heard no voice. Either is an answer; silence is not.
        outcome = page.locator("#result:not([hidden]), #error:not([hidden])")
        await expect(outcome).to_be_visible()
        if await page.locator("#error").is_visible():
            error = await page.locator("#error").text_content() or ""
            assert ("send" in error or "say" in error) and "wrong" not in error, error
        else:
            await expect(page.locator("#result-origin")).to_have_text("From your recording.")
        await steps.shot("sent")
        assert problems == []


async def test_a_failed_upload_leaves_no_old_song_and_no_chosen_file(
        service: Service, short_speech_clip: Path, tmp_path: Path) -> None:
    not_audio = tmp_path / "notes.ogg"
    not_audio.write_text("this is a text file, not a voice note\n" * 40)
    async with open_page(service) as (page, problems):
        steps = Steps(page, "bad-upload")
        await page.set_input_files("#audio-file", short_speech_clip)
        await page.click("#upload-sing")
        await expect(page.locator("#result")).to_be_visible()
        await page.set_input_files("#audio-file", not_audio)
        await page.click("#upload-sing")
        await expect(page.locator("#error")).to_contain_text("not audio")
        await expect(page.locator("#result")).to_be_hidden()
        assert await page.locator("#audio-file").evaluate("input => input.files.length") == 0
        await steps.shot("error")
        await page.click("#upload-sing")  # nothing chosen: nothing is sent again
        await expect(page.locator("#error")).to_have_text("Choose an audio file first.")
        await expect(page.locator("#history li")).to_have_count(1)
        assert problems == []


async def test_a_denied_microphone_says_what_to_do(service: Service) -> None:
    async with open_page(service) as (page, problems):
        await page.click("#record")
        await expect(page.locator("#error")).to_be_visible()
        await expect(page.locator("#error")).to_contain_text("upload a clip")
        await expect(page.locator("#record-idle")).to_be_visible()
        assert problems == []
