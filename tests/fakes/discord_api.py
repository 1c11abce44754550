"""A fake Discord (REST API v10, gateway and attachment CDN) on 127.0.0.1, for the real
discord.py client in offline end-to-end tests.

It serves what discord.py calls to log in, connect, sync slash commands and send messages,
interaction responses and follow-ups; the test plays the people: `message`, `slash` and
`click` dispatch gateway events, and `calls` records every request the bot made.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import itertools
import json
import math
import re
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import BodyPartReader, WSMsgType, web

from tests.fakes.call_log import CallLog

APPLICATION_ID = 1_100_000_000_000_000_001
BOT_USER_ID = APPLICATION_ID  # a bot's user id is its application id
GUILD_ID = 1_100_000_000_000_000_002
TEXT_CHANNEL_ID = 1_100_000_000_000_000_003
OWNER_ID = 1_100_000_000_000_000_004
DEFAULT_TOKEN = "fake-bot-token"
DEFAULT_ATTACHMENT_LIMIT = 10 * 1024 * 1024  # bytes, Discord's default upload limit
HEARTBEAT_INTERVAL_MS = 41_250
ALL_PERMISSIONS = str((1 << 50) - 1)

# Gateway opcodes
DISPATCH, HEARTBEAT, IDENTIFY, RESUME, RECONNECT = 0, 1, 2, 6, 7
INVALID_SESSION, HELLO, HEARTBEAT_ACK = 9, 10, 11

# Interaction callback types
PONG, CHANNEL_MESSAGE, DEFERRED_CHANNEL_MESSAGE = 1, 4, 5
DEFERRED_UPDATE_MESSAGE, UPDATE_MESSAGE = 6, 7

VOICE_MESSAGE_FLAG = 1 << 13  # message flag IS_VOICE_MESSAGE


@dataclass(frozen=True)
class FakeUser:
    id: int
    name: str
    bot: bool = False
    locale: str = "en-US"  # the language of their Discord: every interaction carries it

    def payload(self) -> dict[str, Any]:
        return {"id": str(self.id), "username": self.name, "global_name": self.name,
                "discriminator": "0", "avatar": None, "bot": self.bot, "public_flags": 0}


@dataclass(frozen=True)
class Upload:
    """A file a person attaches. `size` overrides the announced size (a "too large" file
    need not be that large here); `voice` makes it a voice message."""

    filename: str
    data: bytes
    content_type: str = "application/octet-stream"
    voice: bool = False
    size: int | None = None


@dataclass(frozen=True)
class SentFile:
    filename: str
    content_type: str
    data: bytes


@dataclass(frozen=True)
class Call:
    """One request the bot made: the JSON body (or multipart payload_json) and any files."""

    method: str
    path: str
    json: Any = None
    files: tuple[SentFile, ...] = ()
    query: dict[str, str] = field(default_factory=dict)

    @property
    def filenames(self) -> list[str]:
        return [f.filename for f in self.files]

    @property
    def custom_ids(self) -> list[str]:
        """Every button custom_id in the payload's components (or in an interaction
        response's data)."""
        body = self.json if isinstance(self.json, dict) else {}
        body = body.get("data", body) if isinstance(body.get("data"), dict) else body
        return [item["custom_id"] for row in body.get("components") or []
                for item in row.get("components", []) if "custom_id" in item]

    @property
    def content(self) -> str:
        body = self.json if isinstance(self.json, dict) else {}
        body = body.get("data", body) if isinstance(body.get("data"), dict) else body
        return str(body.get("content") or "")


# What the middleware read from a request, for the handlers.
BODY: web.RequestKey[Any] = web.RequestKey("body", object)  # JSON, or multipart payload_json
FILES: web.RequestKey[tuple[SentFile, ...]] = web.RequestKey("files", tuple)


@dataclass
class _Failure:
    method: str
    path: re.Pattern[str]
    status: int
    retry_after_s: float
    is_global: bool
    code: int
    message: str


@dataclass
class _Interaction:
    id: int
    token: str
    channel_id: int
    message_id: int | None = None  # the clicked message (components)
    responded: int | None = None  # callback type
    original_id: int | None = None
    expired: bool = False


