"""Pictures people get with their music, made to be kept and shared: the song's name and key
over its melody (a piano roll), and for a song the voice's sung line drawn over the notes.

Every picture is a 1200 x 630 PNG (CARD_SIZE_PX), the size chat apps show as a link's
preview, so a song's public page uses its picture as it is.

A picture is drawn when someone asks for it, not when the music is made: a song, a melody or
a piano part keeps what its card shows as a few kilobytes of JSON (voice_card, notes_card,
piano_roll_card), and `draw` makes the PNG from that, the same bytes voice_png or notes_png
give. matplotlib is imported only to draw.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

from engine.melody.compose import Melody
from engine.theory import chord_name

CARD_SIZE_PX = (1200, 630)
DPI = 100
BACKGROUND = ("#241650", "#5b2fc0")  # top to bottom
NOTE_COLOUR = "#ff8a5c"
LINE_COLOUR = "#fff3b0"
INK = "#ffffff"
MUTED_INK = "#cfc4f5"
BRAND = "SingSong"
PLOT_BOX = (0.06, 0.1, 0.88, 0.56)  # left, bottom, width, height of the notes, in the card
HEADLINE_LIMIT = 40  # characters of a title at full size; longer ones get a smaller font
YOUR_VOICE = "your voice"
COMPUTER_VOICE = "the computer's voice"


def piano_roll_png(melody: Melody, title: str | None = None) -> bytes:
    """A melody's card: its name (or "A new melody"), its key and tempo, its notes and chord
    names, with faint bar lines.

    Parameters
    ----------
    melody : Melody
        The notes (MIDI pitch, start and end in s, velocity 0-127), chords, key and tempo.
    title : str or None
        The card's title; None: "A new melody".

    Returns
    -------
    bytes
        A PNG.
    """
    return notes_png(*_melody_roll(melody, title))


def piano_roll_card(melody: Melody, title: str | None = None) -> bytes:
    """What piano_roll_png draws, as JSON to keep and draw later (`draw`).

    Parameters
    ----------
    melody, title
        As for piano_roll_png.

    Returns
    -------
    bytes
        notes_card's JSON; `draw` gives piano_roll_png's bytes.
    """
    return notes_card(*_melody_roll(melody, title))


def _melody_roll(melody: Melody, title: str | None) -> tuple[Any, ...]:
    """notes_png's (and notes_card's) arguments for a melody's piano roll, in order."""
    return ([(n.pitch, n.start_s, n.end_s, n.velocity) for n in melody.notes],
            melody.duration_s, title or "A new melody",
            f"{melody.key.name} · {melody.tempo_bpm:g} BPM",
            [(chord_name(c.root, c.quality), c.start_s) for c in melody.chords],
            melody.step_s * 16)


def heard_notes_card(notes: Sequence[tuple[int, float, float, int]], duration_s: float,
                     tempo_bpm: float | None) -> bytes:
    """The card of a clip played on the piano (pipeline.piano's picture): the notes heard,
    titled by how many and their tempo, with a bar line every 4 beats when there is one.

    Parameters
    ----------
    notes : sequence of (pitch, start_s, end_s, velocity)
        The notes heard: MIDI pitch, start and end (s), velocity (0-127).
    duration_s : float > 0
        The clip's length (s).
    tempo_bpm : float or None
        The tempo the notes were quantised to (BPM); None: not quantised, no bar lines.

    Returns
    -------
    bytes
        notes_card's JSON.
    """
    title = f"{len(notes)} notes heard" + (f", {tempo_bpm:g} BPM" if tempo_bpm else "")
    return notes_card(notes, duration_s, title=title,
                      bar_s=240.0 / tempo_bpm if tempo_bpm else None)


def notes_card(notes: Sequence[tuple[int, float, float, int]], duration_s: float, title: str,
               subtitle: str = "", chords: Sequence[tuple[str, float]] = (),
               bar_s: float | None = None) -> bytes:
    """What notes_png draws, as JSON to keep and draw later (`draw`); the numbers exact.

    Parameters
    ----------
    notes, duration_s, title, subtitle, chords, bar_s
        As for notes_png: (MIDI pitch, start s, end s, velocity 0-127) each, the time shown
        (s), the headline and the line under it, (chord name, start s) each, a bar (s).

    Returns
    -------
    bytes
        UTF-8 JSON: {"kind": "notes", ...}.
    """
    card = {"kind": "notes", "title": title, "subtitle": subtitle,
            "duration_s": float(duration_s), "bar_s": None if bar_s is None else float(bar_s),
            "notes": [[int(p), float(s), float(e), int(v)] for p, s, e, v in notes],
            "chords": [[str(name), float(start)] for name, start in chords]}
    return json.dumps(card, separators=(",", ":"), allow_nan=False).encode()


