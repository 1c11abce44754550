"""Pictures people get with their music: a piano roll of a melody, a voice against its tune."""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

from engine.melody.compose import Melody
from engine.theory import PITCH_CLASS_NAMES, chord_name

NOTE_COLOUR = "#e4572e"
CHORD_COLOUR = "#6c757d"


def piano_roll_png(melody: Melody, title: str | None = None) -> bytes:
    """A PNG piano roll of a composed melody: bar lines and chord names above its notes."""
    return notes_png(
        [(n.pitch, n.start_s, n.end_s, n.velocity) for n in melody.notes],
        duration_s=melody.duration_s,
        title=title or f"{melody.key.name}, {melody.tempo_bpm:g} BPM, {len(melody.notes)} notes",
        bar_s=melody.step_s * 16,
        chords=[(chord_name(c.root, c.quality), c.start_s) for c in melody.chords],
        label_classes=melody.key.stable_pitch_classes(),
    )


def notes_png(notes: Sequence[tuple[int, float, float, int]], duration_s: float, title: str,
              bar_s: float | None = None, chords: Sequence[tuple[str, float]] = (),
              label_classes: frozenset[int] = frozenset({0})) -> bytes:
    """A PNG piano roll of (pitch, start_s, end_s, velocity) notes, with bar lines every
    `bar_s` seconds (thicker every four bars) and chord names above when given."""
    from matplotlib.patches import FancyBboxPatch

    pitches = [n[0] for n in notes] or [60]
    low, high = min(pitches) - 2, max(pitches) + 2
    with _figure(min(16.0, 4.0 + duration_s / 1.5)) as (fig, ax):
        for pitch, start, end, velocity in notes:
            ax.add_patch(FancyBboxPatch(
                (start, pitch - 0.4), max(end - start - 0.01, 0.01), 0.8,
                boxstyle="round,pad=0,rounding_size=0.08", color=NOTE_COLOUR,
                alpha=0.55 + 0.45 * velocity / 127,
            ))
        if bar_s:
            for bar in range(int(duration_s / bar_s + 1e-6) + 1):
                ax.axvline(bar * bar_s, color="#adb5bd", lw=0.8 if bar % 4 else 1.6, zorder=0)
        for name, start in chords:
            ax.text(start + 0.03, high + 0.3, name, fontsize=8, color=CHORD_COLOUR,
                    va="bottom")
        ticks = [p for p in range(low, high + 1) if p % 12 in label_classes]
        ax.set_yticks(ticks, [f"{PITCH_CLASS_NAMES[p % 12]}{p // 12 - 1}" for p in ticks])
        ax.set_xlim(0, duration_s)
        ax.set_ylim(low - 0.5, high + 1.5)
        return _png(fig, ax, title)


def voice_png(sung: Sequence[tuple[int, float, float]], before: tuple[np.ndarray, np.ndarray],
              after: tuple[np.ndarray, np.ndarray], title: str) -> bytes:
    """A PNG of the voice's pitch before (as spoken, moved onto the song's time line) and
    after retuning, against the melody's notes. Contours are (times_s, MIDI pitch, NaN where
    unvoiced); sung notes are (pitch, start_s, end_s)."""
    from matplotlib.patches import Rectangle

    pitches = [p for p, _, _ in sung] or [60]
    low, high = min(pitches) - 7, max(pitches) + 5
    end_s = max([e for _, _, e in sung] + [float(np.nanmax(after[0], initial=1.0))])
    with _figure(min(16.0, 4.0 + end_s / 2)) as (fig, ax):
        for pitch, start, end in sung:
            ax.add_patch(Rectangle((start, pitch - 0.5), end - start, 1.0,
                                   color=NOTE_COLOUR, alpha=0.35, lw=0))
        ax.plot(before[0], np.clip(before[1], low, high), ".", ms=1.5, color="#adb5bd",
                label="your voice, spoken")
        ax.plot(after[0], np.clip(after[1], low, high), ".", ms=1.5, color="#1d3557",
                label="your voice, sung")
        ticks = [p for p in range(low, high + 1) if p % 12 == 0]
        ax.set_yticks(ticks, [f"C{p // 12 - 1}" for p in ticks])
        ax.set_xlim(0, end_s)
        ax.set_ylim(low, high)
        ax.legend(loc="upper right", fontsize=8, markerscale=6)
        return _png(fig, ax, title)


@contextmanager
def _figure(width_in: float) -> Iterator[tuple[Any, Any]]:
    """A 4-inch-high matplotlib figure (Agg, no screen), closed however the drawing ends."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(width_in, 4.0), dpi=100)
    try:
        yield fig, ax
    finally:
        plt.close(fig)


def _png(fig: Any, ax: Any, title: str) -> bytes:
    """Label the time axis, title the figure and return it as PNG bytes."""
    ax.set_xlabel("time (s)")
    ax.grid(axis="y", color="#e9ecef", lw=0.5)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()