@dataclass
class _Gateway:
    socket: web.WebSocketResponse
    compress: str | None
    compressor: Any = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class FakeDiscord(CallLog[Call]):
    """The fake: `await start()`, point discord.py at `api_base`, play people, read `calls`."""

    def __init__(self, *, token: str = DEFAULT_TOKEN,
                 attachment_size_limit: int = DEFAULT_ATTACHMENT_LIMIT) -> None:
        super().__init__()
        self.token = token
        self.attachment_size_limit = attachment_size_limit
        self.bot = FakeUser(BOT_USER_ID, "SingSong", bot=True)
        self.owner = FakeUser(OWNER_ID, "owner")
        self.commands: list[dict[str, Any]] = []
        self.messages: dict[int, dict[str, Any]] = {}
        self.people_messages: dict[int, dict[str, Any]] = {}  # what people posted, by id
        self.identified: list[dict[str, Any]] = []  # IDENTIFY payloads ("d"), token left out
        self.ready = asyncio.Event()  # set when READY and GUILD_CREATE were sent
        self._ids = itertools.count(1)
        self._cdn: dict[str, bytes] = {}
        self._failures: list[_Failure] = []
        self._interactions: dict[str, _Interaction] = {}
        self._dm_channels: dict[int, int] = {}  # user id -> DM channel id
        self._gateway: _Gateway | None = None
        self._sequence = 0
        self._session_id = ""
        self._runner: web.AppRunner | None = None
        self.port = 0

    # --- Lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        app = web.Application(middlewares=[self._record_and_fail])
        app.router.add_get("/gateway", self._on_gateway)
        app.router.add_get("/attachments/{channel}/{id}/{filename}", self._on_cdn)
        api = "/api/v10"
        routes: list[tuple[str, str, Callable[[web.Request], Any]]] = [
            ("GET", "/gateway/bot", self._gateway_bot),
            ("GET", "/gateway", self._gateway_plain),
            ("GET", "/users/@me", self._me),
            ("GET", "/oauth2/applications/@me", self._application),
            ("GET", "/applications/@me", self._application),
            ("PUT", "/applications/{app}/commands", self._put_commands),
            ("PUT", "/applications/{app}/guilds/{guild}/commands", self._put_commands),
            ("GET", "/applications/{app}/commands", self._get_commands),
            ("GET", "/channels/{channel}", self._get_channel),
            ("POST", "/channels/{channel}/messages", self._post_message),
            ("GET", "/channels/{channel}/messages/{message}", self._get_message),
            ("PATCH", "/channels/{channel}/messages/{message}", self._edit_message),
            ("POST", "/channels/{channel}/typing", self._no_content),
            ("POST", "/users/@me/channels", self._open_dm),
            ("POST", "/interactions/{id}/{token}/callback", self._callback),
            ("POST", "/webhooks/{app}/{token}", self._follow_up),
            ("GET", "/webhooks/{app}/{token}/messages/{message}", self._get_webhook_message),
            ("PATCH", "/webhooks/{app}/{token}/messages/{message}", self._edit_webhook_message),
            ("DELETE", "/webhooks/{app}/{token}/messages/{message}", self._delete_webhook_message),
        ]
        for method, path, handler in routes:
            app.router.add_route(method, api + path, handler)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = int(self._runner.addresses[0][1])

    async def close(self) -> None:
        if self._gateway is not None:
            with contextlib.suppress(Exception):
                await self._gateway.socket.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_base(self) -> str:
        return f"{self.base_url}/api/v10"

    # --- Playing people -------------------------------------------------------------------

    def user(self, name: str, locale: str = "en-US") -> FakeUser:
        return FakeUser(self._snowflake(), name, locale=locale)

    def dm_channel_id(self, user: FakeUser) -> int:
        if user.id not in self._dm_channels:
            self._dm_channels[user.id] = self._snowflake()
        return self._dm_channels[user.id]

    async def message(self, user: FakeUser, channel: int | None = None, content: str = "",
                      attachments: Sequence[Upload] = (), dm: bool = False,
                      dispatched: bool = True) -> dict[str, Any]:
        """A person posts a message: dispatches MESSAGE_CREATE (unless `dispatched` is
        False: a client that was away, which can still fetch it) and returns its payload."""
        channel_id = self._channel_for(user, channel, dm)
        message = self._message_payload(user, channel_id, content, dm=dm,
                                        attachments=[self._attachment(channel_id, upload)
                                                     for upload in attachments])
        if any(upload.voice for upload in attachments):
            message["flags"] = VOICE_MESSAGE_FLAG
        self.people_messages[int(message["id"])] = message
        if dispatched:
            await self.dispatch("MESSAGE_CREATE", message)
        return message

    async def slash(self, user: FakeUser, channel: int | None, name: str,
                    options: dict[str, Any] | None = None,
                    attachments: dict[str, Upload] | None = None,
                    dm: bool = False) -> dict[str, Any]:
        """A person runs /name: INTERACTION_CREATE type 2. `attachments` maps option names to
        files (resolved attachments)."""
        channel_id = self._channel_for(user, channel, dm)
        data: dict[str, Any] = {"id": str(self._command_id(name)), "name": name, "type": 1,
                                "options": [{"name": key, "type": 3, "value": value}
                                            for key, value in (options or {}).items()]}
        if attachments:
            resolved = {}
            for option, upload in attachments.items():
                attachment = self._attachment(channel_id, upload)
                resolved[attachment["id"]] = attachment
                data["options"].append({"name": option, "type": 11, "value": attachment["id"]})
            data["resolved"] = {"attachments": resolved}
        if not data["options"]:
            del data["options"]
        interaction = self._interaction_payload(2, user, channel_id, dm, data)
        await self.dispatch("INTERACTION_CREATE", interaction)
        return interaction

    async def click(self, user: FakeUser, channel: int | None, message_id: int,
                    custom_id: str, dm: bool = False) -> dict[str, Any]:
        """A person presses a button on one of the bot's messages: INTERACTION_CREATE type 3."""
        channel_id = self._channel_for(user, channel, dm)
        data = {"custom_id": custom_id, "component_type": 2}
        interaction = self._interaction_payload(3, user, channel_id, dm, data)
        interaction["message"] = self.messages[message_id]
        self._interactions[interaction["token"]].message_id = message_id
        await self.dispatch("INTERACTION_CREATE", interaction)
        return interaction

    def expire(self, token: str) -> None:
        """The interaction token's 15 minutes are over: its webhook answers 401."""
        self._interactions[token].expired = True

    def fail_next(self, method: str, path: str, *, status: int = 429,
                  retry_after_s: float = 0.05, is_global: bool = False, code: int = 0,
                  message: str = "") -> None:
        """The next request matching `method` and the regular expression `path` (searched in
        the path after /api/v10) fails: a 429 rate limit by default."""
        self._failures.append(_Failure(method.upper(), re.compile(path), status, retry_after_s,
                                       is_global, code, message))

    async def wait_for_connection(self, timeout: float = 10.0) -> None:
        async with asyncio.timeout(timeout):
            await self.ready.wait()

    async def reconnect(self) -> None:
        """Ask the client to reconnect (op 7): it resumes on a new connection."""
        self.ready.clear()
        await self._send({"op": RECONNECT, "d": None})

    def bot_messages(self, channel_id: int | None = None) -> list[dict[str, Any]]:
        """The messages the bot has posted (in a channel, or anywhere), oldest first."""
        return [message for message in self.messages.values()
                if channel_id is None or message["channel_id"] == str(channel_id)]

    def sent(self, path_pattern: str, method: str = "POST") -> list[Call]:
        """Calls whose path matches the regular expression."""
        return [call for call in self.calls
                if call.method == method and re.search(path_pattern, call.path)]

    # --- Gateway --------------------------------------------------------------------------

    async def dispatch(self, event: str, data: dict[str, Any]) -> None:
        self._sequence += 1
        await self._send({"op": DISPATCH, "t": event, "s": self._sequence, "d": data})

    async def _send(self, payload: dict[str, Any]) -> None:
        gateway = self._gateway
        if gateway is None or gateway.socket.closed:
            raise RuntimeError("no client is connected to the fake gateway")
        text = json.dumps(payload)
        async with gateway.lock:
            if gateway.compress == "zlib-stream":
                chunk = gateway.compressor.compress(text.encode())
                await gateway.socket.send_bytes(chunk + gateway.compressor.flush(
                    zlib.Z_SYNC_FLUSH))
            elif gateway.compress == "zstd-stream":
                chunk = gateway.compressor.compress(text.encode())
                await gateway.socket.send_bytes(chunk + gateway.compressor.flush(
                    _zstandard().COMPRESSOBJ_FLUSH_BLOCK))
            else:
                await gateway.socket.send_str(text)

    async def _on_gateway(self, request: web.Request) -> web.StreamResponse:
        socket = web.WebSocketResponse(max_msg_size=0)
        await socket.prepare(request)
        compress = request.query.get("compress")
        if compress == "zlib-stream":
            compressor: Any = zlib.compressobj()
        elif compress == "zstd-stream":  # discord.py's choice where zstandard is installed
            compressor = _zstandard().ZstdCompressor().compressobj()
        else:
            compressor = None
        previous, self._gateway = self._gateway, _Gateway(socket, compress, compressor)
        if previous is not None and not previous.socket.closed:
            await previous.socket.close(code=4000)
        await self._send({"op": HELLO, "d": {"heartbeat_interval": HEARTBEAT_INTERVAL_MS}})
        async for frame in socket:
            if frame.type is not WSMsgType.TEXT:
                continue
            payload = json.loads(frame.data)
            op, data = payload.get("op"), payload.get("d")
            if op == HEARTBEAT:
                await self._send({"op": HEARTBEAT_ACK})
            elif op == IDENTIFY:
                if data.get("token") != self.token:
                    await socket.close(code=4004, message=b"Authentication failed.")
                    break
                self.identified.append({k: v for k, v in data.items() if k != "token"})
                await self._send_ready()
            elif op == RESUME:
                if data.get("session_id") != self._session_id or data.get(
                        "token") != self.token:
                    await self._send({"op": INVALID_SESSION, "d": False})
                else:
                    await self.dispatch("RESUMED", {})
                    self.ready.set()
        if self._gateway is not None and self._gateway.socket is socket:
            self._gateway = None
            self.ready.clear()
        return socket

    async def _send_ready(self) -> None:
        self._session_id = f"session-{self._snowflake()}"
        await self.dispatch("READY", {
            "v": 10, "user": self.bot.payload(), "session_id": self._session_id,
            "resume_gateway_url": f"ws://127.0.0.1:{self.port}/gateway",
            "guilds": [{"id": str(GUILD_ID), "unavailable": True}],
            "application": {"id": str(APPLICATION_ID), "flags": 0},
            "private_channels": [], "relationships": []})
        await self.dispatch("GUILD_CREATE", self._guild())
        self.ready.set()

    def _guild(self) -> dict[str, Any]:
        return {
            "id": str(GUILD_ID), "name": "SingSong test server", "icon": None,
            "owner_id": str(OWNER_ID), "unavailable": False, "member_count": 2,
            "large": False, "features": [], "premium_tier": 0, "emojis": [], "stickers": [],
            "preferred_locale": "en-US", "verification_level": 0,
            "default_message_notifications": 0, "explicit_content_filter": 0,
            "mfa_level": 0, "nsfw_level": 0, "system_channel_flags": 0,
            "joined_at": _now(), "voice_states": [], "presences": [], "threads": [],
            "stage_instances": [], "guild_scheduled_events": [], "soundboard_sounds": [],
            "roles": [{"id": str(GUILD_ID), "name": "@everyone", "permissions": ALL_PERMISSIONS,
                       "position": 0, "color": 0, "hoist": False, "managed": False,
                       "mentionable": False, "flags": 0}],
            "channels": [self._text_channel()],
            "members": [self._member(self.bot), self._member(self.owner)],
        }

    def _text_channel(self) -> dict[str, Any]:
        return {"id": str(TEXT_CHANNEL_ID), "type": 0, "guild_id": str(GUILD_ID),
                "name": "songs", "position": 0, "permission_overwrites": [], "nsfw": False,
                "parent_id": None, "topic": None, "last_message_id": None,
                "rate_limit_per_user": 0}

    @staticmethod
    def _member(user: FakeUser) -> dict[str, Any]:
        return {"user": user.payload(), "roles": [], "joined_at": _now(), "deaf": False,
                "mute": False, "flags": 0, "permissions": ALL_PERMISSIONS}

    # --- REST: the middleware records every call and injects failures ----------------------

    @web.middleware
    async def _record_and_fail(self, request: web.Request,
                               handler: Callable[[web.Request], Any]) -> web.StreamResponse:
        if request.path == "/gateway":
            response: web.StreamResponse = await handler(request)
            return response
        path = request.path.removeprefix("/api/v10")
        body, files = await _read_body(request)
        request[BODY], request[FILES] = body, files
        await self._record(Call(request.method, path, body, files, dict(request.query)))
        for failure in self._failures:
            if failure.method == request.method and failure.path.search(path):
                self._failures.remove(failure)
                return _failure_response(failure)
        needs_bot_token = not path.startswith(("/webhooks/", "/interactions/",
                                               "/attachments/"))
        if needs_bot_token and request.headers.get("Authorization") != f"Bot {self.token}":
            return _error(401, 0, "401: Unauthorized")
        response = await handler(request)
        return response

    async def _record(self, call: Call) -> None:
        async with self._changed:
            self.calls.append(call)
            self._changed.notify_all()

    # --- REST: login, gateway, application, commands --------------------------------------

    async def _gateway_bot(self, request: web.Request) -> web.Response:
        return _json({
            "url": f"ws://127.0.0.1:{self.port}/gateway", "shards": 1,
            "session_start_limit": {"total": 1000, "remaining": 999,
                                    "reset_after": 14_400_000, "max_concurrency": 1}})

    async def _gateway_plain(self, request: web.Request) -> web.Response:
        return _json({"url": f"ws://127.0.0.1:{self.port}/gateway"})

    async def _me(self, request: web.Request) -> web.Response:
        return _json({**self.bot.payload(), "verified": True, "flags": 0,
                                  "mfa_enabled": False})

    async def _application(self, request: web.Request) -> web.Response:
        return _json({
            "id": str(APPLICATION_ID), "name": "SingSong", "icon": None,
            "description": "Turns voice notes into songs.", "bot_public": True,
            "bot_require_code_grant": False, "verify_key": "0" * 64,
            "owner": self.owner.payload(), "flags": 0, "team": None,
            "bot": self.bot.payload()})

    async def _put_commands(self, request: web.Request) -> web.Response:
        if request.match_info["app"] != str(APPLICATION_ID):
            return _error(403, 50001, "Missing Access")
        self.commands = [{**command, "id": str(self._snowflake()),
                          "application_id": str(APPLICATION_ID), "version": "1"}
                         for command in request[BODY] or []]
        return _json(self.commands)

    async def _get_commands(self, request: web.Request) -> web.Response:
        return _json(self.commands)

    # --- REST: channels and messages ------------------------------------------------------

    async def _get_channel(self, request: web.Request) -> web.Response:
        channel_id = int(request.match_info["channel"])
        if channel_id == TEXT_CHANNEL_ID:
            return _json(self._text_channel())
        for user_id, dm_id in self._dm_channels.items():
            if dm_id == channel_id:
                return _json(self._dm_channel(user_id))
        return _error(404, 10003, "Unknown Channel")

    async def _open_dm(self, request: web.Request) -> web.Response:
        user_id = int((request[BODY] or {})["recipient_id"])
        self._dm_channels.setdefault(user_id, self._snowflake())
        return _json(self._dm_channel(user_id))

    def _dm_channel(self, user_id: int) -> dict[str, Any]:
        return {"id": str(self._dm_channels[user_id]), "type": 1, "last_message_id": None,
                "recipients": [FakeUser(user_id, f"user-{user_id}").payload()]}

    async def _post_message(self, request: web.Request) -> web.Response:
        channel_id = int(request.match_info["channel"])
        if not self._channel_exists(channel_id):
            return _error(404, 10003, "Unknown Channel")
        problem = self._check_files(request[FILES])
        if problem is not None:
            return problem
        message = self._bot_message(channel_id, request[BODY] or {}, request[FILES])
        await self.dispatch_if_connected("MESSAGE_CREATE", message)
        return _json(message)

    async def _get_message(self, request: web.Request) -> web.Response:
        """Get Channel Message: one message by id (a person's or the bot's)."""
        message_id = int(request.match_info["message"])
        message = self.people_messages.get(message_id) or self.messages.get(message_id)
        if message is None or message["channel_id"] != request.match_info["channel"]:
            return _error(404, 10008, "Unknown Message")
        return _json(message)

    async def _edit_message(self, request: web.Request) -> web.Response:
        message_id = int(request.match_info["message"])
        if message_id not in self.messages:
            return _error(404, 10008, "Unknown Message")
        return _json(self._edited(message_id, request[BODY] or {}))

    async def _no_content(self, request: web.Request) -> web.Response:
        return web.Response(status=204)

    # --- REST: interactions and their webhooks --------------------------------------------

    async def _callback(self, request: web.Request) -> web.Response:
        interaction = self._interactions.get(request.match_info["token"])
        if interaction is None or str(interaction.id) != request.match_info["id"]:
            return _error(404, 10062, "Unknown interaction")
        if interaction.responded is not None:
            return _error(400, 40060, "Interaction has already been acknowledged.")
        body = request[BODY] or {}
        kind, data = int(body.get("type", 0)), body.get("data") or {}
        problem = self._check_files(request[FILES])
        if problem is not None:
            return problem
        interaction.responded = kind
        message: dict[str, Any] | None = None
        if kind in (CHANNEL_MESSAGE, DEFERRED_CHANNEL_MESSAGE):
            message = self._bot_message(interaction.channel_id, data, request[FILES],
                                        webhook=True)
            if kind == DEFERRED_CHANNEL_MESSAGE:
                message["flags"] = message.get("flags", 0) | 128  # LOADING
            interaction.original_id = int(message["id"])
        elif kind == UPDATE_MESSAGE and interaction.message_id is not None:
            message = self._edited(interaction.message_id, data)
        answer: dict[str, Any] = {"interaction": {
            "id": str(interaction.id), "type": 2, "response_message_id": (
                message["id"] if message else None),
            "response_message_loading": kind == DEFERRED_CHANNEL_MESSAGE,
            "response_message_ephemeral": bool(int(data.get("flags", 0)) & 64)}}
        if message is not None:
            answer["resource"] = {"type": kind, "message": message}
        if "with_response" not in request.query:
            return web.Response(status=204)
        return _json(answer)

    def _interaction_for_webhook(self, request: web.Request) -> _Interaction | web.Response:
        interaction = self._interactions.get(request.match_info["token"])
        if request.match_info["app"] != str(APPLICATION_ID) or interaction is None:
            return _error(404, 10015, "Unknown Webhook")
        if interaction.expired:
            return _error(401, 50027, "Invalid Webhook Token")
        if interaction.responded is None:
            return _error(404, 10015, "Unknown Webhook")
        return interaction

    async def _follow_up(self, request: web.Request) -> web.Response:
        interaction = self._interaction_for_webhook(request)
        if isinstance(interaction, web.Response):
            return interaction
        problem = self._check_files(request[FILES])
        if problem is not None:
            return problem
        message = self._bot_message(interaction.channel_id, request[BODY] or {},
                                    request[FILES], webhook=True)
        if request.query.get("wait", "false").lower() not in ("true", "1"):
            return web.Response(status=204)
        return _json(message)

    def _original_id(self, request: web.Request,
                     interaction: _Interaction) -> int | web.Response:
        wanted = request.match_info["message"]
        message_id = interaction.original_id if wanted == "@original" else int(wanted)
        if message_id is None or message_id not in self.messages:
            return _error(404, 10008, "Unknown Message")
        return message_id

    async def _get_webhook_message(self, request: web.Request) -> web.Response:
        interaction = self._interaction_for_webhook(request)
        if isinstance(interaction, web.Response):
            return interaction
        message_id = self._original_id(request, interaction)
        if isinstance(message_id, web.Response):
            return message_id
        return _json(self.messages[message_id])

    async def _edit_webhook_message(self, request: web.Request) -> web.Response:
        interaction = self._interaction_for_webhook(request)
        if isinstance(interaction, web.Response):
            return interaction
        message_id = self._original_id(request, interaction)
        if isinstance(message_id, web.Response):
            return message_id
        problem = self._check_files(request[FILES])
        if problem is not None:
            return problem
        body = dict(request[BODY] or {})
        if request[FILES]:
            body["attachments"] = self._stored_files(interaction.channel_id, request[FILES])
        return _json(self._edited(message_id, body))

    async def _delete_webhook_message(self, request: web.Request) -> web.Response:
        interaction = self._interaction_for_webhook(request)
        if isinstance(interaction, web.Response):
            return interaction
        message_id = self._original_id(request, interaction)
        if isinstance(message_id, web.Response):
            return message_id
        del self.messages[message_id]
        return web.Response(status=204)

    # --- The attachment CDN ---------------------------------------------------------------

    async def _on_cdn(self, request: web.Request) -> web.Response:
        data = self._cdn.get(request.path)
        if data is None:
            return web.Response(status=404, text="Not Found")
        return web.Response(body=data, content_type="application/octet-stream")

    # --- Payloads -------------------------------------------------------------------------

    def _snowflake(self) -> int:
        milliseconds = int(time.time() * 1000) - 1_420_070_400_000
        return (milliseconds << 22) | (next(self._ids) & 0x3FFFFF)

    def _command_id(self, name: str) -> int:
        for command in self.commands:
            if command.get("name") == name:
                return int(command["id"])
        return self._snowflake()

    def _channel_for(self, user: FakeUser, channel: int | None, dm: bool) -> int:
        if dm:
            return channel if channel is not None else self.dm_channel_id(user)
        return channel if channel is not None else TEXT_CHANNEL_ID

    def _channel_exists(self, channel_id: int) -> bool:
        return channel_id == TEXT_CHANNEL_ID or channel_id in self._dm_channels.values()

    def _is_dm(self, channel_id: int) -> bool:
        return channel_id in self._dm_channels.values()

    def _attachment(self, channel_id: int, upload: Upload) -> dict[str, Any]:
        attachment_id = self._snowflake()
        path = f"/attachments/{channel_id}/{attachment_id}/{upload.filename}"
        self._cdn[path] = upload.data
        attachment: dict[str, Any] = {
            "id": str(attachment_id), "filename": upload.filename,
            "size": upload.size if upload.size is not None else len(upload.data),
            "url": self.base_url + path, "proxy_url": self.base_url + path,
            "content_type": upload.content_type}
        if upload.voice:
            attachment.update(duration_secs=3.0, waveform="AAAAAAAAAAAA", flags=1 << 13)
        return attachment

    def _stored_files(self, channel_id: int,
                      files: tuple[SentFile, ...]) -> list[dict[str, Any]]:
        return [self._attachment(channel_id, Upload(f.filename, f.data, f.content_type))
                for f in files]

    def _message_payload(self, author: FakeUser, channel_id: int, content: str, *,
                         dm: bool, attachments: list[dict[str, Any]]) -> dict[str, Any]:
        message: dict[str, Any] = {
            "id": str(self._snowflake()), "channel_id": str(channel_id), "type": 0,
            "author": author.payload(), "content": content, "attachments": attachments,
            "embeds": [], "components": [], "mentions": [], "mention_roles": [],
            "mention_everyone": False, "pinned": False, "tts": False, "flags": 0,
            "timestamp": _now(), "edited_timestamp": None}
        if not dm:
            message["guild_id"] = str(GUILD_ID)
            message["member"] = {k: v for k, v in self._member(author).items() if k != "user"}
        return message

    def _bot_message(self, channel_id: int, body: dict[str, Any], files: tuple[SentFile, ...],
                     *, webhook: bool = False) -> dict[str, Any]:
        message = self._message_payload(self.bot, channel_id, str(body.get("content") or ""),
                                        dm=self._is_dm(channel_id),
                                        attachments=self._stored_files(channel_id, files))
        message["components"] = body.get("components") or []
        message["flags"] = int(body.get("flags") or 0)
        reference = body.get("message_reference")
        if reference:
            message["type"] = 19  # a reply
            message["message_reference"] = reference
        if webhook:
            message["webhook_id"] = str(APPLICATION_ID)
            message["application_id"] = str(APPLICATION_ID)
        self.messages[int(message["id"])] = message
        return message

    def _edited(self, message_id: int, body: dict[str, Any]) -> dict[str, Any]:
        message = self.messages[message_id]
        for key in ("content", "components", "attachments", "flags"):
            if key in body and body[key] is not None:
                message[key] = body[key]
        message["edited_timestamp"] = _now()
        return message

    def _interaction_payload(self, kind: int, user: FakeUser, channel_id: int, dm: bool,
                             data: dict[str, Any]) -> dict[str, Any]:
        interaction_id = self._snowflake()
        token = f"interaction-token-{interaction_id}"
        self._interactions[token] = _Interaction(interaction_id, token, channel_id)
        payload: dict[str, Any] = {
            "id": str(interaction_id), "application_id": str(APPLICATION_ID), "type": kind,
            "token": token, "version": 1, "data": data, "locale": user.locale,
            "app_permissions": ALL_PERMISSIONS, "entitlements": [],
            "attachment_size_limit": self.attachment_size_limit,
            "authorizing_integration_owners": {"0": str(GUILD_ID)},
            "context": 1 if dm else 0, "channel_id": str(channel_id)}
        if dm:
            payload["user"] = user.payload()
            payload["channel"] = {"id": str(channel_id), "type": 1,
                                  "recipients": [user.payload()]}
        else:
            payload["guild_id"] = str(GUILD_ID)
            payload["guild_locale"] = "en-US"
            payload["member"] = self._member(user)
            payload["channel"] = self._text_channel()
        return payload

    def _check_files(self, files: tuple[SentFile, ...]) -> web.Response | None:
        for sent in files:
            if len(sent.data) > self.attachment_size_limit:
                return _error(413, 40005, "Request entity too large")
        return None

    async def dispatch_if_connected(self, event: str, data: dict[str, Any]) -> None:
        """Echo an event to the client, as Discord does for the bot's own messages."""
        if self._gateway is not None and not self._gateway.socket.closed:
            with contextlib.suppress(ConnectionError, RuntimeError):
                await self.dispatch(event, data)


