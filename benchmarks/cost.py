"""What a song costs: the CPU time of the service's own processes (`singsong serve`, its pool
workers and their ffmpeg children; not the fake Telegram server, which runs in this process)
per voice note, for the full song and for its short version, one note at a time, beside the
floor of the same clip (ffmpeg decoding it and encoding it to Opus, as processes; and the
same two steps in this process through PyAV, beside it).

Each note goes to the fake Bot API as a Telegram voice note; when its full song arrives, the
song's "Short version" button is pressed, and the short song waited for. The CPU of the whole
process tree is read from /proc before and after each. The stages come from the jobs' own
wall-clock timings (`timings_s`, stored with each job): the stages of one song run on both
cores at once (the band beside the voice), so their CPU is measured only as a whole.

Prints JSON: core-seconds per song (p50, p95) for each form, per 15 s of voice, songs per
minute per core, the floor, the stages' median wall time, and the peak resident memory of
`singsong serve` and of its largest child (a pool worker).

    .venv/bin/python -m benchmarks.cost [--rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import resource
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks import print_json
from benchmarks.e2e import CLIPS, SPEECH, percentile, replying_to
from tests.fakes.telegram_api import ApiCall, FakeTelegram

SINGSONG = Path(sys.executable).parent / "singsong"
TICKS_PER_S = os.sysconf("SC_CLK_TCK")
REPLY_TIMEOUT_S = 180.0
PER_S = 15.0  # figures per 15 s of voice, as the issue asks


def tree_cpu_s(root: int) -> float:
    """User + system CPU of a process and all its descendants, alive or reaped (s)."""
    stats = _stats()
    return sum(sum(int(value) for value in stats[pid][11:15]) / TICKS_PER_S
               for pid in _family(root, stats))


def tree_peak_rss_mb(root: int) -> dict[str, float]:
    """The peak resident memory (VmHWM) of a process and of the largest of its descendants
    (the pool workers), in MB."""
    peaks: dict[int, float] = {}
    for pid in _family(root, _stats()):
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue  # it ended meanwhile
        peaks[pid] = int(status.split("VmHWM:")[1].split()[0]) / 1024
    children = [mb for pid, mb in peaks.items() if pid != root]
    return {"serve": round(peaks.get(root, 0.0), 1),
            "largest_child": round(max(children, default=0.0), 1)}


def _stats() -> dict[int, list[str]]:
    """Every process's /proc stat fields after its name (ppid first)."""
    stats: dict[int, list[str]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stats[int(entry.name)] = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # it ended meanwhile
    return stats


def _family(root: int, stats: dict[int, list[str]]) -> set[int]:
    """The process and all its descendants."""
    parents = {pid: int(fields[1]) for pid, fields in stats.items()}
    family, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent]
        family.update(children)
        frontier += children
    return family


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def serve(data_dir: Path, fake: FakeTelegram) -> subprocess.Popen[bytes]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("SINGSONG_")}
    environment |= {"SINGSONG_DATA_DIR": str(data_dir), "SINGSONG_WEB_PORT": str(free_port()),
                    "SINGSONG_TELEGRAM_TOKEN": fake.token,
                    "SINGSONG_TELEGRAM_BASE_URL": fake.base_url,
                    "SINGSONG_TELEGRAM_BASE_FILE_URL": fake.base_file_url}
    return subprocess.Popen([str(SINGSONG), "serve"], cwd=data_dir, env=environment,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def song_to(user: int, message_id: int) -> Callable[[ApiCall], bool]:
    def matches(call: ApiCall) -> bool:
        return replying_to(call) == (user, message_id)
    return matches


def short_button(song: ApiCall) -> str:
    keys = song.params["reply_markup"]["inline_keyboard"]
    return str(next(key["callback_data"] for row in keys for key in row
                    if key["text"] == "Short version"))


async def until_measured(database: Path) -> None:
    """Wait until every stored song has its curation features: a worker measures them after
    the reply, in the background, and their CPU belongs to the song."""
    deadline = time.monotonic() + REPLY_TIMEOUT_S
    while time.monotonic() < deadline:
        with contextlib.closing(sqlite3.connect(database)) as db:
            unmeasured = db.execute("SELECT count(*) FROM tracks WHERE features IS NULL "
                                    "OR features = 'null'").fetchone()[0]
        if unmeasured == 0:
            return
        await asyncio.sleep(0.05)
    raise RuntimeError("songs' features were not stored in time")


async def one_note(fake: FakeTelegram, server: int, user: int, clip: bytes,
                   database: Path) -> dict[str, float]:
    """A voice note, then its Short version: the CPU each cost the service (s), the
    background measuring of each song's features included."""
    before = tree_cpu_s(server)
    asked = await fake.voice(user, user, clip, duration=15)
    song = await fake.wait_for(song_to(user, asked), REPLY_TIMEOUT_S)
    await until_measured(database)
    full = tree_cpu_s(server)
    song_id = int(song.result["message_id"])
    await fake.press(user, user, song_id, short_button(song))
    await fake.wait_for(lambda call: call.method == "sendVoice" and call.ok
                        and call.params.get("reply_parameters", {}).get("message_id")
                        == song_id, REPLY_TIMEOUT_S)
    await until_measured(database)
    return {"full": full - before, "short": tree_cpu_s(server) - full}


def floor_cpu_s(clip: Path) -> dict[str, float]:
    """CPU of ffmpeg decoding the clip and encoding it to Opus, as two processes (s)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    pcm = subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-i", str(clip),
                          "-f", "f32le", "-ac", "1", "-ar", "48000", "pipe:1"],
                         capture_output=True, check=True).stdout
    middle = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-f", "f32le", "-ar",
                    "48000", "-ac", "1", "-i", "pipe:0", "-c:a", "libopus", "-b:a", "64k",
                    "-f", "ogg", "pipe:1"], input=pcm, capture_output=True, check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {"decode": _cpu(middle) - _cpu(before), "encode": _cpu(after) - _cpu(middle)}


def floor_in_process_cpu_s(clip: Path) -> dict[str, float]:
    """The same decode and Opus encode in this process through FFmpeg's libraries (PyAV;
    the encode is engine.audio.encode's), as CPU seconds of this process."""
    import av
    import numpy as np

    from engine import audio

    started = time.process_time()
    with av.open(str(clip), "r") as container:
        mono = av.AudioResampler(format="flt", layout="mono", rate=48000)
        frames = [out.to_ndarray()[0] for frame in container.decode(container.streams.audio[0])
                  for out in mono.resample(frame)]
        frames += [out.to_ndarray()[0] for out in mono.resample(None)]
    samples = np.concatenate(frames)
    decoded = time.process_time()
    audio.encode(samples, 48000, "ogg")
    return {"decode": decoded - started, "encode": time.process_time() - decoded}


def _cpu(usage: resource.struct_rusage) -> float:
    return usage.ru_utime + usage.ru_stime


def clip_seconds(clip: Path) -> float:
    probe = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration",
                            "-of", "csv=p=0", str(clip)], capture_output=True, check=True)
    return float(probe.stdout)


