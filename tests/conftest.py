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
