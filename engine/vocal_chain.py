"""The sung vocal's mix chain, as a producer would set it up, on Spotify's pedalboard: a
high-pass, a gentle compressor, a presence lift and a little air, then a slap delay and a
short room, voiced per style."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
import pedalboard as pb
from pedalboard import Pedalboard  # type: ignore[attr-defined]  # re-exported implicitly

from engine.audio import fit_length
from engine.errors import InvalidRequest

# The compressor's threshold is set for a vocal at this loudness (RMS of its loud part,
# dBFS); the vocal is brought there first and back after, so the chain acts the same on a
# whisper and a shout.
STAGING_DBFS = -20.0
LOUD_PART_PERCENTILE = 80  # the loud part: 20 ms blocks above this percentile of level
STAGING_BLOCK_S = 0.02
STAGING_CHUNK = 1 << 16  # samples measured at a time


@dataclass(frozen=True)
class Voicing:
    """One style's settings. Frequencies in Hz, levels in dB, times in seconds, mixes 0-1."""

    high_pass_hz: float
    threshold_db: float  # relative to STAGING_DBFS
    ratio: float
    attack_s: float
    release_s: float
    presence_hz: float  # the singer's formant, 2.5-3.5 kHz
    presence_db: float
    presence_q: float
    air_hz: float  # a high shelf
    air_db: float
    low_pass_hz: float | None  # lofi's darker top
    delay_s: float
    delay_feedback: float
    delay_mix: float
    room_size: float  # 0-1
    damping: float  # 0-1: how fast the room loses its highs
    reverb_wet: float
    reverb_dry: float


VOICINGS: dict[str, Voicing] = {
    # Close and bright: a slap under the voice, a small room.
    "pop": Voicing(high_pass_hz=90.0, threshold_db=-6.0, ratio=3.0, attack_s=0.005,
                   release_s=0.08, presence_hz=3000.0, presence_db=3.0, presence_q=0.9,
                   air_hz=10000.0, air_db=2.0, low_pass_hz=None, delay_s=0.11,
                   delay_feedback=0.0, delay_mix=0.08, room_size=0.35, damping=0.5,
                   reverb_wet=0.08, reverb_dry=0.92),
    # Darker and squeezed, a longer echo: a voice on an old tape.
    "lofi": Voicing(high_pass_hz=140.0, threshold_db=-8.0, ratio=4.0, attack_s=0.01,
                    release_s=0.1, presence_hz=2500.0, presence_db=3.5, presence_q=0.8,
                    air_hz=8000.0, air_db=-4.0, low_pass_hz=7000.0, delay_s=0.16,
                    delay_feedback=0.2, delay_mix=0.14, room_size=0.3, damping=0.7,
                    reverb_wet=0.1, reverb_dry=0.9),
    # Gentle compression, more air, a larger room and a softer echo.
    "ballad": Voicing(high_pass_hz=80.0, threshold_db=-6.0, ratio=2.5, attack_s=0.01,
                      release_s=0.15, presence_hz=3000.0, presence_db=2.5, presence_q=0.7,
                      air_hz=10000.0, air_db=3.0, low_pass_hz=None, delay_s=0.25,
                      delay_feedback=0.25, delay_mix=0.1, room_size=0.7, damping=0.4,
                      reverb_wet=0.22, reverb_dry=0.85),
    # Hard and forward, dry: a short slap and almost no room.
    "robot": Voicing(high_pass_hz=100.0, threshold_db=-8.0, ratio=4.0, attack_s=0.003,
                     release_s=0.06, presence_hz=3200.0, presence_db=4.0, presence_q=1.0,
                     air_hz=10000.0, air_db=2.0, low_pass_hz=None, delay_s=0.09,
                     delay_feedback=0.0, delay_mix=0.15, room_size=0.25, damping=0.5,
                     reverb_wet=0.07, reverb_dry=0.95),
}
STYLES = tuple(VOICINGS)
PARTS = ("lead", "harmony")
HARMONY_BAND_HZ = (300.0, 5000.0)  # the second voice is thinner than the lead


