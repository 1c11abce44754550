"""The web API fuzzed from its own OpenAPI document (schemathesis): requests that follow the
document and requests that break it, each answer checked against what the document promises.

Shared by tests/bot/adapters/test_web_fuzz.py (a bounded, seeded run) and benchmarks/web_api_fuzz.py
(a longer one). The service behind it gets a recorded engine result for every job, so the run
measures the HTTP side at thousands of requests a minute (what the engine does with bad
audio is fuzzed in tests/hardening).
"""

from __future__ import annotations

import contextlib
import functools
import math
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import hypothesis
import hypothesis.errors
import requests
import schemathesis
from hypothesis import HealthCheck, Phase
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core.failures import FailureGroup
from schemathesis.core.result import Ok

if TYPE_CHECKING:  # the engine is imported only when a fuzz run records its melody
    from bot.jobs import JobResult

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_headers_conformance, response_schema_conformance]
MODES = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
REQUEST_TIMEOUT_S = 30


@dataclass
class FuzzReport:
    """What a run sent and got: cases by operation, statuses, and every failed check."""

    cases: int = 0
    by_operation: Counter[str] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)
    server_errors: list[str] = field(default_factory=list)
    undocumented: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def as_json(self) -> dict[str, Any]:
        return {"cases": self.cases, "seconds": round(self.seconds, 1),
                "cases_per_s": round(self.cases / max(self.seconds, 1e-9), 1),
                "server_errors": len(self.server_errors),
                "undocumented_statuses": len(self.undocumented),
                "failed_checks": len(self.failures),
                "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
                "by_operation": dict(sorted(self.by_operation.items())),
                "examples": (self.server_errors + self.undocumented + self.failures)[:10]}


def fuzz(base_url: str, cases: int, seed: int) -> FuzzReport:
    """At least `cases` requests spread over every operation of the document at base_url,
    half following the schema and half breaking it, drawn from `seed` (the same seed, the
    same requests)."""
    schema = schemathesis.openapi.from_url(f"{base_url}/api/openapi.json")
    operations = [found.ok() for found in schema.get_all_operations()
                  if isinstance(found, Ok)]  # an Err: an operation the document got wrong
    assert len(operations) == len(list(schema.get_all_operations()))
    report, started = FuzzReport(), time.perf_counter()
    with requests.Session() as session:
        # Rounds until enough were sent: an operation without parameters has no request
        # that breaks its schema, so the first round falls short.
        for round_number in range(cases):
            if report.cases >= cases:
                break
            per_run = math.ceil((cases - report.cases) / (len(operations) * len(MODES)))
            for operation in operations:
                for mode in MODES:
                    _run(operation, mode, per_run, seed + round_number, base_url, session,
                         report)
    report.seconds = time.perf_counter() - started
    return report


def _run(operation: Any, mode: GenerationMode, examples: int, seed: int, base_url: str,
         session: requests.Session, report: FuzzReport) -> None:
    """One operation in one generation mode until `examples` requests were sent."""
    sent = 0

    @hypothesis.settings(max_examples=examples, database=None, deadline=None,
                         phases=[Phase.generate], derandomize=False,
                         suppress_health_check=list(HealthCheck))
    @hypothesis.seed(seed)
    @hypothesis.given(operation.as_strategy(generation_mode=mode))
    def send(case: Any) -> None:
        nonlocal sent
        sent += 1
        _check(case, base_url, session, report)

    # Unsatisfiable: fewer distinct requests exist than were asked for (none, in negative
    # mode, for an operation without parameters).
    with contextlib.suppress(hypothesis.errors.Unsatisfiable):
        send()
    if sent:
        report.by_operation[f"{operation.label} ({mode.value})"] += sent


def _check(case: Any, base_url: str, session: requests.Session, report: FuzzReport) -> None:
    response = case.call(base_url=base_url, session=session, timeout=REQUEST_TIMEOUT_S)
    report.cases += 1
    report.statuses[response.status_code] += 1
    said = f"{case.operation.label} -> {response.status_code}: {case.as_curl_command()}"[:600]
    if response.status_code >= 500:
        report.server_errors.append(said)
    if not _documented(case.operation, response.status_code):
        report.undocumented.append(said)
    try:
        case.validate_response(response, checks=CHECKS)
    except FailureGroup as failure:  # one per failed check
        report.failures.append(f"{said}\n{failure}"[:1200])


def _documented(operation: Any, status: int) -> bool:
    declared = set(operation.definition.raw.get("responses", {}))
    return str(status) in declared or f"{status // 100}XX" in declared or "default" in declared


@functools.cache
def recorded_melody() -> JobResult:
    """One real melody job's result, made once per process."""
    from bot.jobs import run_engine

    return run_engine("melody", None, {"seed": 1, "title": "Velvet Harbour"})


def recorded_engine(kind: str, data: bytes | None, parameters: dict[str, Any]
                    ) -> JobResult:
    """The job runner of a fuzzed service: every job gets the recorded melody (frozen, so
    every job may share it)."""
    return recorded_melody()
