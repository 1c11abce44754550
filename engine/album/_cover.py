"""The album's cover, drawn from its music (a circle of fifths, one ring per song)."""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import numpy as np

from engine.album._features import ClipFeatures
from engine.theory import PITCH_CLASS_NAMES

COVER_PIXELS = 1000


def cover_png(songs: Sequence[ClipFeatures], title: str) -> bytes:
    """A square cover drawn from the music: a circle of fifths with one ring per song (the first
    inside), each of its 12 sectors as strong as the song's chroma in that key's tonic,
    coloured by the sector's place on the circle and shaded by the song's brightness
    (spectral centroid); a dot on each song's key; the title beneath. Deterministic.

    Parameters
    ----------
    songs : sequence of ClipFeatures
        In album order (none: an empty circle).
    title : str
        Written under the circle.

    Returns
    -------
    bytes
        A COVER_PIXELS x COVER_PIXELS (1000 x 1000) PNG, without a Software tag.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib import colors

    fig = plt.figure(figsize=(10, 10), dpi=COVER_PIXELS // 10, facecolor="#101018")
    try:
        ax: Any = fig.add_axes((0.05, 0.1, 0.9, 0.85), projection="polar")
        ax.set_facecolor("#101018")
        ax.set_theta_zero_location("N")
        ax.set_theta_direction(-1)
        ax.axis("off")
        width = 2 * np.pi / 12
        rings = max(len(songs), 1)
        places = np.arange(12)
        theta, bottom, rgba = [], [], []
        for ring, song in enumerate(songs):
            chroma = np.asarray(song.chroma)[(places * 7) % 12]  # in circle-of-fifths order
            strength = chroma / max(float(chroma.max()), 1e-12)
            brightness = float(song.timbre[0]) if song.timbre else 0.5
            hsv = np.stack([places / 12, 0.35 + 0.6 * strength,
                            np.full(12, 0.35 + 0.65 * brightness)], axis=1)
            rgba.append(np.column_stack([colors.hsv_to_rgb(hsv), 0.25 + 0.75 * strength]))
            theta.append(places * width)
            bottom.append(np.full(12, 1.0 + ring))
        if songs:
            ax.bar(np.concatenate(theta), 1.0, width=width * 0.96,
                   bottom=np.concatenate(bottom), color=np.concatenate(rgba), linewidth=0)
            ax.scatter([s.fifths * width for s in songs], 1.5 + np.arange(len(songs)),
                       s=max(9.0, 3600.0 / rings**2), color="white", alpha=0.9, zorder=3)
        for place in range(12):
            ax.text(place * width, 1.0 + rings + 0.6, PITCH_CLASS_NAMES[(place * 7) % 12],
                    color="#e9ecef", ha="center", va="center", fontsize=16)
        ax.set_ylim(0, 1.0 + rings + 1.0)
        fig.text(0.5, 0.05, title, color="#e9ecef", ha="center", va="center", fontsize=28)
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", facecolor=fig.get_facecolor(),
                    metadata={"Software": None})
        return buffer.getvalue()
    finally:
        plt.close(fig)