def process(vocal: np.ndarray, sample_rate: int, style: str, part: str = "lead") -> np.ndarray:
    """The mono `vocal` through `style`'s chain.

    The vocal is first brought to STAGING_DBFS (-20 dBFS RMS over its loudest 20 ms blocks) so
    the compressor acts the same on a whisper and a shout, and back to its own level after.
    Deterministic: every call starts from a silent chain (pedalboard resets each plugin before
    it processes), so nothing of one vocal's tail sounds in the next; the chain starts at the
    first non-zero sample.

    Parameters
    ----------
    vocal : np.ndarray [shape=(n,)], float in -1..1
        The mono vocal.
    sample_rate : int > 0
        Its rate (Hz).
    style : str in STYLES ("pop", "lofi", "ballad", "robot")
        Which voicing.
    part : {"lead", "harmony"}
        "harmony" is a second voice, thinned to HARMONY_BAND_HZ (300..5000 Hz) first so the
        lead stays in front of it.

    Returns
    -------
    samples : np.ndarray [shape=(n,)], float32
        The same length (a delay or reverb tail past the end is cut), at about the input's
        level; silence (or an empty vocal) comes back as it went in.

    Raises
    ------
    InvalidRequest
        For an unknown style or part.
    """
    board = _board(style, part)
    samples = np.asarray(vocal, dtype=np.float32)
    if samples.size == 0:
        return samples.copy()
    gain = _staging_gain(samples, sample_rate)
    # A silent chain given silence gives silence: the chain starts at the first sound (a
    # second voice sings only in the choruses), for the same samples (to float rounding).
    sounding = samples != 0
    if not sounding.any():
        return np.zeros(len(samples), np.float32)
    first = int(np.argmax(sounding))
    del sounding
    processed = board(samples[first:] * np.float32(gain), float(sample_rate), reset=True)
    # Written into one array, back to the vocal's level in place: a song's vocal is 8 MB a
    # minute, and each copy less is that much less held at once.
    result = np.zeros(len(samples), np.float32)
    sung = fit_length(processed.reshape(-1), len(samples) - first)
    result[first:] = sung
    del processed, sung
    result[first:] *= np.float32(1 / gain)
    return result


@cache
def _board(style: str, part: str = "lead") -> Pedalboard:
    """The chain for `style`, built once per process (its plugins reset on each use)."""
    if style not in VOICINGS:
        raise InvalidRequest(f"unknown style {style!r}: use one of {', '.join(STYLES)}")
    if part not in PARTS:
        raise InvalidRequest(f"unknown vocal part {part!r}: use one of {', '.join(PARTS)}")
    v = VOICINGS[style]
    plugins: list[pb.Plugin] = []
    if part == "harmony":
        plugins += [pb.HighpassFilter(cutoff_frequency_hz=HARMONY_BAND_HZ[0]),
                    pb.LowpassFilter(cutoff_frequency_hz=HARMONY_BAND_HZ[1])]
    plugins += [
        pb.HighpassFilter(cutoff_frequency_hz=v.high_pass_hz),
        pb.Compressor(threshold_db=STAGING_DBFS + v.threshold_db, ratio=v.ratio,
                      attack_ms=v.attack_s * 1000, release_ms=v.release_s * 1000),
        pb.PeakFilter(cutoff_frequency_hz=v.presence_hz, gain_db=v.presence_db,
                      q=v.presence_q),
        pb.HighShelfFilter(cutoff_frequency_hz=v.air_hz, gain_db=v.air_db),
    ]
    if v.low_pass_hz is not None:
        plugins.append(pb.LowpassFilter(cutoff_frequency_hz=v.low_pass_hz))
    plugins += [
        pb.Delay(delay_seconds=v.delay_s, feedback=v.delay_feedback, mix=v.delay_mix),
        pb.Reverb(room_size=v.room_size, damping=v.damping, wet_level=v.reverb_wet,
                  dry_level=v.reverb_dry, width=0.0),
    ]
    return Pedalboard(plugins)


def _staging_gain(samples: np.ndarray, sample_rate: int) -> float:
    """The gain that puts the vocal's loud part at STAGING_DBFS (1 for silence)."""
    block = max(1, round(STAGING_BLOCK_S * sample_rate))
    usable = len(samples) // block * block
    if usable == 0:
        return 1.0
    blocks = samples[:usable].reshape(-1, block)
    rows = max(1, STAGING_CHUNK // block)  # squared in float64 a few thousand blocks at a time
    power = np.concatenate([np.mean(blocks[i:i + rows].astype(np.float64) ** 2, axis=1)
                            for i in range(0, len(blocks), rows)])
    loud = power[power >= np.percentile(power, LOUD_PART_PERCENTILE)]
    level = float(np.mean(loud))
    if level <= 1e-12:
        return 1.0
    return float(10 ** (STAGING_DBFS / 20) / np.sqrt(level))
