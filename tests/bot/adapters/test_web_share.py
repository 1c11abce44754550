"""The web chat's songs as things people keep and pass on: names and where a song came from,
the band chosen per song, a public page per song (made when asked, revocable, gone after
forget), and an API that answers a malformed request with a 4xx sentence."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import aiohttp

from bot.adapters.share_page import png_size
from bot.adapters.web import WebAdapter
from bot.service import Service
from engine import audio
from tests.bot.adapters.test_web import (
    PNG,
    clip_form,
    error_of,
    fetch,
    finished_job,
    picture_blob_of,
    song_from,
    start_job,
)

LINK = re.compile(r"/s/[A-Za-z0-9_-]{43}")


class MetaTags(HTMLParser):
    """The <meta property|name=... content=...> tags of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        name = found.get("property") or found.get("name")
        if tag == "meta" and name and found.get("content") is not None:
            self.tags[name] = found["content"] or ""


def meta_tags(page: str) -> dict[str, str]:
    parser = MetaTags()
    parser.feed(page)
    return parser.tags


async def test_a_song_of_lyrics_is_named_after_its_words_and_sung_by_the_band_asked_for(
        service: Service, alice: aiohttp.ClientSession) -> None:
    track = await song_from(service, alice, body={
        "kind": "lyrics", "text": "Coffee in my hand, sunshine on the morning train",
        "style": "lofi", "form": "short"})
    assert track["title"] == "Coffee in my hand"
    assert track["lyrics"] == "Coffee in my hand, sunshine on the morning train"
    assert (track["style"], track["origin"]) == ("lofi", "")
    # The picture is a card to keep: the preview size chat apps show.
    status, picture, _ = await fetch(alice, track["urls"]["picture"])
    assert status == 200 and picture.startswith(PNG) and png_size(picture) == (1200, 630)

    job = await finished_job(service, alice,
                             await start_job(alice, f"/api/tracks/{track['id']}/another"))
    other = job["track"]
    assert other["style"] == "lofi"  # the band goes with the song
    assert other["origin"] == "Another melody for “Coffee in my hand”."


async def test_a_recordings_piano_version_says_which_recording(
        service: Service, alice: aiohttp.ClientSession, short_speech_clip: Path) -> None:
    form = clip_form("sing", short_speech_clip.read_bytes(), "my-take.wav")
    form.add_field("style", "robot")
    track = await song_from(service, alice, form=form)
    assert track["style"] == "robot" and track["origin"] == "From “my-take.wav”."
    assert re.fullmatch(r"[A-Z][a-z]+ [A-Z][a-z]+", track["title"]), track["title"]

    job = await finished_job(service, alice,
                             await start_job(alice, f"/api/tracks/{track['id']}/piano"))
    piano = job["track"]
    assert piano["title"] == f"{track['title']} (piano)"
    assert piano["origin"] == f"“{track['title']}” played on the piano, from “my-take.wav”."
    assert piano["style"] is None


async def test_a_melodys_length_is_its_audios(service: Service,
                                              alice: aiohttp.ClientSession) -> None:
    track = await song_from(service, alice, body={"kind": "melody", "style": "pop"})
    _, ogg, _ = await fetch(alice, track["urls"]["audio"])
    assert abs(track["duration_s"] - audio.decode(ogg).duration_s) < 0.05


async def test_a_share_link_plays_for_anyone_until_revoked(
        service: Service, web: WebAdapter, alice: aiohttp.ClientSession) -> None:
    track = await song_from(service, alice, body={"kind": "lyrics", "text": "hello sunshine"})
    assert track["link"] is None  # nothing is public until its maker asks
    async with alice.post("/api/name", json={"name": "Alice"}) as response:
        assert response.status == 200
    async with alice.post(f"/api/tracks/{track['id']}/link", json={}) as response:
        assert response.status == 200
        shared = await response.json()
    link = shared["link"]
    assert LINK.fullmatch(link["url"]) and link["credit"] == "Alice"
    async with alice.post(f"/api/tracks/{track['id']}/link",
                          json={"credit": "anonymous"}) as response:
        again = (await response.json())["link"]
    assert again == {"url": link["url"], "credit": "a SingSong singer"}  # same link

    assert await picture_blob_of(service, track["id"]) is None  # never asked for yet
    async with aiohttp.ClientSession(base_url=web.url,
                                     cookie_jar=aiohttp.DummyCookieJar()) as friend:
        async with friend.get(link["url"]) as response:
            assert response.status == 200 and response.content_type == "text/html"
            page = await response.text()
        # The page's preview tags need the picture's size: it was drawn for the page.
        drawn = service.blobs.get(await picture_blob_of(service, track["id"]) or "")
        assert (await fetch(friend, link["url"] + "/picture"))[:2] == (200, drawn)
        tags = meta_tags(page)
        assert tags["og:title"] == "Hello sunshine" and tags["og:type"] == "music.song"
        assert tags["og:audio"] == f"{web.url}{link['url']}/audio"
        assert tags["og:image"] == f"{web.url}{link['url']}/picture"
        assert (tags["og:image:width"], tags["og:image:height"]) == ("1200", "630")
        assert tags["twitter:card"] == "summary_large_image"  # a player card needs https
        assert tags["twitter:player:stream"] == tags["og:audio"]
        assert "by a SingSong singer" in page and "hello sunshine" in page
        status, ogg, _ = await fetch(friend, tags["og:audio"])
        assert status == 200 and ogg.startswith(b"OggS")
        status, _, _ = await fetch(friend, link["url"] + "/audio", {"Range": "bytes=0-9"})
        assert status == 206
        async with friend.get(link["url"] + "/player") as response:
            assert response.status == 200
            assert "frame-ancestors https:" in response.headers["Content-Security-Policy"]
            assert "X-Frame-Options" not in response.headers

        async with alice.delete(f"/api/tracks/{track['id']}/link") as response:
            assert response.status == 200
        for path in ("", "/audio", "/picture", "/player"):
            async with friend.get(link["url"] + path) as response:
                assert response.status == 404, path
    async with alice.delete(f"/api/tracks/{track['id']}/link") as response:
        assert response.status == 404
        await error_of(response)


