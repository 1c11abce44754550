"""A song's public page (/s/TOKEN): what a friend opens from a shared link, and what chat
apps read for their preview (Open Graph and Twitter card tags, with the audio to play)."""

from __future__ import annotations

import html
import struct
from pathlib import Path
from string import Template

from bot.commands import SharedSongView, minutes

STATIC_DIR = Path(__file__).with_name("web_static")
SONG_PAGE = Template((STATIC_DIR / "song.html").read_text(encoding="utf-8"))
PLAYER_PAGE = Template((STATIC_DIR / "player.html").read_text(encoding="utf-8"))
PLAYER_HEIGHT_PX = 90  # the embedded player (twitter:player): a title line and the controls
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
GONE_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex"><title>No song here: SingSong</title>
<link rel="stylesheet" href="/static/style.css"></head>
<body class="song-page"><main><section class="card"><h1>This song is not shared</h1>
<p>Its maker stopped sharing it, or the link is not quite right.</p>
<p><a href="/">Make your own song with SingSong</a></p></section></main></body></html>
"""


def page_path(token: str) -> str:
    return f"/s/{token}"


def song_page(view: SharedSongView, base_url: str, picture: bytes | None) -> str:
    """The public page of a shared song; `base_url` (scheme and host) makes the preview's
    addresses absolute, as chat apps need them."""
    path = page_path(view.token)
    width, height = png_size(picture) if picture else (0, 0)
    return SONG_PAGE.substitute(_escaped({
        "title": view.track.title, "credit": view.credit,
        "description": description(view), "about": about(view),
        "page_url": base_url + path,
        "picture_url": base_url + path + "/picture", "picture_path": path + "/picture",
        "picture_width": str(width), "picture_height": str(height),
        "picture_alt": f"{view.track.title}: the melody and the voice singing it",
        "audio_url": base_url + path + "/audio", "audio_path": path + "/audio",
        "player_url": base_url + path + "/player", "player_height": str(PLAYER_HEIGHT_PX),
        "duration_s": str(round(view.track.duration_s)),
        # A player card needs an https page to embed; elsewhere the big picture.
        "twitter_card": "player" if base_url.startswith("https:") else "summary_large_image",
    }) | {"lyrics": _lyrics_block(view.track.lyrics)})


def player_page(view: SharedSongView) -> str:
    """The player alone, for chat apps that embed one (twitter:player)."""
    return PLAYER_PAGE.substitute(_escaped({
        "title": view.track.title, "credit": view.credit,
        "audio_path": page_path(view.token) + "/audio"}))


def description(view: SharedSongView) -> str:
    """'A song by Alice, made with SingSong: A minor, 96 BPM, 0:24.'"""
    return f"A song by {view.credit}, made with SingSong: {about(view)}"


def about(view: SharedSongView) -> str:
    track = view.track
    said = [part for part in (track.key, f"{track.tempo_bpm:.0f} BPM" if track.tempo_bpm
                              else None, minutes(track.duration_s)) if part]
    return ", ".join(said) + "."




def png_size(data: bytes) -> tuple[int, int]:
    """A PNG's width and height in pixels, from its header; (0, 0) for anything else."""
    if not data.startswith(PNG_SIGNATURE) or len(data) < 24:
        return 0, 0
    width, height = struct.unpack(">II", data[16:24])
    return int(width), int(height)


def _lyrics_block(lyrics: str | None) -> str:
    if not lyrics:
        return ""
    return f'<blockquote id="song-lyrics">{html.escape(lyrics)}</blockquote>'


def _escaped(values: dict[str, str]) -> dict[str, str]:
    return {name: html.escape(value, quote=True) for name, value in values.items()}
