"""The album page (/album) in Debian's headless chromium, driven by Playwright, against the
real service with an album stored as the weekly run stores one (two real songs)."""

from __future__ import annotations

import asyncio
import re
from contextlib import AbstractAsyncContextManager

from playwright.async_api import Page, expect

from bot.service import Service
from tests.bot.adapters.test_web import WEEK, make_album
from tests.bot.adapters.test_web_browser import PLAYS_ON, TIMEOUT_MS, artifacts_dir, open_site

PLAYING = re.compile(r"\bplaying\b")
AT_LEAST = """(audio, seconds) => new Promise(resolve => {
    const check = () => { if (audio.currentTime >= seconds && !audio.paused) resolve(true); };
    audio.addEventListener("timeupdate", check);
    check();
})"""  # resolves once the player has played on to `seconds`


def open_album(service: Service, path: str = "/album"
               ) -> AbstractAsyncContextManager[tuple[Page, list[str]]]:
    return open_site(service, path)


async def test_the_album_plays_and_a_click_jumps_to_a_song(service: Service) -> None:
    media = await make_album(service)
    second_start = media.chapters[1][0]
    async with open_album(service) as (page, problems):
        await expect(page.locator("#album")).to_be_visible()
        await expect(page.locator("#album-heading")).to_contain_text(WEEK)
        await expect(page.locator("#album-subtitle")).to_contain_text("November 2026")
        await expect(page.locator("#album-credits")).to_have_text("Voices by Alice, Bob")
        await expect(page.locator("#album-summary")).to_contain_text("2 songs")
        items = page.locator("#tracklist li")
        await expect(items).to_have_count(2)
        await expect(items.nth(0)).to_contain_text("1.0:00Song #1 by AliceVoice: Alice")
        await expect(items.nth(1)).to_contain_text(
            f"2.0:{int(second_start):02d}Song #2 by BobVoice: Bob, in {media.songs[1].key}")
        await expect(page.locator("#album-empty")).to_be_hidden()
        cover = page.locator("#album-cover")
        await expect(cover).to_be_visible()
        assert await cover.evaluate("image => image.complete && image.naturalWidth > 0")
        await expect(page.locator("#download-ogg")).to_have_attribute(
            "href", f"/api/albums/{WEEK}/audio?download=1")
        await expect(page.locator("#download-mp3")).to_have_attribute(
            "href", f"/api/albums/{WEEK}/mp3?download=1")
        audio = page.locator("#album-audio")
        assert await audio.evaluate("audio => audio.canPlayType('audio/ogg; codecs=opus')")

        # It plays from the start, the first song marked as the one playing.
        await audio.evaluate("audio => audio.play()")
        async with asyncio.timeout(TIMEOUT_MS / 1000):
            await audio.evaluate(PLAYS_ON)
        assert await audio.evaluate("audio => audio.currentSrc.endsWith('/audio')")  # the OGG
        await expect(items.nth(0)).to_have_class(PLAYING)
        await expect(items.nth(0).locator("button")).to_have_attribute("aria-current", "true")

        # A click on the second song seeks to its chapter, marks it, and it plays on.
        await items.nth(1).locator("button").click()
        await expect(items.nth(1)).to_have_class(PLAYING)
        await expect(items.nth(0)).not_to_have_class(PLAYING)
        assert await items.nth(0).locator("button").get_attribute("aria-current") is None
        position = await audio.evaluate("audio => audio.currentTime")
        assert second_start - 0.05 <= position < second_start + 3, position
        async with asyncio.timeout(TIMEOUT_MS / 1000):
            await audio.evaluate(AT_LEAST, second_start + 0.5)
        await expect(items.nth(1)).to_have_class(PLAYING)  # timeupdate keeps it marked

        # Seeking back with the player's own controls moves the mark back too.
        await audio.evaluate("audio => { audio.currentTime = 1; }")
        await expect(items.nth(0)).to_have_class(PLAYING)
        await expect(items.nth(1)).not_to_have_class(PLAYING)
        await page.screenshot(path=artifacts_dir() / "album.png", full_page=True)
        assert problems == []


async def test_the_main_page_links_to_the_album_page(service: Service) -> None:
    await make_album(service)
    async with open_album(service, "/") as (page, problems):
        await expect(page.locator("#album")).to_be_visible()
        await expect(page.locator("#album-text")).to_contain_text(WEEK)
        await expect(page.locator("#album-text")).to_contain_text("Alice, Bob")
        link = page.locator("#album-link")
        await expect(link).to_have_attribute("href", f"/album?week={WEEK}")
        await expect(page.locator("#album-cover")).to_be_visible()
        await expect(page.locator("#album-next")).to_contain_text("The next one comes out on")
        await page.locator("#album").screenshot(path=artifacts_dir() / "web-album.png")
        await link.click()
        await expect(page).to_have_url(re.compile(re.escape(f"/album?week={WEEK}") + "$"))
        await expect(page.locator("#tracklist li")).to_have_count(2)
        assert problems == []


async def test_no_album_yet_and_no_album_of_a_week_say_so(service: Service) -> None:
    async with open_album(service) as (page, problems):
        await expect(page.locator("#album-empty")).to_be_visible()
        await expect(page.locator("#album-empty")).to_contain_text("No album yet")
        await expect(page.locator("#album-empty a")).to_have_attribute("href", "/")
        await expect(page.locator("#album")).to_be_hidden()
        await expect(page.locator("#album-loading")).to_be_hidden()
        await expect(page.locator("#error")).to_be_hidden()
        await page.screenshot(path=artifacts_dir() / "album-empty.png", full_page=True)

        await page.goto(page.url + "?week=2026-W01")
        await expect(page.locator("#album-empty")).to_contain_text("No album for week 2026-W01")

        await page.goto(page.url.split("?")[0] + "?week=last-week")
        await expect(page.locator("#error")).to_be_visible()
        await expect(page.locator("#error")).to_contain_text("for example 2026-W47")
        await expect(page.locator("#album-empty")).to_be_hidden()
        assert problems == []
