"""A content-addressed store for bytes (audio, MIDI, pictures) under the data directory.

A blob's name is the SHA-256 of its content, so no user input ever reaches a path, the same
file is stored once, and a blob can be checked against its name. Writes are atomic.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
from collections.abc import Iterable
from pathlib import Path

_NAME = re.compile(r"^[0-9a-f]{64}$")


class BlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def put(self, data: bytes) -> str:
        """Store the bytes (once); return their name."""
        name = hashlib.sha256(data).hexdigest()
        path = self._path(name)
        if path.exists():
            return name
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{name}.{secrets.token_hex(4)}.part")
        try:
            with open(temporary, "wb") as file:
                file.write(data)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, path)
        finally:
            temporary.unlink(missing_ok=True)
        return name

    def get(self, name: str) -> bytes:
        return self._path(name).read_bytes()

    def exists(self, name: str) -> bool:
        return self._path(name).exists()

    def delete(self, name: str) -> None:
        self._path(name).unlink(missing_ok=True)

    def names(self) -> set[str]:
        """Every blob stored."""
        if not self.root.exists():
            return set()
        return {p.name for p in self.root.glob("??/??/*") if _NAME.match(p.name)}

    def keep_only(self, referenced: Iterable[str]) -> int:
        """Delete every blob not in `referenced`; return how many were deleted."""
        wanted = set(referenced)
        doomed = self.names() - wanted
        for name in doomed:
            self.delete(name)
        return len(doomed)

    def _path(self, name: str) -> Path:
        if not _NAME.match(name):
            raise ValueError(f"not a blob name: {name!r}")
        return self.root / name[:2] / name[2:4] / name
