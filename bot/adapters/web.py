"""The web chat: a small page and a JSON API over the same commands as the chat platforms.

Each browser is one person, known by a random id in an HttpOnly cookie. The page polls its
jobs, so delivering a finished job's reply is a no-op here. The weekly album (its page at
/album, its JSON and files) is public: it holds only songs people shared.
"""

from __future__ import annotations

import dataclasses
import hmac
import logging
import re
import secrets
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web
from aiohttp.web_request import FileField

from bot.adapters import share_page
from bot.adapters.openapi import (
    IDEMPOTENCY_KEY_FORMAT,
    LANGUAGE_TAG_FORMAT,
    LINK_TOKEN_FORMAT,
    openapi_document,
)
from bot.commands import (
    CLIP_KINDS,
    LINK_PARTS,
    NAME_LIMIT,
    REQUESTED_KINDS,
    AlbumEntryView,
    AlbumView,
    Clip,
    Commands,
    FileOut,
    JobView,
    Message,
    Person,
    Place,
    Reply,
    SharedSongView,
    Target,
    TrackView,
    sentence,
    too_large,
)
from bot.config import Settings
from bot.errors import (
    BotError,
    Closed,
    Mistake,
    NotAllowed,
    NotFound,
    SlowDown,
    TooLarge,
    Unauthorized,
    UnsupportedForm,
)
from bot.metrics import Operations
from bot.outages import is_outage
from bot.titles import ANONYMOUS_CREDIT
from bot.together import GatheringView, Said
from bot.weeks import album_release, is_week, week_of
from engine.arrange import STYLES
from engine.errors import InvalidRequest
from engine.form import DEFAULT_FORM, FORMS
from engine.theory import PITCH_CLASS_NAMES
from storage.models import MAX_ID, JobKind, User, now

log = logging.getLogger("singsong.web")

STATIC_DIR = Path(__file__).with_name("web_static")
COOKIE = "singsong_id"
TOKEN_COOKIE = "singsong_token"
COOKIE_MAX_AGE_S = 365 * 24 * 3600
BROWSER_ID = re.compile(r"[0-9a-f]{32}")  # secrets.token_hex(16): 128 bits
NO_GATHERING = "There is no group song at that link (or it is gone)."
LINK_CREDITS = ("name", "anonymous")  # a public page credits its maker by name, or not
TRACK_PARTS = ("audio", "midi", "picture")
TRACK_ACTIONS = ("another", "piano", *FORMS)  # FORMS: the song again, full or short
ALBUM_PARTS = ("audio", "mp3", "cover")
FORM_OVERHEAD_BYTES = 64 * 1024  # multipart headers and the small fields beside the clip
LINGER_S = 2.0  # how long the rest of a refused upload is read and dropped
KEYS = tuple(f"{name} {mode}" for mode in ("major", "minor") for name in PITCH_CLASS_NAMES)
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' blob: data:; media-src 'self' blob:; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)
SOMETHING_BROKE = "Sorry, something went wrong on our side. Please try again in a moment."
REQUEST_OUTAGE_S = 20.0  # a request that makes a job waits this long for the database at most
AWAY = "I cannot keep anything right now: please send it again in a minute."
AWAY_RETRY_AFTER_S = 30
STATUS_SENTENCES = {
    404: "There is nothing here.",
    405: "This address does not take that kind of request.",
}
FORM_TYPES = ("multipart/form-data", "application/x-www-form-urlencoded")
UNREADABLE = "The request's body could not be read: send a multipart form or a JSON object."

