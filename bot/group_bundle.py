"""A group song job's input: the voice notes in the order people joined, with the names they
are credited by, as one zip (a job's inputs cross the queue as bytes, never rows)."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Sequence

MANIFEST = "voices.json"


def pack_voices(voices: Sequence[bytes], names: Sequence[str]) -> bytes:
    packed = io.BytesIO()
    with zipfile.ZipFile(packed, "w", zipfile.ZIP_STORED) as bundle:
        bundle.writestr(MANIFEST, json.dumps({"names": list(names)}))
        for index, voice in enumerate(voices):
            bundle.writestr(f"voice-{index}", voice)
    return packed.getvalue()


def unpack_voices(data: bytes) -> tuple[list[bytes], list[str]]:
    """(the voice notes, their names), in the order they were packed."""
    with zipfile.ZipFile(io.BytesIO(data)) as bundle:
        names = [str(name) for name in json.loads(bundle.read(MANIFEST))["names"]]
        return [bundle.read(f"voice-{index}") for index in range(len(names))], names
