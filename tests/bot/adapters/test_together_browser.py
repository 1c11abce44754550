"""The group song page in headless Chromium, with the real engine: one browser starts a
group song and joins with a recording, a friend opens the link in a browser of their own and
joins, the starter closes it, and both hear the song. A screenshot per step goes to
tests/artifacts/web/together-NN-STEP.png (or $SINGSONG_TEST_ARTIFACTS/web/)."""

from __future__ import annotations

from pathlib import Path

from playwright.async_api import Page, expect

from bot.service import Service
from tests.bot.adapters.test_web import running_web
from tests.bot.adapters.test_web_browser import TIMEOUT_MS, Steps, chromium, plays
from tests.conftest import SHARED_DATA

SPEECH = SHARED_DATA / "speech"
CLIPS = (SPEECH / "cmu_arctic" / "cmu_arctic_us_aew_a0001.wav",
         SPEECH / "cmu_arctic" / "cmu_arctic_us_axb_a0004.wav")


async def join_with(page: Page, name: str, clip: Path, voices: int) -> None:
    await page.fill("#join-name", name)
    await page.set_input_files("#join-audio", clip)
    await page.click("#join-button")
    await expect(page.locator("#voices li")).to_have_count(voices)


async def test_two_browsers_sing_together_and_both_hear_the_song(service: Service) -> None:
    async with running_web(service) as web, chromium() as browser:
        starter = await (await browser.new_context()).new_page()
        friend = await (await browser.new_context()).new_page()
        problems: list[str] = []
        for page in (starter, friend):
            page.set_default_timeout(TIMEOUT_MS)
            page.on("pageerror", lambda error: problems.append(str(error)))
        steps = Steps(starter, "together")
        await starter.goto(web.url + "/together")
        await steps.shot("start")
        await starter.click("#start-button")
        await expect(starter.locator("#gathering-status")).to_contain_text("Gathering voices")
        link = await starter.locator("#join-link").get_attribute("href")
        assert link is not None and link.startswith("/together/")
        await join_with(starter, "Ann", CLIPS[0], 1)
        await expect(starter.locator("#close-button")).to_be_visible()
        await steps.shot("joined")

        await friend.goto(web.url + link)
        await expect(friend.locator("#close-button")).to_be_hidden()  # not theirs to close
        await join_with(friend, "Bo", CLIPS[1], 2)
        await expect(friend.locator("#voices li")).to_have_text(["Ann", "Bo"])
        await Steps(friend, "together-friend").shot("joined")

        await starter.click("#close-button")
        await expect(starter.locator("#gathering-status")).to_contain_text("The song is here",
                                                                          timeout=TIMEOUT_MS)
        await steps.shot("song")
        for page in (starter, friend):
            await expect(page.locator("#song")).to_be_visible(timeout=TIMEOUT_MS)
            await page.locator("#song").evaluate("audio => audio.play()")
            await plays(page.locator("#song"))
        assert not problems
