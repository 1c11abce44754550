"""Scripts that measure speed, memory and quality and print JSON (run each with
`.venv/bin/python -m benchmarks.NAME`)."""

from __future__ import annotations

import json
import os
import sys
from typing import Any


def print_json(result: dict[str, Any]) -> None:
    """A benchmark's figures on stdout, with the number of cores they were measured on."""
    result["cpu_count"] = os.cpu_count()
    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write("\n")
