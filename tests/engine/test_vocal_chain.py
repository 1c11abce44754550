"""The vocal chain (engine/vocal_chain.py): every style, same length, the same bytes every
time, nothing carried from one call to the next, and the presence lift it promises."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.signal import welch

from engine.audio import decode_file
from engine.errors import InvalidRequest
from engine.vocal_chain import STYLES, process

RATE = 32000
ROOT = str(Path(__file__).resolve().parents[2])
SEED = 7


def white_noise(seconds: float = 2.0, seed: int = SEED) -> np.ndarray:
    return np.random.default_rng(seed).normal(0, 0.1, round(seconds * RATE)).astype(np.float32)


def band_db(samples: np.ndarray, low_hz: float, high_hz: float) -> float:
    freqs, power = welch(samples, RATE, nperseg=4096)
    return 10 * float(np.log10(power[(freqs >= low_hz) & (freqs <= high_hz)].mean()))


@pytest.fixture(scope="module")
def speech(speech_clip: Path) -> np.ndarray:
    return decode_file(speech_clip, sample_rate=RATE).samples[: round(4.37 * RATE)]


@pytest.mark.parametrize("style", STYLES)
def test_each_style_keeps_the_length_and_the_level(speech: np.ndarray, style: str) -> None:
    out = process(speech, RATE, style)
    assert out.shape == speech.shape and out.dtype == np.float32 and np.isfinite(out).all()
    level_db = 20 * np.log10(np.std(out) / np.std(speech))
    assert -4 < level_db < 2  # measured -2.2 to -0.3 dB


@pytest.mark.parametrize("style", STYLES)
def test_each_style_lifts_presence_and_cuts_rumble(style: str) -> None:
    vocal = white_noise()
    out = process(vocal, RATE, style)

    def gain_db(low_hz: float, high_hz: float) -> float:
        return band_db(out, low_hz, high_hz) - band_db(vocal, low_hz, high_hz)

    assert gain_db(2700, 3300) - gain_db(150, 250) >= 2.0  # measured 3.2-4.8 dB
    assert gain_db(30, 50) - gain_db(150, 250) <= -4.0  # the high-pass


def test_lofi_is_darker_than_pop() -> None:
    vocal = white_noise()
    pop, lofi = process(vocal, RATE, "pop"), process(vocal, RATE, "lofi")
    assert band_db(lofi, 10000, 14000) < band_db(pop, 10000, 14000) - 6


@pytest.mark.parametrize("style", STYLES)
def test_no_tail_carries_into_the_next_call(style: str) -> None:
    vocal = white_noise(1.0)
    first = process(vocal, RATE, style)
    process(white_noise(1.0, seed=1) * 8, RATE, style)  # loud, with a long echo and room
    assert np.array_equal(process(vocal, RATE, style), first)
    silence = process(np.zeros(RATE, np.float32), RATE, style)
    assert not silence.any()


def _digest(style: str) -> str:
    return hashlib.sha256(process(white_noise(1.0), RATE, style).tobytes()).hexdigest()


def test_the_same_bytes_in_another_process() -> None:
    script = ("import sys; sys.path.insert(0, sys.argv[1]); "
              "from tests.engine.test_vocal_chain import _digest, STYLES; "
              "print(' '.join(_digest(s) for s in STYLES))")
    result = subprocess.run([sys.executable, "-c", script, ROOT], capture_output=True,
                            text=True, timeout=60, check=True, cwd=ROOT)
    assert result.stdout.split() == [_digest(style) for style in STYLES]


def test_an_unknown_style_is_refused() -> None:
    with pytest.raises(InvalidRequest, match="unknown style 'polka'"):
        process(white_noise(0.1), RATE, "polka")


def test_an_empty_vocal_stays_empty() -> None:
    assert process(np.zeros(0, np.float32), RATE, "pop").shape == (0,)
