"""Shared fixtures: where the real recordings and MIDI live (../shared/data)."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.fail(f"the shared data folder {SHARED_DATA} is missing: tests need ../shared/data")
    return SHARED_DATA


@pytest.fixture(scope="session")
def pop909_root(shared_data: Path) -> Path:
    return shared_data / "melodies" / "pop909" / "POP909"


def ffmpeg_make(*args: str, suffix: str) -> bytes:
    """Bytes of a file made by the real ffmpeg (lavfi sources, conversions)."""
    import subprocess
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        target = Path(folder) / f"out{suffix}"
        subprocess.run(["ffmpeg", "-v", "error", "-y", *args, str(target)], check=True,
                       timeout=120)
        return target.read_bytes()


@pytest.fixture(scope="session")
def speech_clip(shared_data: Path) -> Path:
    """14 s of read speech (LibriSpeech, CC BY 4.0), a woman's voice."""
    return shared_data / "speech" / "198-209-0000.ogg"


@pytest.fixture(scope="session")
def short_speech_clip(shared_data: Path) -> Path:
    """2.8 s of read speech (CMU ARCTIC, a man's voice, 16 kHz WAV): a quick song to make."""
    return shared_data / "speech" / "cmu_arctic" / "cmu_arctic_us_axb_a0004.wav"
