# mypy: disallow-untyped-calls=False
# (mutagen's frames and files are untyped classes.)
"""The album's files: Ogg Opus and MP3 with the album's tags and one chapter per song, and
the cover beside them.

Chapters and tags are written by mutagen into the encoded bytes (ID3 CHAP/CTOC frames in
MP3, the CHAPTERnnn/CHAPTERnnnNAME Vorbis comments players read in Ogg Opus): no second
ffmpeg pass, temporary files or process.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
from mutagen import id3
from mutagen.id3._tags import save_frame
from mutagen.oggopus import OggOpus

from engine import audio
from engine.album._cover import cover_png
from engine.album._features import ClipFeatures
from engine.album._joining import AlbumMix, Chapter, assemble
from engine.errors import InvalidRequest

ALBUM_FORMATS = ("ogg", "mp3")


def encode_album(mix: AlbumMix, titles: Sequence[str], fmt: str, *,
                 album_title: str = "SingSong weekly album",
                 artist: str = "SingSong community") -> bytes:
    """The album as Ogg Opus or MP3 bytes with its tags and one titled chapter per song.

    Parameters
    ----------
    mix : AlbumMix
        The mastered album (mono float samples in -1..1) and its chapters (s).
    titles : sequence of str, one per chapter
        Each song's title; characters that do not print (line ends, ...) become spaces.
    fmt : "ogg" or "mp3"
        The file format (one of ALBUM_FORMATS).
    album_title, artist : str
        The album's title (also its album tag) and artist tags.

    Returns
    -------
    bytes
        The file. The audio is encoded by engine.audio.encode_true_peak (it decodes at most
        audio.DELIVERED_CEILING_DBTP, 4x oversampled); chapters start and end to the
        millisecond. Deterministic: the same mix and titles give the same bytes.

    Raises
    ------
    InvalidRequest
        For an unknown format, or a number of titles other than the number of chapters.
    """
    if fmt not in ALBUM_FORMATS:
        raise InvalidRequest(f"unknown album format {fmt!r}: use one of "
                             f"{', '.join(ALBUM_FORMATS)}")
    if len(titles) != len(mix.chapters):
        raise InvalidRequest(f"{len(titles)} titles for {len(mix.chapters)} songs")
    encoded, _ = audio.encode_true_peak(mix.samples, mix.sample_rate, fmt)
    names = [_printable(title) for title in titles]
    album_title, artist = _printable(album_title), _printable(artist)
    # mutagen rewrites a file object in place: it reads, seeks, writes and truncates.
    buffer = io.BytesIO(encoded)
    tag = _tag_mp3 if fmt == "mp3" else _tag_ogg_opus
    tag(buffer, mix.chapters, names, album_title, artist)
    return buffer.getvalue()


def _tag_mp3(buffer: io.BytesIO, chapters: Sequence[Chapter], titles: Sequence[str],
             album_title: str, artist: str) -> None:
    """ID3v2.4: title, album and artist, an ordered top-level CTOC listing the chapters and
    one CHAP frame per song (ms), as ID3's chapter addendum describes."""
    tags = _FramesInOrder()
    ids = [f"chp{number}" for number in range(len(chapters))]
    tags.add(id3.TIT2(encoding=id3.Encoding.UTF8, text=[album_title]))
    tags.add(id3.TALB(encoding=id3.Encoding.UTF8, text=[album_title]))
    tags.add(id3.TPE1(encoding=id3.Encoding.UTF8, text=[artist]))
    tags.add(id3.CTOC(element_id="toc", flags=id3.CTOCFlags.TOP_LEVEL | id3.CTOCFlags.ORDERED,
                      child_element_ids=ids, sub_frames=[]))
    for element_id, chapter, title in zip(ids, chapters, titles, strict=True):
        tags.add(id3.CHAP(element_id=element_id, start_time=_ms(chapter.start_s),
                          end_time=_ms(chapter.end_s),
                          sub_frames=[id3.TIT2(encoding=id3.Encoding.UTF8, text=[title])]))
    tags.save(buffer)  # replaces the encoder's empty tag


class _FramesInOrder(id3.ID3):
    """An ID3 tag written with its frames in the order they were added. mutagen sorts them
    by size when it saves, but ffmpeg 5.1 (ffprobe, and the players built on it) lists ID3
    chapters in the order of their CHAP frames: they must come in album order."""

    def _write(self, config: Any) -> bytearray:
        return bytearray().join(save_frame(frame, config=config) for frame in self.values())


def _tag_ogg_opus(buffer: io.BytesIO, chapters: Sequence[Chapter], titles: Sequence[str],
                  album_title: str, artist: str) -> None:
    """Vorbis comments: TITLE, ALBUM, ARTIST and CHAPTERnnn (HH:MM:SS.mmm from the start) with
    CHAPTERnnnNAME per song, the chapter convention Ogg players (and ffmpeg) read."""
    opus = OggOpus(buffer)
    assert opus.tags is not None
    opus.tags["TITLE"] = [album_title]
    opus.tags["ALBUM"] = [album_title]
    opus.tags["ARTIST"] = [artist]
    for number, (chapter, title) in enumerate(zip(chapters, titles, strict=True)):
        hours, rest = divmod(_ms(chapter.start_s), 3_600_000)
        minutes, rest = divmod(rest, 60_000)
        opus.tags[f"CHAPTER{number:03d}"] = [f"{hours:02d}:{minutes:02d}:{rest / 1000:06.3f}"]
        opus.tags[f"CHAPTER{number:03d}NAME"] = [title]
    opus.save(buffer)


def _ms(time_s: float) -> int:
    return round(time_s * 1000)


def _printable(value: str) -> str:
    """The text with characters that do not print (line ends, tabs, ...) as spaces: a tag
    is one line."""
    return "".join(ch if ch.isprintable() else " " for ch in value)


@dataclass(frozen=True)
class Album:
    """A built album: the mix (with its chapters) and its files by format: "ogg", "mp3",
    "png" (the cover)."""

    mix: AlbumMix
    files: dict[str, bytes]


def build_album(songs: Sequence[tuple[np.ndarray, int, ClipFeatures]], titles: Sequence[str],
                *, album_title: str = "SingSong weekly album",
                artist: str = "SingSong community", sample_rate: int | None = None) -> Album:
    """The album's mix and every file: assemble, then encode_album for each of ALBUM_FORMATS
    and cover_png side by side (the encoders and the decoders that check them run in
    FFmpeg's and libsndfile's C code, so they overlap with each other and with the drawing).

    Parameters
    ----------
    songs : sequence of (samples, sample_rate, ClipFeatures), in album order
        Each song's mono float samples in -1..1, their rate (Hz) and its features.
    titles : sequence of str, one per song
        The chapter titles.
    album_title, artist : str
        The album's tags; album_title is also written under the cover.
    sample_rate : int > 0 or None
        The album's rate (Hz); None: the first song's.

    Returns
    -------
    Album
        The mix and its files: "ogg", "mp3" and "png" (the cover).

    Raises
    ------
    InvalidRequest
        For no songs, or a number of titles other than the number of songs.
    """
    mix = assemble(songs, sample_rate=sample_rate)
    with ThreadPoolExecutor(max_workers=len(ALBUM_FORMATS)) as pool:
        encoding = {fmt: pool.submit(encode_album, mix, titles, fmt, album_title=album_title,
                                     artist=artist) for fmt in ALBUM_FORMATS}
        cover = cover_png([f for _, _, f in songs], album_title)
        files = {fmt: future.result() for fmt, future in encoding.items()}
    return Album(mix, {**files, "png": cover})