async def test_a_share_link_is_gone_after_forget_and_only_the_maker_makes_one(
        service: Service, web: WebAdapter, alice: aiohttp.ClientSession,
        bob: aiohttp.ClientSession) -> None:
    track = await song_from(service, alice, body={"kind": "melody"})
    async with bob.post(f"/api/tracks/{track['id']}/link") as response:
        assert response.status == 404
    async with alice.post(f"/api/tracks/{track['id']}/link",
                          json={"credit": "someone"}) as response:
        assert response.status == 400
    async with alice.post(f"/api/tracks/{track['id']}/link") as response:
        url = (await response.json())["link"]["url"]
    async with alice.get("/api/history") as response:
        assert (await response.json())["tracks"][0]["link"]["url"] == url
    async with alice.post("/api/forget") as response:
        assert response.status == 200
    async with bob.get(url) as response:
        assert response.status == 404
        assert "not shared" in await response.text()


async def test_malformed_requests_get_a_4xx_sentence(alice: aiohttp.ClientSession) -> None:
    """Each of these answered 500 under fuzzing before (issue 17)."""
    boundary = "b0undary"
    control = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"kind\x01\"\r\n\r\n"
               f"melody\r\n--{boundary}--\r\n").encode()
    for body, content_type, status in (
            (control, f"multipart/form-data; boundary={boundary}", 400),
            (b"--x\r\nbroken", "multipart/form-data", 400),  # no boundary given
            (b"{}", "application/xml", 415),
            (b"\xff\xfe{", "application/json", 400)):
        async with alice.post("/api/jobs", data=body,
                              headers={"Content-Type": content_type}) as response:
            assert response.status == status, (body, content_type, await response.text())
            await error_of(response)
    async with alice.post("/api/name", data=b"name=Alice",
                          headers={"Content-Type": "application/x-www-form-urlencoded"}
                          ) as response:
        assert response.status == 415
    async with alice.post("/api/jobs", json={"kind": "melody"},
                          headers={"Idempotency-Key": "no spaces here"}) as response:
        assert response.status == 400
    async with alice.get("/api/jobs/99999999999") as response:
        assert response.status == 404  # beyond the database's integers: no such job


async def test_a_method_an_address_does_not_take_is_405_with_allow(
        alice: aiohttp.ClientSession) -> None:
    for method, path, allowed in (("DELETE", "/api/history", {"GET", "HEAD"}),
                                  ("PUT", "/api/tracks/1/link", {"POST", "DELETE"}),
                                  ("GET", "/api/forget", {"POST"})):
        async with alice.request(method, path) as response:
            assert response.status == 405
            assert set(response.headers["Allow"].split(",")) >= allowed
            await error_of(response)


async def test_the_document_declares_the_cookie_the_token_and_what_any_call_may_answer(
        web: WebAdapter, alice: aiohttp.ClientSession) -> None:
    async with alice.get("/api/openapi.json") as response:
        document = await response.json()
    schemes = document["components"]["securitySchemes"]
    assert schemes["browserCookie"] == {**schemes["browserCookie"], "type": "apiKey",
                                        "in": "cookie", "name": "singsong_id"}
    assert "webToken" not in schemes  # this one is served without a token
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            if path == "/api/openapi.json":
                continue
            assert "503" in operation["responses"], (path, method)
            assert "Retry-After" in operation["responses"]["503"]["headers"]
            if method in ("post", "delete"):
                assert {"403", "413"} <= set(operation["responses"]), (path, method)
            for parameter in operation.get("parameters", []):
                schema = parameter["schema"]
                assert any(rule in schema for rule in ("pattern", "enum", "maximum")) or (
                    parameter["name"] in ("download", "Range")), (path, parameter)
    from bot.adapters.openapi import openapi_document

    private = openapi_document(token_required=True)
    assert {"webToken", "tokenCookie"} <= set(private["components"]["securitySchemes"])
    assert "401" in private["paths"]["/api/history"]["get"]["responses"]