def stage_medians(database: Path) -> dict[str, dict[str, float]]:
    """The median wall time of each stage, by form, from the jobs the run made."""
    import json

    with sqlite3.connect(database) as db:
        rows = db.execute("SELECT parameters, timings_s FROM jobs WHERE kind = 'sing' "
                          "AND status = 'done'").fetchall()
    stages: dict[str, dict[str, list[float]]] = {}
    for parameters, timings in rows[1:]:  # the first warmed the workers up
        form = json.loads(parameters).get("form", "full")
        for name, seconds in json.loads(timings).items():
            stages.setdefault(form, {}).setdefault(name, []).append(float(seconds))
    return {form: {name: round(statistics.median(values), 3) for name, values in found.items()}
            for form, found in stages.items()}


async def until_polling(fake: FakeTelegram, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 120
    while fake.polls_waiting == 0:
        if server.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("singsong serve did not start polling")
        await asyncio.sleep(0.1)


async def measure(rounds: int) -> dict[str, Any]:
    clips = [SPEECH / name for name in CLIPS]
    durations = {clip: clip_seconds(clip) for clip in clips}
    costs: dict[str, list[float]] = {"full": [], "short": []}
    per_15_s: dict[str, list[float]] = {"full": [], "short": []}
    with tempfile.TemporaryDirectory(prefix="singsong-cost-") as folder:
        async with FakeTelegram() as fake:
            server = serve(Path(folder), fake)
            database = Path(folder) / "singsong.db"
            try:
                await until_polling(fake, server)
                await one_note(fake, server.pid, 1, clips[0].read_bytes(),
                               database)  # warm up
                for round_index in range(rounds):
                    for index, clip in enumerate(clips):
                        spent = await one_note(fake, server.pid, 10 + round_index * 10 + index,
                                               clip.read_bytes(), database)
                        for form, seconds in spent.items():
                            costs[form].append(seconds)
                            per_15_s[form].append(seconds * PER_S / durations[clip])
                peak_rss_mb = tree_peak_rss_mb(server.pid)
            finally:
                server.terminate()
                server.wait(60)
            stages = stage_medians(database)
    floors = {way: [{step: seconds * PER_S / durations[clip]
                     for step, seconds in measure_floor(clip).items()} for clip in clips]
              for way, measure_floor in (("processes", floor_cpu_s),
                                         ("in_process", floor_in_process_cpu_s))}
    return {"cores": os.cpu_count(), "songs_per_form": len(costs["full"]),
            "core_s_per_song": {form: _spread(values) for form, values in costs.items()},
            "core_s_per_15_s_of_voice": {form: _spread(v) for form, v in per_15_s.items()},
            "songs_per_minute_per_core": {form: round(60 / statistics.median(values), 1)
                                          for form, values in costs.items()},
            "floor_core_s_per_15_s": round(statistics.median(
                sum(steps.values()) for steps in floors["processes"]), 3),
            # Issue 15's choice: ffmpeg processes or FFmpeg's libraries in the process.
            "floor_by_step_core_s_per_15_s": {
                way: {step: round(statistics.median(steps[step] for steps in found), 4)
                      for step in ("decode", "encode")} for way, found in floors.items()},
            "target_core_s_full_per_15_s": 1.0, "peak_rss_mb": peak_rss_mb,
            "target_worker_peak_rss_mb": 400, "stage_wall_s_median": stages}


def _spread(values: list[float]) -> dict[str, float]:
    return {"p50": round(statistics.median(values), 3),
            "p95": round(percentile(values, 0.95), 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    print_json(asyncio.run(measure(args.rounds)))


if __name__ == "__main__":
    main()
