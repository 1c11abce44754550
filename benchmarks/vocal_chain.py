"""How long does the vocal chain take? 30 s of speech (the LibriSpeech clips, mono, 32 kHz)
through each style, printed as JSON.

    .venv/bin/python -m benchmarks.vocal_chain [--runs 7]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from engine import vocal_chain
from engine.audio import decode_file, fit_length

RATE = 32000
SECONDS = 30.0
DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
CLIPS = ("198-209-0000", "3436-172162-0000", "5703-47212-0000")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args(argv)
    speech = np.concatenate([decode_file(DATA / "speech" / f"{c}.ogg", sample_rate=RATE).samples
                             for c in CLIPS])
    vocal = fit_length(speech, round(SECONDS * RATE))
    results = {}
    for style in vocal_chain.STYLES:
        start = time.perf_counter()
        vocal_chain.process(vocal, RATE, style)  # builds the chain
        first_s = time.perf_counter() - start
        times = []
        for _ in range(args.runs):
            start = time.perf_counter()
            vocal_chain.process(vocal, RATE, style)
            times.append(time.perf_counter() - start)
        results[style] = {"first_call_ms": round(first_s * 1000, 1),
                          "median_ms": round(float(np.median(times)) * 1000, 1),
                          "min_ms": round(min(times) * 1000, 1)}
    print(json.dumps({"seconds": SECONDS, "rate_hz": RATE, "runs": args.runs,
                      "styles": results}, indent=2))


if __name__ == "__main__":
    main()
