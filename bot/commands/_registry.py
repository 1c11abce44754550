"""Every command, said once: its name, what it does, its arguments and the function that
answers it. The help text, the Telegram menu, Discord's slash commands, the web's job kinds
and the API document are all built from COMMANDS, so adding a command is adding one entry."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from bot.commands._replies import band, melody_options
from bot.commands._types import Button, Message, Place, Reply
from bot.errors import Mistake
from engine.arrange import STYLES
from engine.form import check_form
from storage.models import JobKind

if TYPE_CHECKING:
    from bot.commands._commands import Commands

Handler = Callable[["Commands", Message], Awaitable[Reply]]


@dataclass(frozen=True)
class Argument:
    """One argument, as a door with typed arguments (Discord's slash commands) asks for it;
    the command itself reads the words after its name."""

    name: str
    description: str = ""
    type: Literal["text", "number", "audio"] = "text"
    choices: tuple[str, ...] = ()  # the only values it takes, when there is such a list
    required: bool = False


@dataclass(frozen=True)
class Command:
    name: str
    summary: str  # one line, for the menus (Telegram's command list, Discord's slash)
    handler: Handler
    help: str = ""  # its line in the help text ("" for none); {styles} names the bands
    arguments: tuple[Argument, ...] = ()
    kinds: tuple[JobKind, ...] = ()  # the jobs a person asks for with it
    in_menus: bool = True
    aliases: tuple[str, ...] = ()


INTRO = """Hi, I am SingSong. I turn your voice into a pop song.

Send me a voice note (a few words, spoken or sung) and I will write a new melody, put your \
voice on it and add a band."""
PRIVATE_HINT = "\nOr just type your lyrics here."  # where plain text is lyrics to sing


async def _sing(commands: Commands, message: Message) -> Reply:
    if message.clip is not None:
        return await commands.start_job(message, JobKind.SING, message.clip.data, {
            "form": check_form(message.form), "clip": message.clip.filename,
            **band(message.style)})
    if not message.text.strip():
        raise Mistake("Send /sing followed by a few words, or a voice note.")
    return await commands.sing_lyrics(message)


async def _melody(commands: Commands, message: Message) -> Reply:
    return await commands.start_job(message, JobKind.MELODY, None,
                                    melody_options(message.text))


async def _piano(commands: Commands, message: Message) -> Reply:
    if message.clip is None:
        raise Mistake("Send /piano as a reply to a voice note, or with an audio clip "
                      "attached, and I will play it on the piano.")
    return await commands.start_job(message, JobKind.PIANO, message.clip.data,
                                    {"clip": message.clip.filename})


async def _style(commands: Commands, message: Message) -> Reply:
    return await commands.style(message.person, message.text)


async def _history(commands: Commands, message: Message) -> Reply:
    return await commands.history(message.person)


async def _share(commands: Commands, message: Message) -> Reply:
    return await commands.share(message.person, message.text)


async def _album(commands: Commands, message: Message) -> Reply:
    if message.text.split()[:1] == ["publish"]:
        return await commands.publish_album(message.person, message.text.split()[1:])
    return await commands.album(message.place, message.text)


async def _together(commands: Commands, message: Message) -> Reply:
    return await commands.together_in_chat(message)


async def _name(commands: Commands, message: Message) -> Reply:
    return await commands.name(message.person, message.text)


async def _forget(commands: Commands, message: Message) -> Reply:
    return Reply("This deletes every song, clip and setting of yours that I keep. Are you "
                 "sure?", buttons=(Button("Yes, forget me", "forget:yes"),
                                   Button("No, keep them", "forget:no")))


async def _help(commands: Commands, message: Message) -> Reply:
    return help_reply(message.place)


COMMANDS: dict[str, Command] = {command.name: command for command in (
    Command("sing", "I sing your words", _sing,
            "/sing TEXT: I sing your words{private_hint}",
            (Argument("text", "the lyrics", required=True),),
            kinds=(JobKind.SING, JobKind.LYRICS)),
    Command("melody", "A new melody: /melody [key] [style]", _melody,
            "/melody [key] [style]: a new melody (for example /melody A minor lofi)",
            (Argument("key", "for example A minor"),
             Argument("style", "the band", choices=tuple(STYLES))),
            kinds=(JobKind.MELODY,)),
    Command("piano", "Reply to a voice note (or attach a clip) to hear it on the piano",
            _piano,
            "/piano: reply with it to a voice note (or attach a clip) to hear it on the piano",
            (Argument("audio", "a voice note or audio file", "audio", required=True),),
            kinds=(JobKind.PIANO,)),
    Command("style", "Choose your band", _style, "/style [name]: your band: {styles}",
            (Argument("name", choices=tuple(STYLES)),)),
    Command("history", "Your last songs", _history, "/history: your last songs"),
    Command("share", "Put a song in this week's community album", _share,
            "/share [number]: put a song in this week's community album",
            (Argument("track", "the song's number (see /history); default: the last",
                      "number"),)),
    Command("album", "This week's community album", _album,
            "/album: this week's community album",
            (Argument("posting", "on: post every new album in this channel; off: stop",
                      choices=("on", "off")),)),
    Command("together", "In a group: a song everyone here sings (/together done closes it)",
            _together,
            "/together: in a group, a song everyone here sings (answer it with voice notes)",
            (Argument("close", "done: close it now and make the song", choices=("done",)),)),
    # Only the web credits the name given here; the chat doors credit the platform's name.
    Command("name", "The name the album credits you by", _name,
            "/name NAME: the name the album credits you by (on the web; elsewhere, your "
            "profile's)", in_menus=False),
    Command("forget", "Delete everything I keep about you", _forget,
            "/forget: delete everything I keep about you"),
    Command("help", "What I can do", _help, aliases=("start",)),
)}
BY_NAME = {name: command for command in COMMANDS.values()
           for name in (command.name, *command.aliases)}
MENU = tuple(command for command in COMMANDS.values() if command.in_menus)
# What a person asks a job for, in the order menus list them (the web's kinds, the API's).
REQUESTED_KINDS = tuple(kind for command in COMMANDS.values() for kind in command.kinds)


def help_reply(place: Place) -> Reply:
    lines = [command.help for command in COMMANDS.values() if command.help]
    text = "\n".join((INTRO, *lines))
    return Reply(text.format(private_hint=PRIVATE_HINT if place.private else "",
                             styles=", ".join(STYLES)))
