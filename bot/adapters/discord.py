"""Discord: discord.py's client, slash commands and buttons, translated to and from
bot.commands.

Voice messages and audio files (in DMs and servers) are sung; plain text in a DM is sung as
lyrics; slash commands are deferred at once and answered with follow-ups. A finished job's
song goes out through the interaction's webhook while its token is valid, else as a reply in
the channel. Buttons carry "singsong:<action>" and are dispatched by that prefix, so they
work after a restart too.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import io
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any, Literal

import discord
import yarl
from discord import app_commands

from bot.commands import (
    MENU,
    NOT_AUDIO,
    SOMETHING_WENT_WRONG,
    Argument,
    Button,
    Clip,
    Command,
    Commands,
    Message,
    Person,
    Place,
    Reply,
    Target,
    too_large,
)
from bot.config import Settings
from bot.inbox import sweep_forever

log = logging.getLogger("singsong.discord")

PLATFORM = "discord"
CUSTOM_ID_PREFIX = "singsong:"
DEFAULT_UPLOAD_LIMIT = 10 * 1024 * 1024  # bytes: Discord's attachment limit without boosts
TOKEN_LIFETIME_S = 15 * 60 - 60  # an interaction token lasts 15 minutes; keep a margin
MESSAGE_LIMIT = 2000  # characters in one message
BUTTONS_PER_MESSAGE = 25
READY_TIMEOUT_S = 60.0
PROGRESS_LIMIT_S = 15 * 60.0  # the typing indicator stops after this even without an answer
AUDIO_SUFFIXES = (".ogg", ".oga", ".opus", ".mp3", ".m4a", ".aac", ".wav", ".flac", ".webm",
                  ".mp4")
COULD_NOT_DOWNLOAD = "I could not download that file from Discord. Please send it again."


class _SingSongClient(discord.Client):
    """The client, holding what a button press calls (buttons are rebuilt per press)."""

    def __init__(self, *, on_press: Callable[[discord.Interaction, str], Awaitable[None]],
                 guild_ready_timeout_s: float) -> None:
        intents = discord.Intents.none()
        intents.guilds = True
        intents.guild_messages = True
        intents.dm_messages = True
        intents.message_content = True
        super().__init__(intents=intents, guild_ready_timeout=guild_ready_timeout_s,
                         max_messages=None)
        self.on_press = on_press


class PressButton(discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]],
                  template=r"^singsong:(?P<action>[\x21-\x7e]{1,64})$"):
    """A SingSong button: its custom_id is "singsong:" + the action of bot.commands.Button."""

    def __init__(self, label: str, action: str) -> None:
        super().__init__(discord.ui.Button(label=label, custom_id=CUSTOM_ID_PREFIX + action,
                                           style=discord.ButtonStyle.secondary))
        self.action = action

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction, item: discord.ui.Item[Any],
                             match: Any, /) -> PressButton:
        label = item.label if isinstance(item, discord.ui.Button) else None
        return cls(label or "", str(match["action"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        client = interaction.client
        if isinstance(client, _SingSongClient):
            await client.on_press(interaction, self.action)


class DiscordAdapter:
    """The Outbox for Discord, and the translation of its events into bot.commands."""

    def __init__(self, commands: Commands, settings: Settings, *,
                 guild_ready_timeout_s: float = 2.0) -> None:
        if settings.discord_token is None:
            raise ValueError("SINGSONG_DISCORD_TOKEN is not set")
        self.commands, self.settings = commands, settings
        self.client = _SingSongClient(on_press=self._on_press,
                                      guild_ready_timeout_s=guild_ready_timeout_s)
        self.tree = app_commands.CommandTree(self.client)
        self._add_slash_commands()
        self.client.add_dynamic_items(PressButton)
        self.client.event(self.on_message)
        self._login_lock = asyncio.Lock()
        self._logged_in = False
        self._stopped = False
        self._connection: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[None]] = set()
        self._under_way: set[str] = set()  # inbox keys of the messages being handled

    # --- Lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Log in, sync the slash commands, connect to the gateway; return once ready."""
        await self._login()
        _shards, gateway_url, _limits = await self.client.http.get_bot_gateway()
        # Where to connect is what Discord says (a test's fake says its own address). This
        # sets a class attribute for the whole process, and cannot be scoped to this client:
        # discord.py's Client.connect makes its websocket through the module's
        # DiscordWebSocket class and reads the address from DEFAULT_GATEWAY (also after an
        # invalidated session), with no parameter of the client's; a subclass would mean
        # copying connect(). It is harmless: every client of one process asks the same
        # Discord, which gives every bot the same gateway, and a process runs one adapter.
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway_url)
        await self.tree.sync()
        self._connection = asyncio.create_task(self.client.connect(), name="discord-gateway")
        ready = asyncio.create_task(self.client.wait_until_ready())
        done, _ = await asyncio.wait({ready, self._connection}, timeout=READY_TIMEOUT_S,
                                     return_when=asyncio.FIRST_COMPLETED)
        if ready not in done:
            ready.cancel()
            if self._connection in done:
                self._connection.result()  # raises why the connection ended
            raise TimeoutError(f"Discord was not ready within {READY_TIMEOUT_S:.0f} s")
        log.info("discord: connected as %s", self.client.user)
        channel_id = self.settings.discord_album_channel_id
        if channel_id is not None:  # the weekly album is posted there
            await self.commands.subscribe(Place(PLATFORM, str(channel_id), private=False))
        await self._take_up_unhandled(0.0)  # what a stopped process kept and did not handle
        self._in_background(sweep_forever(self._take_up_unhandled, PLATFORM))

    async def stop(self) -> None:
        self._stopped = True
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        await self.client.close()
        if self._connection is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(10):
                    await self._connection

    async def _login(self) -> None:
        """Log in over REST (no gateway yet): enough to deliver owed replies before start."""
        async with self._login_lock:
            if self._stopped:
                raise RuntimeError("the Discord adapter is stopped")
            if self._logged_in:
                return
            discord.http.Route.BASE = self.settings.discord_api_base.rstrip("/")
            assert self.settings.discord_token is not None
            await self.client.login(self.settings.discord_token.get_secret_value())
            self._logged_in = True

    # --- Outbox ---------------------------------------------------------------------------

    async def deliver(self, target: Target, reply: Reply) -> None:
        """A finished job's reply: a follow-up on the interaction while its token lasts,
        otherwise (or when that fails) a message in the channel."""
        await self._login()
        reply_to = target.reply_to
        limit = int(reply_to.get("upload_limit") or DEFAULT_UPLOAD_LIMIT)
        token, application_id = reply_to.get("token"), reply_to.get("application_id")
        if token and application_id and float(reply_to.get("expires_at", 0)) > time.time():
            webhook = discord.Webhook.partial(int(application_id), str(token),
                                              client=self.client)
            try:
                await self._send(webhook.send, reply, limit, wait=True)
                return
            except discord.HTTPException as failure:
                log.warning("discord: follow-up failed (%s %s), posting in the channel",
                            failure.status, failure.code)
        channel = self.client.get_partial_messageable(int(target.chat_id))
        reference = None
        if reply_to.get("message_id"):
            reference = discord.MessageReference(message_id=int(reply_to["message_id"]),
                                                 channel_id=int(target.chat_id),
                                                 fail_if_not_exists=False)
        await self._send(channel.send, reply, limit, reference=reference)

    # --- Messages -------------------------------------------------------------------------

    async def on_message(self, message: discord.Message) -> None:
        """A gateway message: kept in the inbox before anything is said to the person, then
        handled; one handled before (a redelivery) gets nothing new."""
        if message.author.bot:  # our own messages, and other bots'
            return
        private = message.guild is None
        audio = next((a for a in message.attachments if _is_audio(a)), None)
        if audio is None and not private:
            return  # in a server: slash commands and audio only
        key = message_key(message.channel.id, message.id)
        if key in self._under_way:
            return
        self._under_way.add(key)
        try:
            if await self._keep(key, message):
                await self._handle_message(message, private, audio)
                await self.commands.inbox.handled(key)
        finally:
            self._under_way.discard(key)

    async def _keep(self, key: str, message: discord.Message) -> bool:
        """Keep the message in the inbox; False when it was handled before. When the database
        stays away past the bound, the person hears so (in reply) and it is not handled."""
        try:
            return await self.commands.inbox.keep(
                PLATFORM, key, str(message.author.id),
                {"channel_id": str(message.channel.id), "message_id": str(message.id)})
        except Exception:
            log.exception("discord: message %s could not be kept", message.id)
            with contextlib.suppress(discord.HTTPException):
                await self._answer_message(message, Reply(SOMETHING_WENT_WRONG))
            return False

    async def _handle_message(self, message: discord.Message, private: bool,
                              audio: discord.Attachment | None) -> None:
        command, text = _typed_command(message.content)
        try:
            if audio is None and message.attachments and command is None:
                await self._answer_message(message, Reply(NOT_AUDIO))
                return
            clip: Clip | None = None
            if audio is not None:
                clip = await self._clip(audio, _replying(message))
                if clip is None:
                    return
            reply_to = {"message_id": str(message.id),
                        "upload_limit": _upload_limit(message.guild)}
            answered = message.reference.message_id if message.reference else None
            request = Message(_person(message.author), _place(message.channel, private),
                              str(message.id), command=command, text=text, clip=clip,
                              reply_to=reply_to,
                              replying_to=str(answered) if answered is not None else None)
            reply = await self.commands.handle(request)
            await self._answer_message(message, reply)
        except Exception:
            log.exception("discord: message %s from %s failed", message.id, message.author.id)
            with contextlib.suppress(discord.HTTPException):
                await self._answer_message(message, Reply(SOMETHING_WENT_WRONG))

    async def _take_up_unhandled(self, older_than_s: float) -> None:
        """Handle again the messages kept but not handled (by a stopped process, or left when
        the database went away mid-way), fetched from Discord again."""
        for key, payload in await self.commands.inbox.unhandled(PLATFORM, older_than_s):
            if key in self._under_way:
                continue
            try:
                channel = await self.client.fetch_channel(int(payload["channel_id"]))
                assert isinstance(channel, discord.abc.Messageable)
                message = await channel.fetch_message(int(payload["message_id"]))
            except (discord.NotFound, discord.Forbidden):
                log.info("discord: %s is gone: not handled", key)
                await self.commands.inbox.handled(key)
                continue
            log.info("discord: handling %s, kept but not handled", key)
            await self.on_message(message)

    async def _answer_message(self, message: discord.Message, reply: Reply) -> None:
        """Answer a message; a message seen before (its job exists) gets nothing new."""
        if reply.redelivered:
            return
        await self._send(_replying(message), reply, _upload_limit(message.guild))
        if reply.job_id is not None:
            self._in_background(self._typing_until_answered(message.channel, reply.job_id))

    async def _typing_until_answered(self, channel: discord.abc.Messageable,
                                     job_id: int) -> None:
        """Discord's typing indicator, repeated by discord.py, until the song is sent."""
        with contextlib.suppress(TimeoutError, discord.HTTPException):
            async with asyncio.timeout(PROGRESS_LIMIT_S), channel.typing():
                await self.commands.answered(job_id)

    # --- Slash commands -------------------------------------------------------------------

    def _add_slash_commands(self) -> None:
        tree = self.tree
        for command in MENU:
            tree.add_command(self._slash_command(command))

        @tree.error
        async def failed(interaction: discord.Interaction,
                         error: app_commands.AppCommandError) -> None:
            log.error("discord: slash command failed", exc_info=error)
            with contextlib.suppress(discord.HTTPException):
                if interaction.response.is_done():
                    await interaction.followup.send(SOMETHING_WENT_WRONG)
                else:
                    await interaction.response.send_message(SOMETHING_WENT_WRONG)

    def _slash_command(self, command: Command) -> app_commands.Command[Any, ..., None]:
        """A registry command as a slash command: discord.py reads a command's options from
        its callback's signature, so the one callback gets a signature made from the
        command's arguments, and passes what it is given on as the command's words."""

        async def callback(interaction: discord.Interaction, **given: Any) -> None:
            audio = next((value for value in given.values()
                          if isinstance(value, discord.Attachment)), None)
            words = [str(given[argument.name]) for argument in command.arguments
                     if argument.type != "audio" and given.get(argument.name) is not None]
            await self._on_slash(interaction, command.name, " ".join(words), audio)

        callback.__signature__ = inspect.Signature([  # type: ignore[attr-defined]
            inspect.Parameter("interaction", inspect.Parameter.POSITIONAL_OR_KEYWORD,
                              annotation=discord.Interaction),
            *(_slash_option(argument) for argument in command.arguments)])
        described = {argument.name: argument.description for argument in command.arguments
                     if argument.description}
        if described:
            app_commands.describe(**described)(callback)
        return app_commands.Command(name=command.name, description=command.summary,
                                    callback=callback)

    async def _on_slash(self, interaction: discord.Interaction, command: str, text: str = "",
                        attachment: discord.Attachment | None = None) -> None:
        """Defer at once (Discord wants an answer within 3 s), then answer in follow-ups."""
        await interaction.response.defer(thinking=True)
        limit = interaction.filesize_limit
        try:
            clip: Clip | None = None
            if attachment is not None:
                clip = await self._clip(attachment, interaction.followup.send)
                if clip is None:
                    return
            request = Message(_interaction_person(interaction),
                              _interaction_place(interaction),
                              str(interaction.id), command=command, text=text, clip=clip,
                              reply_to=_interaction_reply_to(interaction))
            reply = await self.commands.handle(request)
            await self._send(interaction.followup.send, reply, limit)
        except Exception:
            log.exception("discord: /%s from %s failed", command, interaction.user.id)
            with contextlib.suppress(discord.HTTPException):
                await self._send(interaction.followup.send, Reply(SOMETHING_WENT_WRONG), limit)

    # --- Buttons --------------------------------------------------------------------------

    async def _on_press(self, interaction: discord.Interaction, action: str) -> None:
        """A press: acknowledge within 3 s, then the answer as a follow-up."""
        await interaction.response.defer()
        limit = interaction.filesize_limit
        try:
            reply = await self.commands.press(_interaction_person(interaction),
                                              _interaction_place(interaction), action,
                                              str(interaction.id),
                                              _interaction_reply_to(interaction))
            await self._send(interaction.followup.send, reply, limit)
        except Exception:
            log.exception("discord: button %s from %s failed", action, interaction.user.id)
            with contextlib.suppress(discord.HTTPException):
                await self._send(interaction.followup.send, Reply(SOMETHING_WENT_WRONG), limit)

    # --- Sending --------------------------------------------------------------------------

    async def _send(self, send: Callable[..., Awaitable[Any]], reply: Reply, limit: int,
                    **options: Any) -> None:
        """Send a Reply through a channel's, message's or webhook's send(): its text, the
        files that fit under the upload limit, and its buttons."""
        text, files = _fit_files(reply, limit)
        view = _view(reply.buttons)
        arguments: dict[str, Any] = {"content": text[:MESSAGE_LIMIT]}
        if files:
            arguments["files"] = [discord.File(io.BytesIO(data), filename=name)
                                  for name, data in files]
        if view is not None:
            arguments["view"] = view
        sent = await send(**arguments, **options)
        if reply.gathering_id is not None and isinstance(sent, discord.Message):
            await self.commands.together.invited(reply.gathering_id, str(sent.id))

    async def _clip(self, attachment: discord.Attachment,
                    answer: Callable[..., Awaitable[Any]]) -> Clip | None:
        """The attachment's bytes; or None, having told the person why not (not audio, too
        large to take, or the download failed)."""
        refusal: Reply | None = None
        if not _is_audio(attachment):
            refusal = Reply(NOT_AUDIO)
        elif attachment.size > self.commands.MAX_CLIP_BYTES:
            refusal = too_large(attachment.size, self.commands.MAX_CLIP_BYTES)
        else:
            try:
                return Clip(await attachment.read(), attachment.filename)
            except discord.HTTPException as failure:
                log.warning("discord: downloading attachment %s failed: %s", attachment.id,
                            failure)
                refusal = Reply(COULD_NOT_DOWNLOAD)
        await self._send(answer, refusal, DEFAULT_UPLOAD_LIMIT)
        return None

    def _in_background(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)