def notes_png(notes: Sequence[tuple[int, float, float, int]], duration_s: float, title: str,
              subtitle: str = "", chords: Sequence[tuple[str, float]] = (),
              bar_s: float | None = None) -> bytes:
    """A card of notes over time, with chord names above them and faint bar lines.

    Parameters
    ----------
    notes : sequence of (pitch, start_s, end_s, velocity)
        MIDI pitch (int), start and end (s), velocity (0-127: the note's opacity).
    duration_s : float > 0
        The time the card shows (s, from 0).
    title, subtitle : str
        Written above the notes.
    chords : sequence of (name, start_s)
        Chord symbols and where they start (s).
    bar_s : float > 0 or None
        A bar's length (s) for the bar lines; None: none.

    Returns
    -------
    bytes
        A PNG.
    """
    pitches = [n[0] for n in notes] or [60]
    with _card(title, subtitle) as (fig, ax):
        if bar_s:
            for bar in range(int(duration_s / bar_s + 1e-6) + 1):
                ax.axvline(bar * bar_s, color=MUTED_INK, lw=0.8, alpha=0.25, zorder=0)
        for pitch, start, end, velocity in notes:
            _note(ax, pitch, start, end, alpha=0.5 + 0.5 * velocity / 127)
        for name, start in chords:
            ax.text(start + 0.03, max(pitches) + 2.2, name, fontsize=11, color=MUTED_INK,
                    va="bottom")
        ax.set_xlim(0, max(duration_s, 0.1))
        ax.set_ylim(min(pitches) - 2, max(pitches) + 4)
        return _png(fig)


def voice_png(sung: Sequence[tuple[int, float, float]], line: tuple[np.ndarray, np.ndarray],
              title: str, subtitle: str = "", voice: str = YOUR_VOICE) -> bytes:
    """A song's card: the notes the voice was put on and the voice's sung line over them.

    Parameters
    ----------
    sung : sequence of (pitch, start_s, end_s)
        The notes: MIDI pitch (int), start and end (s).
    line : (times_s, midi)
        The sung pitch: np.ndarrays of times (s) and fractional MIDI pitch (NaN where
        unvoiced); points more than 3 semitones under or 4 over the notes are not drawn.
    title, subtitle : str
        Written above.
    voice : str
        The line's label: YOUR_VOICE ("your voice") or COMPUTER_VOICE for typed lyrics.

    Returns
    -------
    bytes
        A PNG.
    """
    low, high = _voice_range(sung)
    end_s = max([e for _, _, e in sung] + [float(np.nanmax(line[0], initial=1.0))])
    with _card(title, subtitle) as (fig, ax):
        for pitch, start, end in sung:
            _note(ax, pitch, start, end, alpha=0.55)
        times, midi = line
        shown = np.where((midi >= low) & (midi <= high), midi, np.nan)
        ax.plot(times, shown, color=LINE_COLOUR, lw=9, alpha=0.18, solid_capstyle="round")
        ax.plot(times, shown, color=LINE_COLOUR, lw=2.6, solid_capstyle="round")
        fig.text(PLOT_BOX[0], PLOT_BOX[1] - 0.06, f"━ {voice}, sung", color=LINE_COLOUR,
                 fontsize=13)
        fig.text(PLOT_BOX[0] + 0.3, PLOT_BOX[1] - 0.06, "▬ the melody", color=NOTE_COLOUR,
                 fontsize=13)
        start_s = min([s for _, s, _ in sung], default=0.0)
        ax.set_xlim(max(start_s - 0.3, 0.0), end_s)  # from the first sung note
        ax.set_ylim(low, high)
        return _png(fig)


def voice_card(sung: Sequence[tuple[int, float, float]], line: tuple[np.ndarray, np.ndarray],
               title: str, subtitle: str = "", voice: str = YOUR_VOICE) -> bytes:
    """What voice_png draws, as compact JSON to keep with the song and draw later (`draw`).

    The line keeps only what the card shows: a point out of the card's pitch range (more
    than 3 semitones under the notes or 4 over) or unvoiced is kept as null, a gap in the
    line. Numbers are kept exactly (JSON writes a float so it reads back the same), so
    `draw` gives voice_png's bytes.

    Parameters
    ----------
    sung, line, title, subtitle, voice
        As for voice_png: the notes (MIDI pitch, start and end in s), the sung pitch
        (times in s, fractional MIDI pitch, NaN where unvoiced), the headline and the line
        under it, and the line's label.

    Returns
    -------
    bytes
        UTF-8 JSON: {"kind": "voice", "sung", "times_s", "midi", "title", "subtitle",
        "voice"}; about 20 kB for a 15 s verse at 30 ms frames.
    """
    low, high = _voice_range(sung)
    times, midi = (np.asarray(values, dtype=np.float64) for values in line)
    shown = np.where((midi >= low) & (midi <= high), midi, np.nan)
    card = {"kind": "voice", "title": title, "subtitle": subtitle, "voice": voice,
            "sung": [[int(p), float(s), float(e)] for p, s, e in sung],
            "times_s": [float(t) for t in times],
            "midi": [None if np.isnan(m) else float(m) for m in shown]}
    return json.dumps(card, separators=(",", ":"), allow_nan=False).encode()


