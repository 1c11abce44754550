"""What a song is called, and where it came from: names the chats and the web page show.

A song of lyrics is named after its first line; any other piece gets a two-word name drawn
from its seed, so the same seed always gives the same name. A song made from another one
(Another melody, the other form, the piano version) says which, and from which recording.
"""

from __future__ import annotations

import random
import re
from typing import Any

ANONYMOUS_CREDIT = "a SingSong singer"  # a song (or a voice) whose maker gave no name
TITLE_LIMIT = 48  # characters: a title fits a chat preview and the picture's headline
TITLE_WORDS = 7
ADJECTIVES = (
    "Velvet", "Paper", "Golden", "Neon", "Quiet", "Silver", "Midnight", "Lucky", "Electric",
    "Honey", "Crystal", "Wild", "Sleepy", "Secret", "Little", "Endless", "Sunday", "Brave",
    "Faraway", "Bright", "Hidden", "Summer", "Rainy", "Cosmic", "Gentle", "Restless",
    "Painted", "Falling", "Dancing", "Lonely", "Morning", "Candy",
)
NOUNS = (
    "Harbour", "Comets", "Balloon", "Highway", "Garden", "Lanterns", "Ocean", "Postcard",
    "Skyline", "Heartbeat", "Daydream", "Echoes", "Orchard", "Satellite", "Window",
    "Fireflies", "Compass", "River", "Avenue", "Meadow", "Thunder", "Parade", "Stardust",
    "Carousel", "Lighthouse", "Telephone", "Horizon", "Rooftops", "Weekend", "Kites",
    "Sparrow", "Moonlight",
)
MADE_FROM = {  # the button that made a song from another one: how its origin is said
    "another": "Another melody for “{title}”",
    "short": "The short version of “{title}”",
    "full": "The full song of “{title}”",
    "piano": "“{title}” played on the piano",
}
MIC_CLIP = "recording"  # the web page names what its microphone records recording.webm


def new_title(kind: str, parameters: dict[str, Any]) -> str:
    """The name of a new piece: the first line of its lyrics, else drawn from its seed."""
    if kind == "lyrics" and (line := first_line(str(parameters.get("text", "")))):
        return line
    chooser = random.Random(int(parameters.get("seed", 0)))
    return f"{chooser.choice(ADJECTIVES)} {chooser.choice(NOUNS)}"


def first_line(text: str) -> str:
    """The first line or sentence of lyrics, at most TITLE_WORDS words and TITLE_LIMIT
    characters (cut between words), its first letter a capital."""
    line = next((part.strip() for part in re.split(r"[\n.!?;:,]+", text) if part.strip()), "")
    words = line.split()[:TITLE_WORDS]
    while len(" ".join(words)) > TITLE_LIMIT and len(words) > 1:
        words.pop()
    line = " ".join(words)[:TITLE_LIMIT]
    return line[:1].upper() + line[1:]


def derived_title(made_by: str, source_title: str) -> str | None:
    """The name of a piece made from another, when it is not a new song: the other form
    keeps the name, the piano version says so. None: it gets a name of its own."""
    if made_by in ("short", "full"):
        return source_title
    if made_by == "piano":
        return f"{source_title} (piano)"[:TITLE_LIMIT + 8]
    return None


def origin(parameters: dict[str, Any]) -> str:
    """Where a piece came from, in a sentence: 'Another melody for “Velvet Harbour”, from
    your recording.' ('' for a piece made from nothing but a request)."""
    clip = str(parameters.get("clip") or "")
    source = "your recording" if clip.startswith(MIC_CLIP) else f"“{clip}”" if clip else ""
    made_by, source_title = parameters.get("made_by"), parameters.get("from_title")
    said = (MADE_FROM[made_by].format(title=source_title)
            if made_by in MADE_FROM and source_title else "")
    if said and source:
        return f"{said}, from {source}."
    if said:
        return said + "."
    return f"From {source}." if source else ""


def song_title(track_id: int, display_name: str) -> str:
    """How a shared song is named in an album: its number and who made it."""
    return f"Song #{track_id} by {credit(display_name)}"


def credit(display_name: str) -> str:
    """Who an album credits for a song: the person's name, or ANONYMOUS_CREDIT."""
    return display_name or ANONYMOUS_CREDIT
