"""What SingSong says and does, the same on every platform: the doors (bot/adapters) turn
what comes in into a Message, ask Commands for its Reply, and send finished jobs' replies
through their Outbox.

- `_types`: what crosses between the doors and the commands (Message, Reply, the views)
- `_registry`: every command said once (COMMANDS), from which the menus and help are built
- `_commands`: Commands, answering messages and button presses
- `_views`: what the web page reads; `_delivery`: sending a finished job's reply once
- `_replies`: the sentences and the replies to finished jobs
"""

from bot.commands._commands import Commands
from bot.commands._delivery import Delivery
from bot.commands._registry import COMMANDS, MENU, REQUESTED_KINDS, Argument, Command
from bot.commands._replies import (
    CLIP_KINDS,
    NAME_LIMIT,
    NOT_AUDIO,
    PIANO_STAYS_OUT,
    SOMETHING_WENT_WRONG,
    SONG_KINDS,
    WORKING,
    SungAs,
    clean_name,
    finished_reply,
    group_reply,
    is_piano_version,
    melody_options,
    minutes,
    sentence,
    too_large,
    track_about,
)
from bot.commands._types import (
    AlbumEntryView,
    AlbumView,
    Button,
    Clip,
    FileOut,
    JobView,
    Message,
    Outbox,
    Person,
    Place,
    Reply,
    SharedSongView,
    Target,
    TrackView,
)
from bot.commands._views import LINK_PARTS
from bot.titles import credit, song_title

__all__ = [
    "CLIP_KINDS", "COMMANDS", "LINK_PARTS", "MENU", "NAME_LIMIT", "NOT_AUDIO",
    "PIANO_STAYS_OUT", "REQUESTED_KINDS", "SOMETHING_WENT_WRONG", "SONG_KINDS", "WORKING",
    "AlbumEntryView", "AlbumView", "Argument", "Button", "Clip", "Command", "Commands",
    "Delivery", "FileOut", "JobView", "Message", "Outbox", "Person", "Place", "Reply",
    "SharedSongView", "SungAs", "Target", "TrackView", "clean_name", "credit", "finished_reply",
    "group_reply", "is_piano_version", "melody_options", "minutes", "sentence", "song_title",
    "too_large", "track_about",
]