async def _read_body(request: web.Request) -> tuple[Any, tuple[SentFile, ...]]:
    """JSON, or multipart with payload_json and files[n]."""
    if request.content_type == "multipart/form-data":
        body: Any = None
        files: list[SentFile] = []
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):
                continue
            if part.name == "payload_json":
                body = json.loads(await part.text())
            else:
                data = bytes(await part.read(decode=False))
                files.append(SentFile(part.filename or "", part.headers.get(
                    "Content-Type", "application/octet-stream"), data))
        return body, tuple(files)
    if request.can_read_body and request.content_type == "application/json":
        return await request.json(), ()
    return None, ()


def _error(status: int, code: int, message: str) -> web.Response:
    return _json({"message": message, "code": code}, status=status)


def _failure_response(failure: _Failure) -> web.Response:
    if failure.status != 429:
        return _error(failure.status, failure.code, failure.message or f"{failure.status}")
    reset_after = failure.retry_after_s
    headers = {
        "Retry-After": str(math.ceil(reset_after)), "X-RateLimit-Limit": "5",
        "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": f"{time.time() + reset_after:.3f}",
        "X-RateLimit-Reset-After": f"{reset_after:.3f}", "X-RateLimit-Bucket": "fakebucket",
        "X-RateLimit-Scope": "shared" if failure.is_global else "user",
        "Via": "1.1 google"}
    if failure.is_global:
        headers["X-RateLimit-Global"] = "true"
    return _json({"message": failure.message or "You are being rate limited.",
                              "retry_after": reset_after, "global": failure.is_global,
                              "code": failure.code}, status=429, headers=headers)


def _zstandard() -> Any:
    return importlib.import_module("zstandard")


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """A JSON response whose Content-Type is exactly application/json, as Discord's is
    (discord.py parses nothing else)."""
    return web.Response(body=json.dumps(data).encode(), status=status,
                        headers={**(headers or {}), "Content-Type": "application/json"})
