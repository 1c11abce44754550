"""A fake Telegram Bot API server on 127.0.0.1, speaking the documented JSON shapes.

Tests queue incoming messages and button presses (`voice`, `text`, `press`), point the real
python-telegram-bot client at `base_url` / `base_file_url`, and read back what the bot did from
`calls`. Answers are {"ok": true, "result": ...} or {"ok": false, "error_code": N,
"description": "..."}; a 429 carries "parameters": {"retry_after": N}.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import re
import time
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import aiohttp
from aiohttp import web

from tests.fakes.call_log import CallLog

DOWNLOAD_LIMIT_BYTES = 20 * 1024 * 1024  # getFile refuses larger files, as Telegram does
UPLOAD_LIMIT_BYTES = 50 * 1024 * 1024
JSON_PARAMS = frozenset({"reply_markup", "reply_parameters", "allowed_updates", "entities",
                         "caption_entities", "link_preview_options", "media", "commands",
                         "scope"})
INT_PARAMS = frozenset({"message_id", "offset", "limit", "timeout", "duration",
                        "reply_to_message_id", "max_connections", "cache_time", "width",
                        "height", "length", "message_thread_id"})
BOOL_PARAMS = frozenset({"drop_pending_updates", "show_alert", "disable_notification",
                         "protect_content", "allow_sending_without_reply",
                         "disable_content_type_detection", "has_spoiler"})
COMMAND_PATTERN = re.compile(r"(?<!\S)/[A-Za-z0-9_]{1,32}(?:@[A-Za-z0-9_]{3,32})?")
SENT_FILE_KINDS = {"sendVoice": "voice", "sendAudio": "audio", "sendDocument": "document",
                   "sendPhoto": "photo", "sendVideoNote": "video_note"}


@dataclass(frozen=True)
class UploadedFile:
    """A file the bot uploaded in a multipart request."""

    filename: str
    content_type: str
    data: bytes


@dataclass(frozen=True)
class ApiCall:
    """One Bot API request as the server saw it; `status` is the HTTP status it answered."""

    method: str
    params: dict[str, Any]
    files: dict[str, UploadedFile]
    status: int
    result: Any = None

    @property
    def ok(self) -> bool:
        return self.status == 200


class ApiError(Exception):
    """Answered as {"ok": false, ...} with this status and description."""

    def __init__(self, status: int, description: str, retry_after_s: int | None = None) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.retry_after_s = retry_after_s

    def body(self) -> dict[str, Any]:
        answer: dict[str, Any] = {"ok": False, "error_code": self.status,
                                  "description": self.description}
        if self.retry_after_s is not None:
            answer["parameters"] = {"retry_after": self.retry_after_s}
        return answer


@dataclass
class _StoredFile:
    file_id: str
    file_unique_id: str
    file_path: str
    data: bytes
    file_size: int


@dataclass
class _Webhook:
    url: str = ""
    secret_token: str | None = None
    deliveries: list[tuple[int, int]] = field(default_factory=list)  # (update_id, HTTP status)


def utf16_length(text: str) -> int:
    """Telegram measures entity offsets and lengths in UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


def command_entities(text: str) -> list[dict[str, Any]]:
    """The bot_command entities the real server marks in a message's text."""
    return [{"type": "bot_command", "offset": utf16_length(text[:match.start()]),
             "length": utf16_length(match.group())}
            for match in COMMAND_PATTERN.finditer(text)]