def message_key(channel_id: int, message_id: int) -> str:
    """The inbox key of a gateway message."""
    return f"{PLATFORM}:message:{channel_id}:{message_id}"


def _is_audio(attachment: discord.Attachment) -> bool:
    content_type = (attachment.content_type or "").split(";")[0].strip().lower()
    return (attachment.is_voice_message() or content_type.startswith(("audio/", "video/"))
            or attachment.filename.lower().endswith(AUDIO_SUFFIXES))


def _replying(message: discord.Message) -> Callable[..., Awaitable[Any]]:
    """send() for a reply to `message` (which may be deleted by then)."""
    return functools.partial(message.channel.send,
                             reference=message.to_reference(fail_if_not_exists=False))


def _slash_option(argument: Argument) -> inspect.Parameter:
    """One argument as a slash command option: text, a whole number or a file, or one of
    its choices."""
    annotation: Any = {"text": str, "number": int, "audio": discord.Attachment}[argument.type]
    if argument.choices:
        annotation = Literal[argument.choices]
    if argument.required:
        return inspect.Parameter(argument.name, inspect.Parameter.KEYWORD_ONLY,
                                 annotation=annotation)
    return inspect.Parameter(argument.name, inspect.Parameter.KEYWORD_ONLY,
                             annotation=annotation | None, default=None)


