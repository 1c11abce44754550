"""How fast a melody comes: one 8-bar melody with the model loaded (target 50 ms), and the
whole `singsong melody -o x.ogg` process (target 3 s). Prints JSON.

    .venv/bin/python -m benchmarks.melody_speed [--runs 50] [--process-runs 5]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from engine.melody.compose import compose
from engine.melody.model import load_model
from engine.pipeline import melody


def _summary(seconds: list[float]) -> dict[str, float]:
    values = np.array(seconds) * 1000
    return {"median_ms": round(float(np.median(values)), 2),
            "p95_ms": round(float(np.percentile(values, 95)), 2),
            "max_ms": round(float(values.max()), 2)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--process-runs", type=int, default=5)
    args = parser.parse_args(argv)

    started = time.perf_counter()
    load_model()
    load_s = time.perf_counter() - started
    compose(seed=0)  # warm caches
    compose_s, notes = [], []
    for seed in range(args.runs):
        start = time.perf_counter()
        tune = compose(seed=seed, bars=8)
        compose_s.append(time.perf_counter() - start)
        notes.append(len(tune.notes))

    stages: dict[str, list[float]] = {}
    for seed in range(5):
        piece = melody(seed=seed, formats=("ogg",))
        for name, seconds in piece.timings_s.items():
            stages.setdefault(name, []).append(seconds)

    singsong = Path(sys.executable).parent / "singsong"
    process_s = []
    with tempfile.TemporaryDirectory() as folder:
        for seed in range(args.process_runs):
            start = time.perf_counter()
            subprocess.run([str(singsong), "melody", "-o", f"{folder}/x.ogg", "--seed",
                            str(seed)], check=True, capture_output=True)
            process_s.append(time.perf_counter() - start)

    compose_summary = _summary(compose_s)
    process_summary = _summary(process_s)
    print(json.dumps({
        "model_load_ms": round(load_s * 1000, 2),
        "compose_8_bars": {**compose_summary, "runs": args.runs,
                           "mean_notes": round(float(np.mean(notes)), 1)},
        "pipeline_ogg_stage_median_s": {k: round(float(np.median(v)), 4)
                                        for k, v in stages.items()},
        "process_singsong_melody_ogg": {**process_summary, "runs": args.process_runs},
        "targets_met": {
            "compose_8_bars_at_most_50_ms": compose_summary["p95_ms"] <= 50,
            "process_at_most_3_s": process_summary["max_ms"] <= 3000,
        },
    }, indent=2))


if __name__ == "__main__":
    main()
