"""The sung parts of a song: each distinct part retuned once, then placed wherever it is sung.

A part is some of the voice note's syllables put onto some notes: the verse (every syllable
on the verse's melody), the chorus's hook as it is first sung and as it is answered, and the
second voice above each. A part that comes back (the chorus, the verse of a short note) is
made once and its samples are placed again.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from scipy.signal import resample_poly

from engine import retune
from engine import voice as voice_synth
from engine.notes import Syllable
from engine.pitch import PitchTrack
from engine.retune import Alignment, RetunedVoice, SungNote, Tuning
from engine.timing import StageTimer

EDGE_FADE_S = 0.008


@dataclass(frozen=True)
class Part:
    """Syllables of the voice note onto notes, as first sung on the song's time line, and
    where else it is sung (offsets in s from that first place)."""

    name: str
    syllables: tuple[Syllable, ...]
    pitches: tuple[int, ...]
    onsets_s: tuple[float, ...]
    end_s: float  # where its last note ends
    tuning: Tuning
    again_at_s: tuple[float, ...] = ()
    detune_cents: float = 0.0  # sung this far off the notes throughout (a group's spread)


@dataclass(frozen=True)
class SungPart:
    part: Part
    alignment: Alignment
    voice: RetunedVoice  # at the input's rate, from alignment's first output instant

    def notes(self) -> list[SungNote]:
        """Its notes at every place it is sung."""
        shifts = (0.0, *self.part.again_at_s)
        return [SungNote(n.pitch, n.start_s + shift, n.end_s + shift)
                for shift in shifts for n in self.alignment.sung]


def sing_parts(parts: Sequence[Part], samples: np.ndarray, sample_rate: int, f0: PitchTrack,
               seed: int, timer: StageTimer) -> list[SungPart]:
    """Retune every part, each once.

    Overlap-add (Praat) runs here while WORLD makes the held vowels of all of them in a thread
    beside it (it lets go of the GIL), then the two are joined. Praat's pitch analysis looks
    between 0.7 times the 2nd percentile of the voice's f0 (at least 50 Hz) and 1.5 times its
    98th (at most 1000 Hz).

    Parameters
    ----------
    parts : sequence of Part
        The parts to sing; part i's contour is seeded with `seed` + i.
    samples : np.ndarray [shape=(n,)], float in -1..1
        The mono voice note.
    sample_rate : int > 0
        Its rate (Hz).
    f0 : PitchTrack
        Its pitch track; it must have at least one voiced frame.
    seed : int
        Seeds the sung contours (vibrato, drift).
    timer : StageTimer
        Times the retune, held_vowels and join stages.

    Returns
    -------
    sung : list of SungPart
        One per part, in order, each at `sample_rate`.
    """
    voiced_hz = f0.f0_hz[f0.voiced]
    floor_hz = max(50.0, float(np.percentile(voiced_hz, 2)) * 0.7)
    ceiling_hz = min(1000.0, float(np.percentile(voiced_hz, 98)) * 1.5)
    voiced_s = f0.times_s[f0.voiced]
    aligned = []
    for index, part in enumerate(parts):
        alignment = retune.align(part.syllables, part.pitches, part.onsets_s, part.end_s,
                                 voiced_s=voiced_s)
        times, midi = retune.sung_contour(alignment.sung, part.tuning, seed + index)
        contour = (times, midi + part.detune_cents / 100)
        aligned.append((alignment, contour))
    with ThreadPoolExecutor(max_workers=1) as world:
        held_future = world.submit(_held_vowels, samples, sample_rate, f0, aligned, timer)
        with timer.stage("retune"):
            # The chorus's halves and the second voice above them are sung from one stretch
            # of the voice: Praat analyses it once.
            analyses = retune.Analyses()
            plain = [retune.retune(samples, sample_rate, alignment, contour,
                                   pitch_floor_hz=floor_hz, pitch_ceiling_hz=ceiling_hz,
                                   analyses=analyses)
                     for alignment, contour in aligned]
        held = held_future.result()
    with timer.stage("join"):
        return [SungPart(part, alignment, voice_synth.join_held(voice, vowels))
                for part, (alignment, _), voice, vowels
                in zip(parts, aligned, plain, held, strict=True)]


def _held_vowels(samples: np.ndarray, sample_rate: int, f0: PitchTrack,
                 aligned: list[tuple[Alignment, tuple[np.ndarray, np.ndarray]]],
                 timer: StageTimer) -> list[list[voice_synth.HeldVowel]]:
    with timer.stage("held_vowels"):
        envelope = voice_synth.analyse(samples, sample_rate, f0)
        return [voice_synth.synthesise_held(envelope, sample_rate, f0, alignment.time_map,
                                            contour)
                for alignment, contour in aligned]


def on_time_line(sung: Sequence[SungPart], sample_rate: int, length: int) -> np.ndarray:
    """The parts, each at every place it is sung, summed into the song's time line.

    Each part is resampled to `sample_rate` and faded in and out over EDGE_FADE_S (8 ms);
    whatever falls past `length` is cut off.

    Parameters
    ----------
    sung : sequence of SungPart
        Sung parts (sing_parts).
    sample_rate : int > 0
        The song's rate (Hz).
    length : int >= 0
        Samples of the time line.

    Returns
    -------
    samples : np.ndarray [shape=(length,)], float32
        The sum (not limited: it can pass -1..1).
    """
    out = np.zeros(length, np.float32)
    edge = round(EDGE_FADE_S * sample_rate)
    for part in sung:
        samples = resample_poly(part.voice.samples, sample_rate,
                                part.voice.sample_rate).astype(np.float32)
        # A part begins and ends where the time map does, which may be inside a sound (the
        # hook is cut out of running speech): a few milliseconds of fade keep that silent.
        ramp = np.linspace(0.0, 1.0, min(edge, len(samples) // 2), dtype=np.float32)
        samples[:len(ramp)] *= ramp
        samples[len(samples) - len(ramp):] *= ramp[::-1]
        for shift in (0.0, *part.part.again_at_s):
            at = round((part.voice.start_s + shift) * sample_rate)
            piece = samples[: max(0, length - at)]
            out[at: at + len(piece)] += piece
    return out


def end_s(sung: Sequence[SungPart]) -> float:
    """Where the last sung sample ends on the song's time line (s); `sung` must be non-empty."""
    return max(p.voice.start_s + max(p.part.again_at_s, default=0.0) +
               len(p.voice.samples) / p.voice.sample_rate for p in sung)
