"""The web API fuzzed from its OpenAPI document, longer than the tests do: at least 10,000
requests (half following the schema, half breaking it), seeded. Prints JSON: cases, their
statuses, the 5xx answers and undocumented statuses (both must be 0) and failed checks.

    .venv/bin/python -m benchmarks.web_api_fuzz [--cases 10000] [--seed 17]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from pathlib import Path
from typing import Any

from benchmarks import print_json
from tests.bot.adapters.api_fuzz import fuzz, recorded_engine, recorded_melody
from tests.bot.adapters.test_web import running_web
from tests.bot.service import running_service, service_settings


async def measure(cases: int, seed: int) -> dict[str, Any]:
    await asyncio.to_thread(recorded_melody)
    with tempfile.TemporaryDirectory() as folder:
        async with running_service(service_settings(Path(folder)), recorded_engine) as service, \
                running_web(service) as web:
            report = await asyncio.to_thread(fuzz, web.url, cases, seed)
    return {"seed": seed, "asked_for": cases, **report.as_json()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=17)
    arguments = parser.parse_args()
    print_json(asyncio.run(measure(arguments.cases, arguments.seed)))


if __name__ == "__main__":
    main()
