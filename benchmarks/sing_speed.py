"""How fast a voice note becomes a song, and how much memory a worker needs. Prints JSON.

With models loaded (melody model, soundfont), each LibriSpeech clip (14-17 s) is sung a few
times in each form: wall time per stage (median) and in all (targets, warm, a median per 15 s
of voice: 0.9 s for the short form, the verse alone; 1.2 s for the full song with its
chorus); then the whole `singsong sing` process; then the peak resident memory of a worker
process that sings every clip in both forms (target 500 MB). Beside our figure, measured in
the same runs on the same clips, the floor: the ffmpeg command decoding the clip (as
`engine.audio.decode` runs it) and the ffmpeg command encoding a song as long as ours to
Opus at the engine's settings (the engine itself encodes in-process through PyAV).

    .venv/bin/python -m benchmarks.sing_speed [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SPEECH = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "speech"


def ffmpeg_opus(samples: np.ndarray, sample_rate: int) -> bytes:
    """The song encoded to Ogg/Opus by an ffmpeg process (64 kb/s VBR, complexity 5)."""
    from engine import audio

    command = [audio.ffmpeg_path(), "-hide_banner", "-loglevel", "error", "-f", "f32le",
               "-ar", str(sample_rate), "-ac", "1", "-i", "pipe:0", "-ar", "48000",
               "-c:a", "libopus", "-b:a", "64k", "-vbr", "on", "-application", "audio",
               "-compression_level", "5", "-f", "ogg", "pipe:1"]
    return subprocess.run(command, input=samples.astype("<f4").tobytes(),
                          capture_output=True, check=True).stdout


TARGETS_S = {"short": 0.9, "full": 1.2}  # per 15 s of voice, median


def worker(clips: list[Path], runs: int) -> dict[str, object]:
    """Sing each clip `runs` times in this process; report timings and peak memory."""
    from engine import arrange
    from engine.melody.model import load_model
    from engine.pipeline import sing

    started = time.perf_counter()
    load_model()
    arrange.render(arrange.melody_midi(__import__("engine.melody.compose",
                                                  fromlist=["compose"]).compose(seed=0)))
    warm_s = time.perf_counter() - started
    sing(clips[0].read_bytes(), seed=0, extras=False)  # first call: imports, caches
    by_form = {form: _time_form(form, clips, runs) for form in TARGETS_S}
    return {"load_models_s": round(warm_s, 3), **by_form,
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}


def _time_form(form: str, clips: list[Path], runs: int) -> dict[str, object]:
    """Sing each clip `runs` times in `form`, with the ffmpeg floor of the same clip and song
    measured right after each."""
    from engine import arrange, audio
    from engine.pipeline import sing

    stages: dict[str, list[float]] = {}
    totals: list[float] = []
    durations: list[float] = []
    floors: dict[str, list[float]] = {"decode": [], "encode": []}
    for clip in clips:
        data = clip.read_bytes()
        for seed in range(runs):
            start = time.perf_counter()
            song = sing(data, seed=seed, form=form, extras=False)
            totals.append(time.perf_counter() - start)
            durations.append(song.summary["input_duration_s"])
            for name, seconds in song.timings_s.items():
                stages.setdefault(name, []).append(seconds)
            start = time.perf_counter()
            audio.decode(data, sample_rate=22050)
            floors["decode"].append(time.perf_counter() - start)
            start = time.perf_counter()
            ffmpeg_opus(song.samples, arrange.SAMPLE_RATE)
            floors["encode"].append(time.perf_counter() - start)
    per_15_s = np.array(totals) * 15.0 / np.array(durations)
    floor_per_15_s = ((np.array(floors["decode"]) + np.array(floors["encode"])) * 15.0 /
                      np.array(durations))
    return {
        "song_s": {"median": round(float(np.median(totals)), 3),
                   "p95": round(float(np.percentile(totals, 95)), 3)},
        "song_s_per_15_s_of_voice": {"median": round(float(np.median(per_15_s)), 3),
                                     "p95": round(float(np.percentile(per_15_s, 95)), 3)},
        "floor_s_per_15_s_of_voice": {
            "median": round(float(np.median(floor_per_15_s)), 3),
            "p95": round(float(np.percentile(floor_per_15_s, 95)), 3),
            "ffmpeg_decode_median_s": round(float(np.median(floors["decode"])), 4),
            "ffmpeg_opus_encode_median_s": round(float(np.median(floors["encode"])), 4)},
        "stage_median_s": {k: round(float(np.median(v)), 4) for k, v in stages.items()},
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    clips = sorted(SPEECH.glob("*.ogg"))
    if args.worker:
        print(json.dumps(worker(clips, args.runs)))
        return
    # The worker runs in its own process so that its peak memory is its own.
    result = subprocess.run([sys.executable, "-m", "benchmarks.sing_speed", "--worker",
                             "--runs", str(args.runs)], capture_output=True, text=True,
                            check=True)
    in_process = json.loads(result.stdout)
    singsong = Path(sys.executable).parent / "singsong"
    process_s = []
    with tempfile.TemporaryDirectory() as folder:
        for clip in clips:
            start = time.perf_counter()
            subprocess.run([str(singsong), "sing", str(clip), "-o", f"{folder}/x.ogg",
                            "--seed", "1"], check=True, capture_output=True)
            process_s.append(time.perf_counter() - start)
    medians = {form: in_process[form]["song_s_per_15_s_of_voice"]["median"]
               for form in TARGETS_S}
    floors = {form: in_process[form]["floor_s_per_15_s_of_voice"]["median"]
              for form in TARGETS_S}
    print(json.dumps({
        "clips": [c.name for c in clips],
        "worker": in_process,
        "process_singsong_sing_s": {"median": round(float(np.median(process_s)), 3),
                                    "max": round(float(np.max(process_s)), 3)},
        "per_15_s_of_voice_median": {form: {"song_s": medians[form], "floor_s": floors[form]}
                                     for form in TARGETS_S},
        "targets_met": {
            **{f"{form}_per_15_s_median_at_most_{target}_s": medians[form] <= target
               for form, target in TARGETS_S.items()},
            "worker_peak_rss_at_most_500_mb": in_process["peak_rss_mb"] <= 500,
        },
    }, indent=2))


if __name__ == "__main__":
    main()
