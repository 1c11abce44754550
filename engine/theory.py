"""Keys, scales and chords: the small amount of music theory the engine shares."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from engine.errors import InvalidRequest

Mode = Literal["major", "minor"]

PITCH_CLASS_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
_LETTER_PC = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
MAJOR_SCALE = (0, 2, 4, 5, 7, 9, 11)
NATURAL_MINOR_SCALE = (0, 2, 3, 5, 7, 8, 10)

CHORD_QUALITIES = ("maj", "min", "dim", "aug")
CHORD_INTERVALS: dict[str, tuple[int, int, int]] = {
    "maj": (0, 4, 7),
    "min": (0, 3, 7),
    "dim": (0, 3, 6),
    "aug": (0, 4, 8),
}

_KEY_RE = re.compile(
    r"^\s*([A-Ga-g])\s*(#|♯|b|♭|s|sharp|flat)?\s*[:\s-]?\s*"
    r"(m|min|minor|maj|major|M)?\s*$"
)


@dataclass(frozen=True)
class Key:
    """A key: tonic pitch class (0 = C) and mode."""

    tonic: int
    mode: Mode

    @property
    def name(self) -> str:
        """The key as people read it: "C major", "F# minor", "Bb major" (PITCH_CLASS_NAMES)."""
        return f"{PITCH_CLASS_NAMES[self.tonic]} {self.mode}"

    @property
    def relative_major_tonic(self) -> int:
        """Pitch class of the major key sharing this key's notes (A minor -> C)."""
        return self.tonic if self.mode == "major" else (self.tonic + 3) % 12

    @property
    def tonic_chord(self) -> tuple[int, str]:
        """(root, quality) of the tonic triad: C major's is (0, "maj"), A minor's (9, "min")."""
        return self.tonic, "maj" if self.mode == "major" else "min"

    def on_white_keys(self) -> Key:
        """The key of the same mode that shares C major's notes (C major or A minor): the
        melody model's key-normalised world."""
        return Key(0 if self.mode == "major" else 9, self.mode)

    def scale_pitch_classes(self) -> frozenset[int]:
        """The key's seven pitch classes (0 = C .. 11 = B): its major or natural minor scale."""
        steps = MAJOR_SCALE if self.mode == "major" else NATURAL_MINOR_SCALE
        return frozenset((self.tonic + s) % 12 for s in steps)

    def stable_pitch_classes(self) -> frozenset[int]:
        """Tonic triad: the degrees a phrase comes to rest on (1, 3, 5)."""
        third = 4 if self.mode == "major" else 3
        return frozenset({self.tonic, (self.tonic + third) % 12, (self.tonic + 7) % 12})


def parse_key(text: str) -> Key:
    """Read a key as people write it: "C", "F#m", "Bb minor", "eb:maj", "A min", "C♯".

    Parameters
    ----------
    text : str
        A note name A to G, optionally # / ♯ / s / sharp or b / ♭ / flat, then optionally a
        quality: m, min or minor for minor (M, maj, major or nothing for major).

    Returns
    -------
    Key
        Its tonic as a pitch class (0 = C .. 11 = B) and its mode.

    Raises
    ------
    InvalidRequest
        For anything else, with examples of what is accepted.
    """
    match = _KEY_RE.match(text.replace("♯", "#").replace("♭", "b"))
    if not match:
        shown = text if len(text) <= 24 else text[:24] + "..."
        raise InvalidRequest(
            f"unknown key {shown!r}: use a note name A to G, optionally # or b, "
            "then m for minor (for example C, F#m, Bb, Ebm, A minor)"
        )
    letter, accidental, quality = match.groups()
    pc = _LETTER_PC[letter.upper()]
    if accidental in ("#", "s", "sharp"):
        pc += 1
    elif accidental in ("b", "flat"):
        pc -= 1
    # "M" alone means major; any spelling starting with a lowercase m-i-n or bare m is minor.
    minor = quality is not None and quality in ("m", "min", "minor")
    return Key(tonic=pc % 12, mode="minor" if minor else "major")


def chord_pitch_classes(root: int, quality: str) -> tuple[int, int, int]:
    """The three pitch classes of a triad.

    Parameters
    ----------
    root : int
        The root's pitch class (0 = C; taken modulo 12).
    quality : "maj", "min", "dim" or "aug"
        The triad's quality (a key of CHORD_INTERVALS).

    Returns
    -------
    (root, third, fifth) : tuple of 3 int in 0..11

    Raises
    ------
    KeyError
        For any other quality.
    """
    return tuple((root + i) % 12 for i in CHORD_INTERVALS[quality])  # type: ignore[return-value]


def chord_name(root: int, quality: str) -> str:
    """A triad's name as a chord symbol: "C", "Am", "Bdim", "Eaug".

    Parameters
    ----------
    root : int in 0..11
        The root's pitch class (0 = C).
    quality : "maj", "min", "dim" or "aug"

    Returns
    -------
    str
        The root's name (PITCH_CLASS_NAMES) and a suffix: none for major, "m", "dim", "aug".

    Raises
    ------
    KeyError
        For any other quality.
    """
    suffix = {"maj": "", "min": "m", "dim": "dim", "aug": "aug"}[quality]
    return PITCH_CLASS_NAMES[root] + suffix