def draw(card: bytes) -> bytes:
    """The picture a card (voice_card's, notes_card's or piano_roll_card's JSON) describes.

    Parameters
    ----------
    card : bytes
        The card's JSON.

    Returns
    -------
    bytes
        A PNG (CARD_SIZE_PX), byte for byte what voice_png (or notes_png) gives for it.

    Raises
    ------
    ValueError
        For anything that is not such a card.
    """
    try:
        data = json.loads(card)
        kind = data.get("kind")
        title, subtitle = str(data["title"]), str(data["subtitle"])
        if kind == "voice":
            sung = [(int(p), float(s), float(e)) for p, s, e in data["sung"]]
            times = np.array(data["times_s"], dtype=np.float64)
            midi = np.array([np.nan if m is None else m for m in data["midi"]],
                            dtype=np.float64)
            voice = str(data["voice"])
        elif kind == "notes":
            notes = [(int(p), float(s), float(e), int(v)) for p, s, e, v in data["notes"]]
            chords = [(str(name), float(start)) for name, start in data["chords"]]
            duration_s = float(data["duration_s"])
            bar_s = None if data["bar_s"] is None else float(data["bar_s"])
        else:
            raise ValueError(f"not a card SingSong draws: kind {kind!r}")
    except (KeyError, TypeError, AttributeError, UnicodeDecodeError,
            json.JSONDecodeError) as error:
        raise ValueError(f"not a card SingSong draws: {error}") from error
    if kind == "notes":
        return notes_png(notes, duration_s, title, subtitle, chords, bar_s)
    return voice_png(sung, (times, midi), title=title, subtitle=subtitle, voice=voice)


def _voice_range(sung: Sequence[tuple[int, float, float]]) -> tuple[int, int]:
    """The card's pitch range around the notes (MIDI): 3 semitones under, 4 over."""
    pitches = [p for p, _, _ in sung] or [60]
    return min(pitches) - 3, max(pitches) + 4


def _note(ax: Any, pitch: int, start: float, end: float, alpha: float) -> None:
    from matplotlib.patches import FancyBboxPatch

    ax.add_patch(FancyBboxPatch((start, pitch - 0.38), max(end - start - 0.02, 0.02), 0.76,
                                boxstyle="round,pad=0,rounding_size=0.1", lw=0,
                                color=NOTE_COLOUR, alpha=alpha))


@contextmanager
def _card(title: str, subtitle: str) -> Iterator[tuple[Any, Any]]:
    """A CARD_SIZE_PX figure (Agg, no screen) with its gradient, headline and brand, and an
    axes without frame or ticks for the notes; closed however the drawing ends."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import LinearSegmentedColormap

    fig = plt.figure(figsize=(CARD_SIZE_PX[0] / DPI, CARD_SIZE_PX[1] / DPI), dpi=DPI)
    try:
        backdrop = fig.add_axes((0, 0, 1, 1))
        backdrop.imshow(np.linspace(0, 1, 256)[:, None], aspect="auto", extent=(0, 1, 0, 1),
                        cmap=LinearSegmentedColormap.from_list("card", BACKGROUND))
        backdrop.set_axis_off()
        size = 40 if len(title) <= HEADLINE_LIMIT // 2 else 30 if len(
            title) <= HEADLINE_LIMIT else 22
        fig.text(0.06, 0.87, title, color=INK, fontsize=size, fontweight="bold", va="center")
        fig.text(0.06, 0.76, subtitle, color=MUTED_INK, fontsize=18, va="center")
        fig.text(0.94, 0.04, BRAND, color=MUTED_INK, fontsize=14, fontweight="bold",
                 ha="right")
        ax = fig.add_axes(PLOT_BOX)
        ax.set_axis_off()
        yield fig, ax
    finally:
        plt.close(fig)


def _png(fig: Any) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()
