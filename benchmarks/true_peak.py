"""How far do the encoders push a song's true peak, and under what true-peak ceiling should
the mastering put the mix so that audio.encode_true_peak rarely has to encode twice?
Printed as JSON.

    .venv/bin/python -m benchmarks.true_peak [--styles pop,lofi,ballad,robot]

Each LibriSpeech clip is sung (seed 1) in each style; its mix (song.samples, 32 kHz, as the
pipeline masters it) is measured (true peak, BS.1770-4 Annex 2), encoded to OGG/Opus
(64 kb/s) and MP3, decoded with libsndfile and measured again: the overshoot is the decoded
true peak minus the mix's. Then the mix is limited to each candidate ceiling on its true
peak (audio.limiter_gain(ceiling_dbtp=...)) and the same is done: how many decoded files
are over -1 dBTP (each would be encoded again).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from engine import arrange, audio, pipeline

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
CLIPS = ("198-209-0000", "3436-172162-0000", "5703-47212-0000")
FORMATS = ("ogg", "mp3")
TARGET_DBTP = -1.0
CEILINGS_DBTP = (-1.0, -1.5, -2.0, -2.5, -3.0)


def measure(mix: np.ndarray) -> dict[str, float]:
    """The mix's true peak and, per format, the decoded file's and the overshoot (dB)."""
    rate = arrange.SAMPLE_RATE
    before = audio.true_peak_dbtp(mix, rate)
    row = {"true_peak_dbtp": round(before, 3)}
    for fmt in FORMATS:
        after = audio.decoded_true_peak_dbtp(audio.encode(mix, rate, fmt))
        row[f"{fmt}_dbtp"] = round(after, 3)
        row[f"{fmt}_overshoot_db"] = round(after - before, 3)
    return row


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--styles", default=",".join(arrange.STYLES))
    args = parser.parse_args(argv)
    rate = arrange.SAMPLE_RATE
    as_mastered: dict[str, dict[str, float]] = {}
    by_ceiling: dict[str, dict[str, dict[str, float]]] = {f"{c:g}": {} for c in CEILINGS_DBTP}
    for clip in CLIPS:
        data = (DATA / "speech" / f"{clip}.ogg").read_bytes()
        for style in args.styles.split(","):
            song = pipeline.sing(data, seed=1, style=style, audio_format="wav", extras=False)
            mix = song.samples
            name = f"{clip}/{style}"
            as_mastered[name] = {"sample_peak_dbfs": round(
                20 * float(np.log10(np.max(np.abs(mix)))), 3)} | measure(mix)
            for ceiling in CEILINGS_DBTP:
                limited = mix * audio.limiter_gain(mix, rate, ceiling_dbtp=ceiling)
                by_ceiling[f"{ceiling:g}"][name] = measure(limited)
    print(json.dumps({
        "rate_hz": rate, "formats": {"ogg": "Opus 64 kb/s", "mp3": "LAME -q:a 4"},
        "as_mastered": {"songs": as_mastered, "summary": _summary(as_mastered)},
        "limited_to_true_peak": {c: {"summary": _summary(rows), "songs": rows}
                                 for c, rows in by_ceiling.items()},
    }, indent=2))


def _summary(rows: dict[str, dict[str, float]]) -> dict[str, float]:
    summary: dict[str, float] = {}
    for fmt in FORMATS:
        overshoot = np.array([r[f"{fmt}_overshoot_db"] for r in rows.values()])
        decoded = np.array([r[f"{fmt}_dbtp"] for r in rows.values()])
        summary |= {
            f"{fmt}_overshoot_median_db": round(float(np.median(overshoot)), 3),
            f"{fmt}_overshoot_max_db": round(float(overshoot.max()), 3),
            f"{fmt}_decoded_max_dbtp": round(float(decoded.max()), 3),
            f"{fmt}_over_target": int(np.sum(decoded > TARGET_DBTP)),
        }
    summary["songs"] = len(rows)
    return summary


if __name__ == "__main__":
    main()
