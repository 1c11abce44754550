"""What `pip install .` (the Docker image) installs: the package with its data, the web
chat's page included (a wheel carries only the files pyproject.toml lists)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from tests.conftest import ROOT

SOURCES = ("pyproject.toml", "README.md", "bot", "engine", "storage", "migrations")


def test_the_wheel_carries_the_web_page_the_model_and_the_migrations(tmp_path: Path) -> None:
    source = tmp_path / "source"  # built from a copy: the build leaves nothing in the project
    source.mkdir()
    for part in SOURCES:
        if (ROOT / part).is_dir():
            shutil.copytree(ROOT / part, source / part,
                            ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copy(ROOT / part, source / part)
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(source), "--no-deps",
                    "--no-build-isolation", "-q", "-w", str(tmp_path)], check=True,
                   capture_output=True, timeout=300)
    (wheel,) = tmp_path.glob("singsong-*.whl")
    carried = set(zipfile.ZipFile(wheel).namelist())
    needed = [path.relative_to(ROOT).as_posix()
              for folder in ("bot/adapters/web_static", "engine/melody/weights")
              for path in sorted((ROOT / folder).iterdir()) if path.is_file()]
    needed.append("migrations/script.py.mako")
    assert [name for name in needed if name not in carried] == []