class FakeTelegram(CallLog[ApiCall]):
    """The Bot API for one bot token, plus the test-side controls."""

    def __init__(self, token: str = "123456:TEST-token", *, bot_id: int = 123456,
                 username: str = "singsong_test_bot") -> None:
        super().__init__()
        self.token = token
        self.bot_user: dict[str, Any] = {"id": bot_id, "is_bot": True, "first_name": "SingSong",
                                         "username": username, "can_join_groups": True,
                                         "can_read_all_group_messages": False,
                                         "supports_inline_queries": False}
        self.downloads: list[str] = []  # file_id of every file downloaded, in order
        self.polls_waiting = 0  # getUpdates requests waiting for an update now
        self.webhook = _Webhook()
        self.commands: list[dict[str, Any]] = []
        self._updates: list[dict[str, Any]] = []
        self._allowed_updates: list[str] = []
        self._update_ids = itertools.count(1)
        self._message_ids = itertools.count(1)
        self._file_ids = itertools.count(1)
        self._callback_ids = itertools.count(1)
        self._chats: dict[int, dict[str, Any]] = {}
        self._users: dict[int, dict[str, Any]] = {}
        self._messages: dict[tuple[int, int], dict[str, Any]] = {}
        self._files: dict[str, _StoredFile] = {}
        self._failures: dict[str, list[ApiError]] = {}
        self._closing = False
        self._runner: web.AppRunner | None = None
        self._client: aiohttp.ClientSession | None = None
        self._deliveries: set[asyncio.Task[None]] = set()
        self._port = 0

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        app = web.Application(client_max_size=UPLOAD_LIMIT_BYTES + 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._on_api)
        app.router.add_get("/file/bot{token}/{file_path:.+}", self._on_download)
        self._runner = web.AppRunner(app, shutdown_timeout=1.0, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self._port = int(self._runner.addresses[0][1])

    async def close(self) -> None:
        self._closing = True
        await self._notify()
        for task in list(self._deliveries):
            task.cancel()
        await asyncio.gather(*self._deliveries, return_exceptions=True)
        if self._client is not None:
            await self._client.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def __aenter__(self) -> FakeTelegram:
        await self.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, traceback: TracebackType | None) -> None:
        await self.close()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._port}/bot"

    @property
    def base_file_url(self) -> str:
        return f"http://127.0.0.1:{self._port}/file/bot"

    # -- the test's side ----------------------------------------------------------------------

    async def voice(self, user_id: int, chat_id: int, data: bytes, *, duration: int,
                    mime: str = "audio/ogg", kind: str = "voice", file_size: int | None = None,
                    file_name: str | None = None, caption: str | None = None,
                    reply_to: int | None = None, chat_type: str = "private") -> int:
        """Queue an incoming message carrying a file; returns its message_id.

        kind is "voice", "audio", "video_note" or "document"; file_size is what Telegram
        reports (default len(data)), so a test can claim a big file without making one.
        """
        stored = self._store_file(data, kind, file_size)
        attachment: dict[str, Any] = {"file_id": stored.file_id,
                                      "file_unique_id": stored.file_unique_id,
                                      "file_size": stored.file_size}
        if kind == "video_note":
            attachment |= {"length": 240, "duration": duration}
        elif kind in ("voice", "audio"):
            attachment |= {"duration": duration, "mime_type": mime}
        elif kind == "document":
            attachment |= {"mime_type": mime}
        else:
            raise ValueError(f"unknown file kind {kind!r}")
        if file_name is not None and kind in ("audio", "document"):
            attachment["file_name"] = file_name
        content: dict[str, Any] = {kind: attachment}
        if caption is not None:
            content |= {"caption": caption, "caption_entities": command_entities(caption)}
        return await self._incoming(user_id, chat_id, content, reply_to, chat_type)

    async def text(self, user_id: int, chat_id: int, text: str, *, reply_to: int | None = None,
                   chat_type: str = "private") -> int:
        """Queue an incoming text message (with bot_command entities); returns its message_id."""
        content: dict[str, Any] = {"text": text}
        if entities := command_entities(text):
            content["entities"] = entities
        return await self._incoming(user_id, chat_id, content, reply_to, chat_type)

    async def press(self, user_id: int, chat_id: int, message_id: int, data: str) -> str:
        """Queue a press of an inline button under one of the bot's messages; returns its id."""
        message = self._messages.get((chat_id, message_id))
        if message is None:
            raise KeyError(f"no message {message_id} in chat {chat_id}")
        callback_id = f"cb{next(self._callback_ids)}"
        await self._queue_update({"callback_query": {
            "id": callback_id, "from": self._user(user_id), "chat_instance": f"ci{chat_id}",
            "message": message, "data": data}})
        return callback_id

    def set_language(self, user_id: int, language_code: str | None) -> None:
        """The language of a user's Telegram app (IETF tag, "en" by default); None: Telegram
        leaves the field out, as it does for some users."""
        user = self._user(user_id)
        if language_code is None:
            user.pop("language_code", None)
        else:
            user["language_code"] = language_code

    def fail_next(self, method: str, status: int = 429, retry_after: int = 1,
                  description: str | None = None) -> None:
        """Answer the next call of `method` with an error (429: Too Many Requests)."""
        if status == 429:
            error = ApiError(429, description or f"Too Many Requests: retry after {retry_after}",
                             retry_after)
        else:
            error = ApiError(status, description or "Bad Request: injected failure")
        self._failures.setdefault(method, []).append(error)

    def calls_to(self, method: str) -> list[ApiCall]:
        """Successful calls of one method, in order."""
        return [call for call in self.calls if call.method == method and call.ok]

    def message(self, chat_id: int, message_id: int) -> dict[str, Any]:
        """A message as the server holds it now (after any edits)."""
        return self._messages[(chat_id, message_id)]

    def file_data(self, file_id: str) -> bytes:
        return self._files[file_id].data

    def pending_updates(self) -> int:
        return len(self._updates)

    def take_updates(self) -> list[dict[str, Any]]:
        """The pending updates, confirmed as a getUpdates with the next offset would confirm
        them: what a client got and then lost (it stopped before handling them)."""
        taken, self._updates = self._updates, []
        return taken

    # -- building objects ---------------------------------------------------------------------

    def _user(self, user_id: int) -> dict[str, Any]:
        return self._users.setdefault(user_id, {"id": user_id, "is_bot": False,
                                                "first_name": f"User{user_id}",
                                                "username": f"user{user_id}",
                                                "language_code": "en"})

    def _chat(self, chat_id: int, chat_type: str, user_id: int) -> dict[str, Any]:
        if chat_id not in self._chats:
            chat: dict[str, Any] = {"id": chat_id, "type": chat_type}
            if chat_type == "private":
                chat |= {"first_name": f"User{user_id}", "username": f"user{user_id}"}
            else:
                chat["title"] = f"Chat {chat_id}"
            self._chats[chat_id] = chat
        return self._chats[chat_id]

    def _store_file(self, data: bytes, kind: str, file_size: int | None) -> _StoredFile:
        number = next(self._file_ids)
        folder = {"voice": "voice", "audio": "music", "video_note": "video_notes",
                  "document": "documents", "photo": "photos"}.get(kind, "documents")
        stored = _StoredFile(file_id=f"F{number:06d}-{kind}", file_unique_id=f"U{number:06d}",
                             file_path=f"{folder}/file_{number}.bin", data=data,
                             file_size=len(data) if file_size is None else file_size)
        self._files[stored.file_id] = stored
        return stored

    async def _incoming(self, user_id: int, chat_id: int, content: dict[str, Any],
                        reply_to: int | None, chat_type: str) -> int:
        message_id = next(self._message_ids)
        message: dict[str, Any] = {"message_id": message_id, "date": int(time.time()),
                                   "chat": self._chat(chat_id, chat_type, user_id),
                                   "from": self._user(user_id), **content}
        if reply_to is not None:
            message["reply_to_message"] = self._messages[(chat_id, reply_to)]
        self._messages[(chat_id, message_id)] = message
        await self._queue_update({"message": message})
        return message_id

    async def _queue_update(self, body: dict[str, Any]) -> None:
        update = {"update_id": next(self._update_ids), **body}
        if self.webhook.url:
            task = asyncio.create_task(self._deliver_to_webhook(update))
            self._deliveries.add(task)
            task.add_done_callback(self._deliveries.discard)
            return
        self._updates.append(update)
        await self._notify()

    async def _deliver_to_webhook(self, update: dict[str, Any]) -> None:
        """POST one update to the webhook, as Telegram does (one try: tests read the status)."""
        if self._client is None:
            self._client = aiohttp.ClientSession()
        headers = {}
        if self.webhook.secret_token:
            headers["X-Telegram-Bot-Api-Secret-Token"] = self.webhook.secret_token
        async with self._client.post(self.webhook.url, json=update, headers=headers) as answer:
            self.webhook.deliveries.append((update["update_id"], answer.status))
        await self._notify()

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    # -- HTTP --------------------------------------------------------------------------------

    async def _on_download(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["token"] != self.token:
            return web.json_response(ApiError(401, "Unauthorized").body(), status=401)
        file_path = request.match_info["file_path"]
        for stored in self._files.values():
            if stored.file_path == file_path:
                self.downloads.append(stored.file_id)
                return web.Response(body=stored.data, content_type="application/octet-stream")
        return web.json_response(ApiError(404, "Not Found").body(), status=404)

    async def _on_api(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return web.json_response(ApiError(401, "Unauthorized").body(), status=401)
        method = request.match_info["method"]
        params, files = await read_params(request)
        handler = getattr(self, f"_api_{method}", None)
        failures = self._failures.get(method)
        try:
            if failures:
                raise failures.pop(0)
            if handler is None:
                raise ApiError(404, "Not Found: method not found")
            result = await handler(params, files)
        except ApiError as error:
            self.calls.append(ApiCall(method, params, files, error.status))
            await self._notify()
            return web.json_response(error.body(), status=error.status)
        self.calls.append(ApiCall(method, params, files, 200, result))
        await self._notify()
        return web.json_response({"ok": True, "result": result})

    # -- Bot API methods (named _api_<method>) -----------------------------------------------

    async def _api_getMe(self, params: dict[str, Any], files: dict[str, UploadedFile]) -> Any:
        return self.bot_user

    async def _api_getUpdates(self, params: dict[str, Any],
                              files: dict[str, UploadedFile]) -> Any:
        if self.webhook.url:
            raise ApiError(409, "Conflict: can't use getUpdates method while webhook is active;"
                                " use deleteWebhook to delete the webhook first")
        offset = int(params.get("offset", 0))
        if offset > 0:
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
        if (allowed := params.get("allowed_updates")) is not None:
            self._allowed_updates = list(allowed)
        limit = max(1, min(100, int(params.get("limit", 100))))
        timeout_s = max(0, int(params.get("timeout", 0)))
        self.polls_waiting += 1
        await self._notify()
        try:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout_s), self._changed:
                    await self._changed.wait_for(
                        lambda: self._closing or bool(self._deliverable()))
        finally:
            self.polls_waiting -= 1
        return self._deliverable()[:limit]

    def _deliverable(self) -> list[dict[str, Any]]:
        if not self._allowed_updates:
            return list(self._updates)
        return [u for u in self._updates if any(kind in u for kind in self._allowed_updates)]

    async def _api_getFile(self, params: dict[str, Any], files: dict[str, UploadedFile]) -> Any:
        stored = self._files.get(str(params.get("file_id", "")))
        if stored is None:
            raise ApiError(400, "Bad Request: invalid file_id")
        if stored.file_size > DOWNLOAD_LIMIT_BYTES:
            raise ApiError(400, "Bad Request: file is too big")
        return {"file_id": stored.file_id, "file_unique_id": stored.file_unique_id,
                "file_size": stored.file_size, "file_path": stored.file_path}

    async def _api_sendMessage(self, params: dict[str, Any],
                               files: dict[str, UploadedFile]) -> Any:
        text = str(params.get("text", ""))
        if not text.strip():
            raise ApiError(400, "Bad Request: message text is empty")
        return self._bot_message(params, {"text": text})

    async def _api_sendVoice(self, params: dict[str, Any], files: dict[str, UploadedFile]) -> Any:
        return self._send_file("sendVoice", params, files)

    async def _api_sendAudio(self, params: dict[str, Any], files: dict[str, UploadedFile]) -> Any:
        return self._send_file("sendAudio", params, files)

    async def _api_sendDocument(self, params: dict[str, Any],
                                files: dict[str, UploadedFile]) -> Any:
        return self._send_file("sendDocument", params, files)

    async def _api_sendPhoto(self, params: dict[str, Any], files: dict[str, UploadedFile]) -> Any:
        return self._send_file("sendPhoto", params, files)

    async def _api_sendChatAction(self, params: dict[str, Any],
                                  files: dict[str, UploadedFile]) -> Any:
        self._known_chat(params)
        if not params.get("action"):
            raise ApiError(400, "Bad Request: action is empty")
        return True

    async def _api_answerCallbackQuery(self, params: dict[str, Any],
                                       files: dict[str, UploadedFile]) -> Any:
        if not params.get("callback_query_id"):
            raise ApiError(400, "Bad Request: query is too old and response timeout expired "
                                "or query ID is invalid")
        return True

    async def _api_editMessageText(self, params: dict[str, Any],
                                   files: dict[str, UploadedFile]) -> Any:
        chat = self._known_chat(params)
        message = self._messages.get((chat["id"], int(params.get("message_id", 0))))
        if message is None:
            raise ApiError(400, "Bad Request: message to edit not found")
        text = str(params.get("text", ""))
        markup = params.get("reply_markup")
        if message.get("text") == text and message.get("reply_markup") == markup:
            raise ApiError(400, "Bad Request: message is not modified: specified new message "
                                "content and reply markup are exactly the same as a current "
                                "content and reply markup of the message")
        message["text"] = text
        message["edit_date"] = int(time.time())
        if markup is None:
            message.pop("reply_markup", None)
        else:
            message["reply_markup"] = markup
        return message

    async def _api_setWebhook(self, params: dict[str, Any], files: dict[str, UploadedFile]) -> Any:
        url = str(params.get("url", ""))
        if url and not url.startswith(("https://", "http://127.0.0.1")):
            raise ApiError(400, "Bad Request: bad webhook: An HTTPS URL must be provided "
                                "for webhook")
        self.webhook.url = url
        self.webhook.secret_token = params.get("secret_token")
        if params.get("drop_pending_updates"):
            self._updates.clear()
        return True

    async def _api_deleteWebhook(self, params: dict[str, Any],
                                 files: dict[str, UploadedFile]) -> Any:
        self.webhook.url = ""
        self.webhook.secret_token = None
        if params.get("drop_pending_updates"):
            self._updates.clear()
        return True

    async def _api_getWebhookInfo(self, params: dict[str, Any],
                                  files: dict[str, UploadedFile]) -> Any:
        return {"url": self.webhook.url, "has_custom_certificate": False,
                "pending_update_count": len(self._updates)}

    async def _api_setMyCommands(self, params: dict[str, Any],
                                 files: dict[str, UploadedFile]) -> Any:
        self.commands = list(params.get("commands", []))
        return True

    async def _api_getMyCommands(self, params: dict[str, Any],
                                 files: dict[str, UploadedFile]) -> Any:
        return self.commands

    async def _api_deleteMyCommands(self, params: dict[str, Any],
                                    files: dict[str, UploadedFile]) -> Any:
        self.commands = []
        return True

    async def _api_close(self, params: dict[str, Any], files: dict[str, UploadedFile]) -> Any:
        return True

    async def _api_logOut(self, params: dict[str, Any], files: dict[str, UploadedFile]) -> Any:
        return True

    # -- helpers for the methods --------------------------------------------------------------

    def _known_chat(self, params: dict[str, Any]) -> dict[str, Any]:
        try:
            chat = self._chats.get(int(params.get("chat_id", 0)))
        except (TypeError, ValueError):
            chat = None
        if chat is None:
            raise ApiError(400, "Bad Request: chat not found")
        return chat

    def _bot_message(self, params: dict[str, Any], content: dict[str, Any]) -> dict[str, Any]:
        chat = self._known_chat(params)
        message: dict[str, Any] = {"message_id": next(self._message_ids),
                                   "date": int(time.time()), "chat": chat,
                                   "from": self.bot_user, **content}
        reply = params.get("reply_parameters") or {}
        reply_to = reply.get("message_id", params.get("reply_to_message_id"))
        if reply_to is not None:
            original = self._messages.get((chat["id"], int(reply_to)))
            if original is not None:
                message["reply_to_message"] = original
            elif not (reply.get("allow_sending_without_reply")
                      or params.get("allow_sending_without_reply")):
                raise ApiError(400, "Bad Request: message to be replied not found")
        if markup := params.get("reply_markup"):
            message["reply_markup"] = markup
        self._messages[(chat["id"], message["message_id"])] = message
        return message

    def _send_file(self, method: str, params: dict[str, Any],
                   files: dict[str, UploadedFile]) -> dict[str, Any]:
        kind = SENT_FILE_KINDS[method]
        upload = files.get(kind)
        if upload is not None:
            if len(upload.data) > UPLOAD_LIMIT_BYTES:
                raise ApiError(413, "Request Entity Too Large")
            stored = self._store_file(upload.data, kind, None)
            filename, mime = upload.filename, upload.content_type
        elif (existing := self._files.get(str(params.get(kind, "")))) is not None:
            stored, filename, mime = existing, existing.file_path, "application/octet-stream"
        else:
            raise ApiError(400, f"Bad Request: there is no {kind} in the request")
        attachment: dict[str, Any] = {"file_id": stored.file_id,
                                      "file_unique_id": stored.file_unique_id,
                                      "file_size": stored.file_size}
        if kind == "photo":
            attachment |= {"width": 640, "height": 480}
            content: dict[str, Any] = {"photo": [attachment]}
        else:
            if kind in ("voice", "audio"):
                attachment["duration"] = int(params.get("duration", 0))
            if kind in ("audio", "document"):
                attachment["file_name"] = filename
            attachment["mime_type"] = mime
            content = {kind: attachment}
        if caption := params.get("caption"):
            content["caption"] = caption
        return self._bot_message(params, content)


async def read_params(request: web.Request) -> tuple[dict[str, Any], dict[str, UploadedFile]]:
    """A request's parameters, sent as a query string, JSON, urlencoded or multipart form.

    Form values arrive as strings (objects JSON-encoded, as the Bot API expects); they are
    decoded into the types the JSON form would carry. Uploaded files keep their bytes, under
    the parameter that names them (directly or through attach://<name>).
    """
    raw: dict[str, Any] = dict(request.query)
    uploads: dict[str, UploadedFile] = {}
    if request.content_type == "application/json":
        body = await request.json()
        if isinstance(body, dict):
            raw |= body
    elif request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = await request.post()
        for name, value in form.items():
            if isinstance(value, web.FileField):
                uploads[name] = UploadedFile(value.filename, value.content_type,
                                             value.file.read())
            else:
                text = value if isinstance(value, str) else bytes(value).decode()
                raw[name] = coerce_param(name, text)
    params: dict[str, Any] = {}
    files: dict[str, UploadedFile] = {}
    for name, value in raw.items():
        if isinstance(value, str) and value.startswith("attach://"):
            attached = uploads.pop(value.removeprefix("attach://"), None)
            if attached is not None:
                files[name] = attached
                continue
        params[name] = value
    files |= uploads
    return params, files


def coerce_param(name: str, value: str) -> Any:
    """A form field's string as the value it stands for (int, bool, JSON object or list)."""
    if name in JSON_PARAMS:
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    if name in INT_PARAMS or name == "chat_id":
        try:
            return int(value)
        except ValueError:
            return value  # "@channelname" is a valid chat_id
    if name in BOOL_PARAMS:
        return value.lower() in ("true", "1")
    return value