BROWSER = web.RequestKey("browser_id", str)
FORGOTTEN = web.RequestKey("forgotten", bool)
FRAMEABLE = web.RequestKey("frameable", bool)  # a page other sites may embed (the player)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class WebAdapter:
    """The web page and its JSON API (see `openapi.py`), served by aiohttp."""

    def __init__(self, commands: Commands, settings: Settings) -> None:
        self.commands, self.settings = commands, settings
        self.url = ""
        self.app = web.Application(
            client_max_size=commands.MAX_CLIP_BYTES + FORM_OVERHEAD_BYTES,
            middlewares=[self._identify, self._api_errors])
        self.app.on_response_prepare.append(_add_security_headers)
        self._add_routes(self.app.router)
        self._runner: web.AppRunner | None = None

    def _add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_get("/", self._page)
        router.add_get("/album", self._album_page)
        router.add_static("/static/", STATIC_DIR)
        router.add_get("/api/openapi.json", self._openapi)
        router.add_get("/api/options", self._options)
        router.add_post("/api/jobs", self._create_job)
        router.add_get("/api/jobs/{id}", self._job)
        router.add_get("/api/history", self._history)
        router.add_get("/api/tracks/{id}/{part}", self._track_file)
        router.add_post("/api/tracks/{id}/share", self._share)
        router.add_post("/api/tracks/{id}/link", self._make_link)
        router.add_delete("/api/tracks/{id}/link", self._revoke_link)
        router.add_post("/api/tracks/{id}/{action}", self._track_action)
        router.add_get("/api/album", self._album)
        router.add_get("/api/albums/{week}/{part}", self._album_file)
        router.add_get("/api/name", self._name)
        router.add_post("/api/name", self._set_name)
        router.add_post("/api/forget", self._forget)
        router.add_get("/together", self._together_page)
        router.add_get("/together/{token}", self._together_page)
        router.add_post("/api/together", self._start_together)
        router.add_get("/api/together/{token}", self._gathering)
        router.add_post("/api/together/{token}/voices", self._join_together)
        router.add_post("/api/together/{token}/close", self._close_together)
        router.add_get("/api/together/{token}/song", self._group_song)
        router.add_get("/s/{token}", self._shared_page)
        router.add_get("/s/{token}/player", self._shared_player)
        router.add_get("/s/{token}/{part}", self._shared_file)
        # For operators: GET /healthz and GET /metrics (Prometheus), see bot/metrics.py.
        Operations.of(self.commands).add_routes(router)

    # Lifecycle.

    async def start(self) -> None:
        """Listen on settings.web_host:web_port (port 0: any free port; see `url`)."""
        # aiohttp "lingers" on a refused upload without noticing the client hang up: 2 s,
        # not its 10, keeps stop() prompt. The page checks the size before it uploads.
        self._runner = web.AppRunner(self.app, access_log=None, lingering_time=LINGER_S)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.settings.web_host, self.settings.web_port)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
        log.info("web chat on %s", self.url)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def deliver(self, target: Target, reply: Reply) -> None:
        """Nothing to push: the page asks for its job until it is done."""

    # Middleware.

    @web.middleware
    async def _identify(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Give each browser a random id in a cookie: that id is the person."""
        browser_id = request.cookies.get(COOKIE, "")
        fresh = BROWSER_ID.fullmatch(browser_id) is None
        if fresh:
            browser_id = secrets.token_hex(16)
        request[BROWSER] = browser_id
        response = await handler(request)
        if fresh and not request.get(FORGOTTEN):
            response.set_cookie(COOKIE, browser_id, max_age=COOKIE_MAX_AGE_S, path="/",
                                httponly=True, samesite="Lax", secure=request.secure)
        return response

    def _check_token(self, request: web.Request) -> None:
        """With SINGSONG_WEB_TOKEN set (it must be when the chat is served beyond this
        machine), every API call carries it: `Authorization: Bearer TOKEN`, or the cookie
        that opening the page as /?token=TOKEN leaves."""
        token = self.settings.web_token
        if token is None or request.path == "/api/openapi.json":
            return
        given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        given = given or request.cookies.get(TOKEN_COOKIE, "")
        if not hmac.compare_digest(given.encode(), token.get_secret_value().encode()):
            raise Unauthorized("This SingSong is private: open it with the link that has its "
                               "token, or send Authorization: Bearer TOKEN.")

    def _token_cookie(self, request: web.Request, response: web.StreamResponse) -> None:
        """A page opened as ?token=TOKEN (the right one) keeps it in an HttpOnly cookie."""
        token = self.settings.web_token
        given = request.query.get("token", "")
        if token is not None and given and hmac.compare_digest(
                given.encode(), token.get_secret_value().encode()):
            response.set_cookie(TOKEN_COOKIE, given, max_age=COOKIE_MAX_AGE_S, path="/",
                                httponly=True, samesite="Strict", secure=request.secure)

    @web.middleware
    async def _api_errors(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Under /api every failure is JSON: {"error": one sentence}."""
        if not request.path.startswith("/api/"):
            return await handler(request)
        try:
            _refuse_other_sites(request)
            self._check_token(request)
            response = await handler(request)
        except (BotError, InvalidRequest) as refusal:
            return refusal_response(refusal)
        except web.HTTPRequestEntityTooLarge:
            size = request.content_length or self.commands.MAX_CLIP_BYTES + 1
            return _error_response(413, too_large(size, self.commands.MAX_CLIP_BYTES).text)
        except web.HTTPException as error:
            if error.status < 400:
                raise
            allow = {"Allow": error.headers["Allow"]} if "Allow" in error.headers else {}
            return _error_response(error.status, STATUS_SENTENCES.get(error.status,
                                                                      error.reason + "."),
                                   allow)
        except Exception as error:
            if is_outage(error):  # waited out as long as a request may wait
                log.error("%s %s: the database is away (%s)", request.method, request.path,
                          type(error).__name__)
                return _error_response(503, AWAY, {"Retry-After": str(AWAY_RETRY_AFTER_S)})
            log.exception("%s %s failed", request.method, request.path)
            return _error_response(500, SOMETHING_BROKE)
        response.headers.setdefault("Cache-Control", "no-store")
        return response

    # The page and what describes the API.

    async def _page(self, request: web.Request) -> web.StreamResponse:
        return self._static_page(request, "index.html")

    async def _album_page(self, request: web.Request) -> web.StreamResponse:
        """The album page: its script asks /api/album for the week in its own query."""
        return self._static_page(request, "album.html")

    def _static_page(self, request: web.Request, name: str) -> web.StreamResponse:
        """A page; opened as ?token=TOKEN, the token goes into a cookie and the address
        loses it (so it stays out of the history and of links people copy)."""
        if "token" in request.query:
            kept = {k: v for k, v in request.query.items() if k != "token"}
            moved = web.HTTPSeeOther(location=str(request.rel_url.with_query(kept)))
            self._token_cookie(request, moved)
            raise moved
        return web.FileResponse(STATIC_DIR / name, headers={"Cache-Control": "no-cache"})

    async def _openapi(self, request: web.Request) -> web.Response:
        return web.json_response(openapi_document(
            token_required=self.settings.web_token is not None))

    async def _options(self, request: web.Request) -> web.Response:
        week = week_of(now())
        comes_out = album_release(week, self.settings.album_weekday, self.settings.album_hour)
        return web.json_response({"kinds": list(REQUESTED_KINDS), "styles": list(STYLES),
                                  "keys": list(KEYS), "forms": list(FORMS),
                                  "max_clip_bytes": self.commands.MAX_CLIP_BYTES,
                                  "next_album": {"week": week,
                                                 "comes_out_at": comes_out.isoformat()}})

    # Jobs.

    async def _create_job(self, request: web.Request) -> web.Response:
        fields, clip = await self._read_job_request(request)
        kind = fields.get("kind", "")
        if kind not in REQUESTED_KINDS:
            raise Mistake(f"Say what to make: kind is one of {', '.join(REQUESTED_KINDS)}.")
        # The kind's command (COMMANDS): typed lyrics are /sing's text.
        command = "sing" if kind == JobKind.LYRICS else str(kind)
        if kind in CLIP_KINDS:
            if clip is None:
                raise Mistake("Record or choose an audio clip first.")
            text = ""
        elif kind == JobKind.LYRICS:
            text, clip = fields.get("text", "").strip(), None
            if not text:
                raise Mistake("Type a few words for me to sing.")
        else:
            clip = None
            text = " ".join(part for part in (fields.get("key", "").strip(),
                                              fields.get("style", "").strip()) if part)
        person = _person(request, _language(fields))
        message = Message(person, _place(request), _message_id(request), command=command,
                          text=text, clip=clip, form=fields.get("form") or DEFAULT_FORM,
                          style=fields.get("style", "") if command == "sing" else "")
        return await self._job_started(person, await self.commands.answer(
            message, outage_s=REQUEST_OUTAGE_S))

    async def _job_started(self, person: Person, reply: Reply) -> web.Response:
        """202 with the new job (a request that starts none was refused with an error)."""
        if reply.job_id is None:
            raise LookupError(f"the answer {reply.text!r} started no job")
        view = await self.commands.job_view(person, reply.job_id)
        if view is None:  # forgotten between the two calls
            raise NotFound("That job is gone.")
        return web.json_response(_job_json(view, reply.text), status=202,
                                 headers={"Location": f"/api/jobs/{view.id}"})

    async def _read_job_request(self, request: web.Request
                                ) -> tuple[dict[str, str], Clip | None]:
        """The text fields and the clip of a multipart form, or a JSON object's fields."""
        limit = self.commands.MAX_CLIP_BYTES
        if request.content_type == "application/json":
            return await _json_fields(request), None
        if request.content_type not in FORM_TYPES:
            raise UnsupportedForm("Send a multipart form (with an audio file) or a JSON object.")
        if request.content_length is not None and request.content_length > (
                limit + FORM_OVERHEAD_BYTES):
            raise web.HTTPRequestEntityTooLarge(max_size=limit,
                                                actual_size=request.content_length)
        form = await _read_form(request)
        fields = {name: value for name, value in form.items() if isinstance(value, str)}
        upload = form.get("audio")
        if not isinstance(upload, FileField):
            return fields, None
        data = upload.file.read(limit + 1)
        if len(data) > limit:
            raise TooLarge(too_large(len(data), limit).text)
        if not data:
            raise Mistake("That audio file is empty.")
        return fields, Clip(data, _safe_filename(upload.filename))

    async def _job(self, request: web.Request) -> web.Response:
        view = await self.commands.job_view(_person(request), _number(request, "id"))
        if view is None:
            raise NotFound("You have no job with that number.")
        return web.json_response(_job_json(view))

    # Tracks.

    async def _history(self, request: web.Request) -> web.Response:
        tracks = await self.commands.history_view(_person(request))
        return web.json_response({"tracks": [_track_json(track) for track in tracks]})

    async def _track_file(self, request: web.Request) -> web.Response:
        part = request.match_info["part"]
        track_id = _number(request, "id")
        found = (await self.commands.track_file(_person(request), track_id, part)
                 if part in TRACK_PARTS else None)
        if found is None:
            raise NotFound("You have no song with that number (or it has no such file).")
        disposition = "attachment" if request.query.get("download") else "inline"
        return _file_response(request, found, disposition)

    async def _own_track(self, request: web.Request) -> int:
        """The track id in the path when the track is this browser's, else 404."""
        track_id = _number(request, "id")
        if not await self.commands.owns(_person(request), track_id):
            raise NotFound("You have no song with that number.")
        return track_id

    async def _share(self, request: web.Request) -> web.Response:
        track_id = await self._own_track(request)
        reply = await self._press(request, f"share:{track_id}")
        return web.json_response({"message": reply.text, "track_id": track_id})

    async def _track_action(self, request: web.Request) -> web.Response:
        action = request.match_info["action"]
        if action not in TRACK_ACTIONS:
            raise NotFound("There is nothing here.")
        track_id = await self._own_track(request)
        reply = await self.commands.answer_press(_person(request), _place(request),
                                                 f"{action}:{track_id}", _message_id(request),
                                                 {}, outage_s=REQUEST_OUTAGE_S)
        return await self._job_started(_person(request), reply)

    async def _make_link(self, request: web.Request) -> web.Response:
        """Make (or keep) the public page of one of this browser's songs: {"credit": "name"}
        (the default) credits the person by their name, "anonymous" does not."""
        track_id = _number(request, "id")
        fields = await _json_fields(request) if request.can_read_body else {}
        choice = fields.get("credit") or "name"
        if choice not in LINK_CREDITS:
            raise Mistake("Say how the page credits you: credit is name or anonymous.")
        track = await self.commands.make_link(_person(request), track_id,
                                              named=choice == "name")
        if track is None:
            raise NotFound("You have no song with that number.")
        return web.json_response(_track_json(track))

    async def _revoke_link(self, request: web.Request) -> web.Response:
        """Stop sharing one of this browser's songs: its public page is gone."""
        if not await self.commands.revoke_link(_person(request), _number(request, "id")):
            raise NotFound("You have no shared link for a song with that number.")
        return web.json_response({"message": "The link no longer works: nobody can open "
                                             "this song with it any more."})

    async def _press(self, request: web.Request, action: str) -> Reply:
        return await self.commands.press(_person(request), _place(request), action,
                                         _message_id(request), {}, outage_s=REQUEST_OUTAGE_S)

    # The album and forgetting.

    async def _album(self, request: web.Request) -> web.Response:
        """The newest album, or the one of ?week=YYYY-Www: public, no person needed."""
        week = request.query.get("week") or None  # ?week= (empty) is the newest too
        if week is not None and not is_week(week):
            raise Mistake("Name the week as year, W and week number, for example "
                                "2026-W47.")
        view = await self.commands.album_view(week)
        if view is None:
            raise NotFound("There is no community album for that week." if week else
                           "There is no community album yet: share a song to be in the "
                           "next one.")
        return web.json_response(_album_json(view))

    async def _album_file(self, request: web.Request) -> web.Response:
        """A file of a week's album (audio, mp3 or cover), with byte ranges for seeking."""
        week, part = request.match_info["week"], request.match_info["part"]
        found = (await self.commands.album_file(week, part)
                 if is_week(week) and part in ALBUM_PARTS else None)
        if found is None:
            raise NotFound("There is no album of that week, or it has no such file.")
        disposition = "attachment" if request.query.get("download") else "inline"
        return _file_response(request, found, disposition, cache="public, no-cache")

    async def _name(self, request: web.Request) -> web.Response:
        """The name the album credits this browser's person by ("" for none yet)."""
        return web.json_response({"name": await self.commands.display_name(_person(request))})

    async def _set_name(self, request: web.Request) -> web.Response:
        """Set the name the album credits this browser's person by: {"name": "Alice"}."""
        name = (await _json_fields(request)).get("name", "")
        if len(name) > NAME_LIMIT:
            raise Mistake(f"A name is at most {NAME_LIMIT} characters.")
        reply = await self.commands.name(_person(request), name)
        return web.json_response({"message": reply.text,
                                  "name": await self.commands.display_name(_person(request))})

    # A song's public page: anyone with its link, no cookie or token needed.

    async def _shared_page(self, request: web.Request) -> web.StreamResponse:
        view = await self._shared_song(request)
        picture = await self.commands.shared_file(view.token, "picture")
        base_url = f"{request.scheme}://{request.host}"
        return _page_response(share_page.song_page(view, base_url,
                                                   picture.data if picture else None))

    async def _shared_player(self, request: web.Request) -> web.StreamResponse:
        """The player alone, which chat apps embed (twitter:player): it may be framed."""
        request[FRAMEABLE] = True
        return _page_response(share_page.player_page(await self._shared_song(request)))

    async def _shared_file(self, request: web.Request) -> web.StreamResponse:
        part = request.match_info["part"]
        found = (await self.commands.shared_file(request.match_info["token"], part)
                 if part in LINK_PARTS and LINK_TOKEN_FORMAT.fullmatch(request.match_info["token"])
                 else None)
        if found is None:
            raise _gone()
        disposition = "attachment" if request.query.get("download") else "inline"
        return _file_response(request, found, disposition)

    async def _shared_song(self, request: web.Request) -> SharedSongView:
        """The song the link in the path names, else a 404 page (never made, revoked, or
        its maker was forgotten: the same answer, so a token cannot be probed)."""
        token = request.match_info["token"]
        view = (await self.commands.shared_song(token)
                if LINK_TOKEN_FORMAT.fullmatch(token) else None)
        if view is None:
            raise _gone()
        return view

    # Group songs: the page starts one and gives a link others open to add their note.

    async def _together_page(self, request: web.Request) -> web.StreamResponse:
        return self._static_page(request, "together.html")

    async def _start_together(self, request: web.Request) -> web.Response:
        user, chat = await self.commands.user_and_chat(_person(request), _place(request))
        said = await self.commands.together.open(user, chat, {})
        assert said.token is not None
        return await self._gathering_answer(user, said.token, said.text, 201)

    async def _gathering(self, request: web.Request) -> web.Response:
        """Looking makes no row: the page asks every 2 s."""
        user = await self.commands.user_of(_person(request))
        return await self._gathering_answer(user, _gathering_token(request))

    async def _join_together(self, request: web.Request) -> web.Response:
        token = _gathering_token(request)
        _, clip = await self._read_job_request(request)
        if clip is None:
            raise Mistake("Record or choose a voice note to join with.")
        user, _ = await self.commands.user_and_chat(_person(request), _place(request))
        said = await self.commands.together.join_by_link(user, token, clip.data)
        return await self._gathering_said(user, token, said)

    async def _close_together(self, request: web.Request) -> web.Response:
        token = _gathering_token(request)
        user, _ = await self.commands.user_and_chat(_person(request), _place(request))
        said = await self.commands.together.done_by_link(user, token)
        return await self._gathering_said(user, token, said)

    async def _gathering_said(self, user: User, token: str, said: Said | None) -> web.Response:
        if said is None:
            raise NotFound(NO_GATHERING)
        if said.closed:
            raise Closed(said.text)
        if said.refused:
            raise NotAllowed(said.text)
        return await self._gathering_answer(user, token, said.text, 202)

    async def _gathering_answer(self, user: User | None, token: str, message: str = "",
                                status: int = 200) -> web.Response:
        """The gathering as `user` sees it (None: someone SingSong has not met)."""
        view = await self.commands.together.view(user, token)
        if view is None:
            raise NotFound(NO_GATHERING)
        data = _gathering_json(view)
        if message:
            data["message"] = message
        return web.json_response(data, status=status)

    async def _group_song(self, request: web.Request) -> web.Response:
        found = await self.commands.group_song_file(_gathering_token(request))
        if found is None:
            raise NotFound("That group song is not made yet, or it is gone.")
        return _file_response(request, found, "inline")

    async def _forget(self, request: web.Request) -> web.Response:
        """Delete everything of this browser's person, and the cookie that named it."""
        reply = await self._press(request, "forget:yes")
        request[FORGOTTEN] = True
        response = web.json_response({"message": reply.text})
        response.del_cookie(COOKIE, path="/")
        return response


# Who is asking.


def _person(request: web.Request, language: str | None = None) -> Person:
    return Person("web", request[BROWSER], language=language)


def _language(fields: dict[str, str]) -> str | None:
    """The browser's language (the page sends navigator.language), or None."""
    language = fields.get("language", "").strip()
    if not language:
        return None
    if LANGUAGE_TAG_FORMAT.fullmatch(language) is None:
        raise Mistake("Give language as a language tag, for example de-DE or es.")
    return language


def _place(request: web.Request) -> Place:
    return Place("web", request[BROWSER], private=True)


def _message_id(request: web.Request) -> str:
    """The page's Idempotency-Key header (a retried request makes no second job), or new."""
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return uuid.uuid4().hex
    if IDEMPOTENCY_KEY_FORMAT.fullmatch(key) is None:
        raise Mistake("An Idempotency-Key is 8 to 64 of A-Z, a-z, 0-9, _ and -.")
    return key


async def _json_fields(request: web.Request) -> dict[str, str]:
    """A JSON object's fields whose values are strings or numbers, as strings."""
    if request.content_type != "application/json":
        raise UnsupportedForm("Send a JSON object (Content-Type: application/json).")
    try:
        body = await request.json()
    except ValueError:  # UnicodeDecodeError among them
        raise Mistake("The body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise Mistake("Send a JSON object, for example {\"kind\": \"melody\"}.")
    return {k: str(v) for k, v in body.items()
            if isinstance(v, str | int | float) and not isinstance(v, bool)}


async def _read_form(request: web.Request) -> Any:
    """The parsed form. Whatever fails while parsing the client's bytes (a control character
    in a part's header, a missing boundary, broken encodings) is its malformed request."""
    try:
        return await request.post()
    except web.HTTPException:
        raise
    except Exception as error:
        log.info("%s %s: unreadable form (%s)", request.method, request.path,
                 type(error).__name__)
        raise Mistake(UNREADABLE) from None


def _refuse_other_sites(request: web.Request) -> None:
    """A request that changes something must come from this site's own page."""
    origin = request.headers.get("Origin")
    if request.method in ("GET", "HEAD", "OPTIONS") or origin is None:
        return
    if urlsplit(origin).netloc != request.host:
        raise NotAllowed("This request came from another site.")


def _number(request: web.Request, name: str) -> int:
    text = request.match_info[name]
    if not (text.isascii() and text.isdigit() and 0 < len(text) <= 10) or int(text) > MAX_ID:
        raise NotFound("There is nothing with that number.")
    return int(text)


def _safe_filename(name: str | None) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9._-]", "_", Path(name or "").name)[-100:]
    return cleaned or "clip"


# What goes out.


def _track_json(track: TrackView) -> dict[str, Any]:
    data = dataclasses.asdict(track)
    data["parts"] = list(track.parts)
    data["urls"] = {part: f"/api/tracks/{track.id}/{part}" for part in track.parts}
    token, credit = data.pop("link"), data.pop("link_credit")
    data["link"] = None if token is None else {
        "url": share_page.page_path(token), "credit": credit or ANONYMOUS_CREDIT}
    return data


def _gathering_token(request: web.Request) -> str:
    token = request.match_info["token"]
    if not LINK_TOKEN_FORMAT.fullmatch(token):
        raise NotFound(NO_GATHERING)
    return token


def _gathering_json(view: GatheringView) -> dict[str, Any]:
    return {"token": view.token, "url": f"/together/{view.token}", "status": view.status,
            "closes_at": view.closes_at, "voices": list(view.voices),
            "started_by_me": view.started_by_me, "joined": view.joined,
            "job": None if view.job_id is None else {"id": view.job_id},
            "song": None if view.song_track_id is None else {
                "track_id": view.song_track_id,
                "audio_url": f"/api/together/{view.token}/song"}}


def _job_json(view: JobView, message: str | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {"id": view.id, "kind": view.kind, "status": view.status,
                            "error": view.error, "ahead": view.ahead,
                            "track": _track_json(view.track) if view.track else None,
                            "url": f"/api/jobs/{view.id}"}
    if message is not None:
        data["message"] = message
    return data


def _album_json(view: AlbumView) -> dict[str, Any]:
    return {"week": view.week, "duration_s": round(view.duration_s, 3),
            "tracks": [_album_entry_json(entry) for entry in view.tracks],
            "files": {part: f"/api/albums/{view.week}/{part}" for part in view.parts},
            "page": f"/album?week={view.week}"}


def _album_entry_json(entry: AlbumEntryView) -> dict[str, Any]:
    return {"position": entry.position, "title": entry.title, "credit": entry.credit,
            "start_s": round(entry.start_s, 3), "end_s": round(entry.end_s, 3),
            "key": entry.key}


def _page_response(text: str) -> web.Response:
    return web.Response(text=text, content_type="text/html",
                        headers={"Cache-Control": "no-cache"})


def _gone() -> web.HTTPNotFound:
    """A public page that is not (or no longer) there."""
    return web.HTTPNotFound(text=share_page.GONE_PAGE, content_type="text/html",
                            headers={"Cache-Control": "no-store"})


# What the web answers for each kind of refusal (bot.errors): the most specific kind wins.
STATUS_OF: tuple[tuple[type[Exception], int], ...] = (
    (Unauthorized, 401), (TooLarge, 413), (UnsupportedForm, 415), (Mistake, 400),
    (InvalidRequest, 400), (NotAllowed, 403), (NotFound, 404), (Closed, 409), (SlowDown, 429))


def refusal_response(refusal: BotError | InvalidRequest) -> web.Response:
    """The web's one mapping of a refusal: its status, its sentence, and the headers that
    say what to do (how long to wait, how to authenticate)."""
    status = next(code for kind, code in STATUS_OF if isinstance(refusal, kind))
    headers = ({"Retry-After": str(refusal.retry_after_s)} if isinstance(refusal, SlowDown)
               else {"WWW-Authenticate": "Bearer"} if isinstance(refusal, Unauthorized)
               else {})
    return _error_response(status, sentence(str(refusal)), headers)


def _error_response(status: int, message: str, headers: dict[str, str] | None = None
                    ) -> web.Response:
    return web.json_response({"error": message}, status=status,
                             headers={"Cache-Control": "no-store", **(headers or {})})


def _file_response(request: web.Request, found: FileOut, disposition: str,
                   cache: str = "private, no-cache") -> web.Response:
    """The file, or the byte range an <audio> element asks for when it seeks."""
    headers = {"Content-Disposition": f'{disposition}; filename="{found.filename}"',
               "Accept-Ranges": "bytes", "Cache-Control": cache}
    size = len(found.data)
    wanted = re.fullmatch(r"bytes=(\d*)-(\d*)", request.headers.get("Range", "").strip())
    if wanted is None or wanted.group(1) == wanted.group(2) == "":
        return web.Response(body=found.data, content_type=found.mime, headers=headers)
    first_text, last_text = wanted.groups()
    if first_text:
        first, last = int(first_text), min(int(last_text or size - 1), size - 1)
    else:  # "bytes=-N": the last N bytes
        first, last = max(size - int(last_text), 0), size - 1
    if first > last or first >= size:
        return web.Response(status=416, headers={"Content-Range": f"bytes */{size}"})
    headers["Content-Range"] = f"bytes {first}-{last}/{size}"
    return web.Response(body=found.data[first:last + 1], status=206,
                        content_type=found.mime, headers=headers)


async def _add_security_headers(request: web.Request, response: web.StreamResponse) -> None:
    if request.get(FRAMEABLE):
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY.replace(
            "frame-ancestors 'none'", "frame-ancestors https:"))
    else:
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    response.headers.setdefault("Permissions-Policy", "microphone=(self), camera=()")
