"""Telegram: turns Bot API updates into bot.commands Messages and Replies into Bot API calls.

Long polling by default; with SINGSONG_TELEGRAM_WEBHOOK_URL set, Telegram POSTs updates to
`on_webhook` (mounted by the web app at POST /telegram/webhook) instead. Bots may download at
most 20 MB, so a bigger clip is answered with `bot.commands.too_large` and never fetched.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import re
from collections.abc import Awaitable, Callable
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import quote

from aiohttp import web
from telegram import (
    Audio,
    BotCommand,
    Document,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputFile,
    ReplyParameters,
    Update,
    User,
    Video,
    VideoNote,
    Voice,
)
from telegram import Message as TelegramMessage
from telegram.constants import ChatAction, ChatType, MessageEntityType
from telegram.error import BadRequest, Forbidden, TelegramError
from telegram.ext import (
    AIORateLimiter,
    Application,
    CallbackQueryHandler,
    ContextTypes,
    MessageHandler,
    TypeHandler,
    filters,
)

from bot.commands import (
    MENU,
    NOT_AUDIO,
    SOMETHING_WENT_WRONG,
    SONG_KINDS,
    Button,
    Clip,
    Commands,
    FileOut,
    Message,
    Person,
    Place,
    Reply,
    Target,
    too_large,
)
from bot.config import Settings
from bot.inbox import UNHANDLED_AFTER_S, sweep_forever
from bot.outages import is_outage

log = logging.getLogger("singsong.telegram")

PLATFORM = "telegram"
DOWNLOAD_LIMIT_BYTES = 20 * 1024 * 1024  # getFile serves bots at most this much
DOWNLOAD_TIMEOUT_S = 60.0
CAPTION_LIMIT = 1024
TEXT_LIMIT = 4096
CHAT_ACTION_EVERY_S = 4.0  # an action shows for 5 s: repeat it before it fades
PROGRESS_CAP_S = 300.0  # stop showing progress for a job that never answers
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
WEBHOOK_OUTAGE_S = 20.0  # a webhook update waits this long for the database, then gets a 503
ALLOWED_UPDATES = [Update.MESSAGE, Update.CALLBACK_QUERY]
AUDIO_EXTENSIONS = frozenset({".ogg", ".oga", ".opus", ".mp3", ".m4a", ".aac", ".wav", ".flac",
                              ".webm", ".wma", ".amr", ".aiff", ".aif", ".mka"})
# Loggers that can show the token (request URLs hold it: .../bot<token>/sendVoice).
REDACTED_LOGGERS = ("httpx", "telegram.Bot", "telegram.ext.ExtBot", "telegram.ext.Updater",
                    "telegram.ext.Application", "telegram.ext.AIORateLimiter", log.name)
CHOICE_VERBS = ("forget", "style")  # their answer replaces the question and its buttons

Attachment = Voice | Audio | VideoNote | Video | Document


class KeptUpdates(asyncio.Queue[object]):
    """The application's update queue, which the Updater fills while polling: an update is
    kept in the inbox before it is queued, and the Updater asks for the next updates (which
    confirms these to Telegram) only once the last one is queued. So an update is in the
    database before Telegram forgets it."""

    def __init__(self, keep: Callable[[Update], Awaitable[bool]]) -> None:
        super().__init__()
        self._keep = keep

    async def put(self, item: object) -> None:
        if isinstance(item, Update) and not await self._keep(item):
            return  # handled already (a redelivery), or under way
        await super().put(item)

    async def put_kept(self, update: Update) -> None:
        """Queue an update that is in the inbox already."""
        await super().put(update)


class TelegramAdapter:
    """The Outbox for Telegram, and the handlers that feed commands from it.

    The caller attaches it to the commands (`commands.attach("telegram", adapter)`) after
    `start()`, as `bot.service.serve` does.
    """

    def __init__(self, commands: Commands, settings: Settings) -> None:
        if settings.telegram_token is None:
            raise ValueError("the Telegram adapter needs SINGSONG_TELEGRAM_TOKEN")
        token = settings.telegram_token.get_secret_value()
        self.commands = commands
        self.webhook_url = settings.telegram_webhook_url
        self._webhook_secret = webhook_secret(settings)
        self._redactor = TokenRedactor(token)
        for name in REDACTED_LOGGERS:
            logging.getLogger(name).addFilter(self._redactor)
        self._under_way: set[str] = set()  # keys of the updates kept and not yet handled
        self._updates = KeptUpdates(self._keep_polled)
        builder = (Application.builder().token(token).update_queue(self._updates)
                   .base_url(settings.telegram_base_url)
                   .base_file_url(settings.telegram_base_file_url)
                   .rate_limiter(AIORateLimiter(max_retries=3))
                   .concurrent_updates(16))
        if self.webhook_url:
            builder = builder.updater(None)
        self.application: Application[Any, Any, Any, Any, Any, Any] = builder.build()
        self.application.add_handler(MessageHandler(filters.UpdateType.MESSAGE,
                                                    self._on_message))
        self.application.add_handler(CallbackQueryHandler(self._on_press))
        # After the handlers above (group 0), whether they succeeded or failed.
        self.application.add_handler(TypeHandler(Update, self._on_handled), group=1)
        self.application.add_error_handler(self._on_error)
        self._progress: set[asyncio.Task[None]] = set()
        self._sweep: asyncio.Task[None] | None = None
        self._running = False

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect (getMe), then poll for updates or register the webhook."""
        await self.application.initialize()
        with contextlib.suppress(TelegramError):  # the menu is a nicety, not a must
            await self.application.bot.set_my_commands(
                [BotCommand(command.name, command.summary) for command in MENU])
        await self.application.start()
        self._running = True  # from here updates are processed (and on_webhook takes them)
        await self._take_up_unhandled(0.0)  # what a stopped process kept and did not handle
        self._sweep = asyncio.create_task(sweep_forever(self._take_up_unhandled, PLATFORM),
                                          name="telegram-inbox")
        if self.webhook_url:
            await self.application.bot.set_webhook(self.webhook_url,
                                                   secret_token=self._webhook_secret,
                                                   allowed_updates=ALLOWED_UPDATES)
        elif self.application.updater is not None:
            await self.application.updater.start_polling(allowed_updates=ALLOWED_UPDATES)
        log.info("Telegram adapter started as @%s (%s)", self.application.bot.username,
                 "webhook" if self.webhook_url else "long polling")

    async def stop(self) -> None:
        """Stop taking updates and close the connection; the webhook stays registered, so
        Telegram keeps what arrives meanwhile for the next start."""
        self._running = False
        if self._sweep is not None:
            self._sweep.cancel()
            await asyncio.gather(self._sweep, return_exceptions=True)
        updater = self.application.updater
        if updater is not None and updater.running:
            await updater.stop()
        if self.application.running:
            await self.application.stop()
        for task in list(self._progress):
            task.cancel()
        await asyncio.gather(*self._progress, return_exceptions=True)
        await self.application.shutdown()
        for name in REDACTED_LOGGERS:
            logging.getLogger(name).removeFilter(self._redactor)

    # -- Outbox ---------------------------------------------------------------------------

    async def deliver(self, target: Target, reply: Reply) -> None:
        """Send a finished job's reply, in reply to the message that asked for it."""
        if not self._running:
            raise RuntimeError("the Telegram adapter is not running")
        try:
            await self._send(int(target.chat_id), reply, target.reply_to.get("message_id"))
        except Forbidden as refused:  # blocked or removed: trying again later cannot help
            log.info("chat %s no longer takes messages from the bot: %s", target.chat_id,
                     refused.message)

    # -- webhook --------------------------------------------------------------------------

    async def on_webhook(self, request: web.Request) -> web.Response:
        """POST /telegram/webhook: one update from Telegram, signed with the secret token."""
        given = request.headers.get(SECRET_HEADER, "")
        if not hmac.compare_digest(given.encode(), self._webhook_secret.encode()):
            return web.Response(status=403, text="wrong secret token")
        if not self._running:
            return web.Response(status=503, text="not running")  # Telegram tries again later
        try:
            data = await request.json()
            update = Update.de_json(data, self.application.bot)
        except (ValueError, TypeError, KeyError):
            return web.Response(status=400, text="not a Telegram update")
        if update is None:
            return web.Response(status=400, text="not a Telegram update")
        try:
            new = await self._keep(update, data, outage_s=WEBHOOK_OUTAGE_S)
        except Exception as error:
            if not is_outage(error):
                raise
            # Not stored: Telegram sends it again later.
            return web.Response(status=503, text="try again later")
        if new:
            await self._updates.put_kept(update)
        return web.Response(text="ok")

    # -- the inbox ------------------------------------------------------------------------

    async def _keep(self, update: Update, payload: dict[str, Any] | None = None, *,
                    outage_s: float) -> bool:
        """Keep the update in the inbox; False when it needs nothing more (handled before,
        or under way here)."""
        key = update_key(update.update_id)
        if key in self._under_way:
            return False
        user = update.effective_user
        payload = payload if payload is not None else json.loads(update.to_json())
        new = await self.commands.inbox.keep(PLATFORM, key, str(user.id) if user else "",
                                             payload, outage_s=outage_s)
        if new:
            self._under_way.add(key)
        return new

    async def _keep_polled(self, update: Update) -> bool:
        """While polling: keep the update, however long the database is away (the Updater
        waits, and Telegram keeps the updates it did not confirm for a day)."""
        while True:
            try:
                return await self._keep(update, outage_s=UNHANDLED_AFTER_S)
            except Exception as error:
                if not is_outage(error):
                    log.exception("keeping Telegram update %s failed; handling it unkept",
                                  update.update_id)
                    return True
                log.error("the database is still away: Telegram update %s waits for it",
                          update.update_id)

    async def _on_handled(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        key = update_key(update.update_id)
        await self.commands.inbox.handled(key)
        self._under_way.discard(key)

    async def _take_up_unhandled(self, older_than_s: float) -> None:
        """Handle again the updates kept but not handled (by a stopped process, or dropped
        when the database went away mid-way), except those under way here."""
        for key, payload in await self.commands.inbox.unhandled(PLATFORM, older_than_s):
            if key in self._under_way:
                continue
            update = Update.de_json(payload, self.application.bot)
            if update is None:
                continue
            log.info("handling Telegram update %s, kept but not handled", update.update_id)
            self._under_way.add(key)
            await self._updates.put_kept(update)

    # -- incoming messages ----------------------------------------------------------------

    async def _on_message(self, update: Update,
                          context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.message
        if message is None or message.from_user is None:
            return
        command, text = self._command_and_text(message)
        private = message.chat.type == ChatType.PRIVATE
        attachment = audio_attachment(message)
        replied = message.reply_to_message
        if attachment is None and replied is not None and (
                command == "piano" or (command == "sing" and not text)):
            attachment = audio_attachment(replied)
        if command is None and attachment is None:
            if message.document is not None:
                await self._send(message.chat_id, Reply(NOT_AUDIO), message.message_id)
                return
            if not private:
                return  # chatter in a group is not for us
        clip: Clip | None = None
        if attachment is not None:
            size = attachment.file_size
            if size is not None and size > self._download_limit:
                await self._send(message.chat_id,
                                 too_large(size, self._download_limit),
                                 message.message_id)
                return
            try:
                clip = await self._download(attachment)
            except BadRequest as refused:
                if "too big" not in str(refused).lower():
                    raise
                await self._send(message.chat_id, too_large(
                    size or self._download_limit + 1, self._download_limit), message.message_id)
                return
        reply = await self.commands.handle(Message(
            person=person_of(message.from_user),
            place=Place(PLATFORM, str(message.chat_id), private=private),
            message_id=str(message.message_id), command=command, text=text, clip=clip,
            reply_to={"message_id": message.message_id},
            replying_to=str(replied.message_id) if replied is not None else None))
        await self._answer(message.chat_id, reply, message.message_id)

    def _command_and_text(self, message: TelegramMessage) -> tuple[str | None, str]:
        """("melody", "A minor") for "/melody@this_bot A minor"; (None, text) for the rest.

        A command addressed to another bot (/sing@other_bot) counts as plain text.
        """
        text = message.text or message.caption or ""
        entities = message.entities or message.caption_entities
        first = entities[0] if entities else None
        if first is None or first.type != MessageEntityType.BOT_COMMAND or first.offset != 0:
            return None, text
        word = message.parse_entity(first) if message.text else message.parse_caption_entity(
            first)
        name, _, addressee = word[1:].partition("@")
        username = self.application.bot.username or ""
        if addressee and addressee.lower() != username.lower():
            return None, text
        return name.lower(), text[len(word):].strip()

    @property
    def _download_limit(self) -> int:
        return min(DOWNLOAD_LIMIT_BYTES, self.commands.MAX_CLIP_BYTES)

    async def _download(self, attachment: Attachment) -> Clip:
        file = await attachment.get_file()
        data = bytes(await file.download_as_bytearray(read_timeout=DOWNLOAD_TIMEOUT_S))
        return Clip(data, clip_filename(attachment))

    # -- button presses -------------------------------------------------------------------

    async def _on_press(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        if query is None:
            return
        with contextlib.suppress(BadRequest):  # a press too old to answer is still served
            await query.answer()  # at once: the button stops spinning
        asked = query.message
        if not query.data or not isinstance(asked, TelegramMessage):
            return
        reply = await self.commands.press(
            person_of(query.from_user),
            Place(PLATFORM, str(asked.chat_id), private=asked.chat.type == ChatType.PRIVATE),
            query.data, query.id, {"message_id": asked.message_id})
        if query.data.partition(":")[0] in CHOICE_VERBS and not (reply.voice or reply.files):
            await query.edit_message_text(reply.text[:TEXT_LIMIT],
                                          reply_markup=keyboard(reply.buttons))
            return
        await self._answer(asked.chat_id, reply, asked.message_id)

    # -- replies --------------------------------------------------------------------------

    async def _answer(self, chat_id: int, reply: Reply, reply_to: int | None) -> None:
        """Send a Reply now; when it started a job, show progress until the job answered.
        A message seen before (its job exists) gets nothing new."""
        if reply.redelivered:
            return
        await self._send(chat_id, reply, reply_to)
        if reply.job_id is not None:
            action = (ChatAction.RECORD_VOICE if reply.job_kind in SONG_KINDS
                      else ChatAction.UPLOAD_VOICE)
            task = asyncio.create_task(self._show_progress(chat_id, reply.job_id, action))
            self._progress.add(task)
            task.add_done_callback(self._progress.discard)

    async def _send(self, chat_id: int, reply: Reply, reply_to: int | None) -> None:
        """A Reply as Bot API messages: the voice note carries the text and the buttons;
        without one, the first file does; without files, a text message. A group song's
        invitation is remembered as the message it became (answers to it join)."""
        sent = await self._sent_messages(chat_id, reply, reply_to)
        if reply.gathering_id is not None and sent:
            await self.commands.together.invited(reply.gathering_id, str(sent[0]))

    async def _sent_messages(self, chat_id: int, reply: Reply,
                             reply_to: int | None) -> list[int]:
        bot = self.application.bot
        sent: list[TelegramMessage] = []
        replying = (ReplyParameters(reply_to, allow_sending_without_reply=True)
                    if reply_to is not None else None)
        markup = keyboard(reply.buttons)
        text = reply.text.strip()
        if len(text) > CAPTION_LIMIT and (reply.voice or reply.files):
            sent.append(await bot.send_message(chat_id, text[:TEXT_LIMIT],
                                               reply_parameters=replying))
            text = ""
        if reply.voice is not None:
            sent.append(await bot.send_voice(chat_id, as_input_file(reply.voice),
                                             caption=text or None, reply_markup=markup,
                                             reply_parameters=replying))
            text, markup = "", None
        elif not reply.files and text:
            sent.append(await bot.send_message(chat_id, text[:TEXT_LIMIT], reply_markup=markup,
                                               reply_parameters=replying))
        for out in reply.files:
            if out.mime == "audio/mpeg":
                sent.append(await bot.send_audio(chat_id, as_input_file(out),
                                                 caption=text or None, reply_markup=markup,
                                                 reply_parameters=replying))
            else:
                sent.append(await bot.send_document(chat_id, as_input_file(out),
                                                    caption=text or None, reply_markup=markup,
                                                    reply_parameters=replying))
            text, markup = "", None
        return [message.message_id for message in sent]

    async def _show_progress(self, chat_id: int, job_id: int, action: str) -> None:
        answered = asyncio.create_task(self.commands.answered(job_id))
        try:
            async with asyncio.timeout(PROGRESS_CAP_S):
                while not answered.done():
                    try:
                        await self.application.bot.send_chat_action(chat_id, action)
                    except TelegramError as failed:
                        log.debug("chat action for job %d not shown: %s", job_id,
                                  type(failed).__name__)
                    await asyncio.wait({answered}, timeout=CHAT_ACTION_EVERY_S)
        except TimeoutError:
            log.warning("job %d still unanswered after %.0f s: no more progress shown", job_id,
                        PROGRESS_CAP_S)
        finally:
            answered.cancel()

    # -- errors ---------------------------------------------------------------------------

    async def _on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Every exception from a handler: logged with its traceback (the token redacted),
        and the person, when there is one, hears that something went wrong, in reply to the
        message it went wrong with."""
        update_id = update.update_id if isinstance(update, Update) else None
        log.error("handling Telegram update %s failed", update_id, exc_info=context.error)
        chat = update.effective_chat if isinstance(update, Update) else None
        if chat is None or not self._running:
            return
        message = update.effective_message if isinstance(update, Update) else None
        replying = (ReplyParameters(message.message_id, allow_sending_without_reply=True)
                    if message is not None else None)
        try:
            await self.application.bot.send_message(chat.id, SOMETHING_WENT_WRONG,
                                                    reply_parameters=replying)
        except TelegramError as failed:
            log.warning("could not tell chat %s about the error: %s", chat.id,
                        type(failed).__name__)


def update_key(update_id: int) -> str:
    """The inbox key of an update (update ids are unique per bot)."""
    return f"{PLATFORM}:update:{update_id}"


def person_of(user: User) -> Person:
    """Who wrote, with the language of their Telegram app ("pt-br"; absent for some)."""
    return Person(PLATFORM, str(user.id), user.full_name, language=user.language_code)


def audio_attachment(message: TelegramMessage) -> Attachment | None:
    """The audio a message carries: a voice note, an audio file, a video note or video (their
    sound), or a document that is audio by its MIME type or file name."""
    if message.voice or message.audio or message.video_note or message.video:
        return message.voice or message.audio or message.video_note or message.video
    document = message.document
    if document is not None and is_audio_document(document.mime_type, document.file_name):
        return document
    return None


def is_audio_document(mime_type: str | None, file_name: str | None) -> bool:
    if mime_type and mime_type.startswith("audio/"):
        return True
    return PurePosixPath((file_name or "").lower()).suffix in AUDIO_EXTENSIONS


def clip_filename(attachment: Attachment) -> str:
    """A file name whose extension tells the decoder what it holds."""
    if isinstance(attachment, Voice):
        return "voice.ogg"
    if isinstance(attachment, VideoNote):
        return "video_note.mp4"
    name = getattr(attachment, "file_name", None)
    if name:
        return str(PurePosixPath(name).name)
    return "video.mp4" if isinstance(attachment, Video) else "audio"


def keyboard(buttons: tuple[Button, ...]) -> InlineKeyboardMarkup | None:
    """Buttons as an inline keyboard, two to a row; their actions are the callback data."""
    if not buttons:
        return None
    keys = [InlineKeyboardButton(button.label, callback_data=button.action)
            for button in buttons]
    return InlineKeyboardMarkup([keys[row:row + 2] for row in range(0, len(keys), 2)])


def as_input_file(out: FileOut) -> InputFile:
    return InputFile(out.data, filename=out.filename)


def webhook_secret(settings: Settings) -> str:
    """The configured secret, else one derived from the token (stable across restarts and
    processes; Telegram allows A-Z, a-z, 0-9, _ and -)."""
    if settings.telegram_webhook_secret is not None:
        return settings.telegram_webhook_secret.get_secret_value()
    token = settings.telegram_token.get_secret_value() if settings.telegram_token else ""
    return hashlib.sha256(b"singsong-webhook:" + token.encode()).hexdigest()


class TokenRedactor(logging.Filter):
    """Replaces the bot token in a record's message and traceback before any handler sees it.
    Case-blind: python-telegram-bot capitalises error texts, which lowercases a token in them."""

    def __init__(self, token: str) -> None:
        super().__init__()
        # As it is, and as it appears in a URL (the file download URL quotes its colon).
        forms = sorted({token, quote(token, safe="")}, key=len, reverse=True)
        self.pattern = re.compile("|".join(re.escape(form) for form in forms), re.IGNORECASE)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if record.exc_info:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
            record.exc_info = None
        if self.pattern.search(message):
            record.msg, record.args = self.pattern.sub("<token>", message), None
        if record.exc_text:
            record.exc_text = self.pattern.sub("<token>", record.exc_text)
        return True