def _typed_command(text: str) -> tuple[str | None, str]:
    """'/melody A minor' typed as plain text -> ("melody", "A minor"); else (None, text)."""
    if not text.startswith("/"):
        return None, text
    word, _, rest = text[1:].partition(" ")
    return word.lower() or None, rest.strip()


def _person(user: discord.User | discord.Member, language: str | None = None) -> Person:
    """Who wrote. A plain message does not say which language their Discord is in: None."""
    return Person(PLATFORM, str(user.id), user.display_name, language=language)


def _interaction_person(interaction: discord.Interaction) -> Person:
    """Who ran a slash command or pressed a button, with their Discord's language ("es-ES",
    the interaction's locale)."""
    return _person(interaction.user, str(interaction.locale.value))


def _place(channel: Any, private: bool) -> Place:
    return Place(PLATFORM, str(channel.id), private=private)


def _interaction_place(interaction: discord.Interaction) -> Place:
    return Place(PLATFORM, str(interaction.channel_id), private=interaction.guild_id is None)


def _interaction_reply_to(interaction: discord.Interaction) -> dict[str, Any]:
    """What a later delivery needs: the webhook (application id + token, valid 15 minutes)
    and the upload limit of this chat."""
    return {"application_id": str(interaction.application_id), "token": interaction.token,
            "expires_at": time.time() + TOKEN_LIFETIME_S,
            "upload_limit": interaction.filesize_limit}


def _upload_limit(guild: discord.Guild | None) -> int:
    return guild.filesize_limit if guild is not None else DEFAULT_UPLOAD_LIMIT


def _fit_files(reply: Reply, limit: int) -> tuple[str, list[tuple[str, bytes]]]:
    """The reply's files that Discord takes here, and its text with a sentence for each file
    left out."""
    text = reply.text
    files: list[tuple[str, bytes]] = []
    for out in (reply.voice, *reply.files):
        if out is None:
            continue
        if len(out.data) > limit:
            text += (f"\n({out.filename} is {len(out.data) / 2**20:.1f} MB, more than the "
                     f"{limit / 2**20:.0f} MB Discord allows here, so I left it out.)")
            continue
        files.append((out.filename, out.data))
    return text, files


def _view(buttons: Sequence[Button]) -> discord.ui.View | None:
    if not buttons:
        return None
    view = discord.ui.View(timeout=None)
    for button in buttons[:BUTTONS_PER_MESSAGE]:
        view.add_item(PressButton(button.label, button.action))
    return view
