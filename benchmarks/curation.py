"""The weekly album, measured: clip features (target 30 ms per 15 s clip), choosing and
ordering 10,000 candidates (target 10 s), building a 20-song album (target 5 s), and how well
neighbours fit (key and tempo distance) in our order, a random order and a greedy all-pairs
chromaprint pairing on the same candidates. Prints JSON.

    .venv/bin/python -m benchmarks.curation [--candidates 10000] [--weeks 50] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from engine import arrange, curate, pipeline
from engine.audio import decode, decode_file, integrated_loudness
from engine.curate import Candidate, ClipFeatures
from engine.theory import Key

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
RATE = 22050
CLIP_S = 15.0
DUPLICATE_SHARE = 0.05  # candidates that are re-uploads of another one
T = TypeVar("T")


def _timed(work: Callable[[], T]) -> tuple[T, float]:
    start = time.perf_counter()
    result = work()
    return result, time.perf_counter() - start


def _cpu_s() -> float:
    """CPU seconds used so far by this process and its finished children (ffmpeg): on a
    shared machine, what the work costs apart from waiting for a core."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(
        resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _clips() -> list[np.ndarray]:
    """15 s windows (every 7.5 s) of the recorded music, and the three speech clips."""
    clips = []
    for path in sorted((DATA / "music").glob("*.ogg")):
        samples = decode_file(path, sample_rate=RATE, max_duration_s=600).samples
        step, size = round(CLIP_S / 2 * RATE), round(CLIP_S * RATE)
        clips += [samples[i:i + size] for i in range(0, len(samples) - size + 1, step)]
    for path in sorted((DATA / "speech").glob("*.ogg")):
        clips.append(decode_file(path, sample_rate=RATE, max_duration_s=CLIP_S).samples)
    return clips


def _features_ms(clips: Sequence[np.ndarray]) -> tuple[dict[str, float], list[ClipFeatures]]:
    curate.features(clips[0], RATE)  # first call: imports, caches
    seconds, cpu_seconds, found = [], [], []
    for clip in clips:
        cpu = time.process_time()
        features, elapsed = _timed(lambda clip=clip: curate.features(clip, RATE))  # type: ignore[misc]
        cpu_seconds.append(time.process_time() - cpu)
        seconds.append(elapsed)
        found.append(features)
    values, cpu_values = np.array(seconds) * 1000, np.array(cpu_seconds) * 1000
    return {"clips": len(clips), "median_ms": round(float(np.median(values)), 2),
            "p95_ms": round(float(np.percentile(values, 95)), 2),
            "max_ms": round(float(values.max()), 2),
            "cpu_median_ms": round(float(np.median(cpu_values)), 2),
            "cpu_p95_ms": round(float(np.percentile(cpu_values, 95)), 2)}, found


def _synthetic(real: Sequence[ClipFeatures], count: int, seed: int
               ) -> tuple[list[Candidate], list[tuple[int, int]]]:
    """Candidates with realistic spreads: keys on all 24, tempos around 105 BPM (SingSong
    sings at 72-140), timbres near the real clips', quality mostly high, a few votes, people
    with one to many songs. Fingerprints are real ones (of the clips in `real`) XORed with a
    random mask of 12-20 bits each, so each is distinct; DUPLICATE_SHARE of them are copies
    of an earlier candidate, shifted by up to 10 items with 2-8 % of their bits flipped.
    Returns the candidates and the (copy, original) index pairs."""
    rng = np.random.default_rng(seed)
    people = np.minimum(rng.zipf(1.6, count), 40) + rng.integers(0, count // 4, count)
    made: list[Candidate] = []
    copies: list[tuple[int, int]] = []
    for track_id in range(count):
        base = real[int(rng.integers(len(real)))]
        if made and rng.random() < DUPLICATE_SHARE:
            original = int(rng.integers(len(made)))
            items = np.array(made[original].features.fingerprint, dtype=np.uint32)[
                int(rng.integers(0, 11)):]
            flips = rng.random((len(items), 32)) < rng.uniform(0.02, 0.08)
            items ^= (flips * (1 << np.arange(32, dtype=np.uint64))).sum(axis=1).astype(
                np.uint32)
            fingerprint = tuple(int(v) for v in items)
            copies.append((track_id, original))
        else:
            bits = rng.choice(32, int(rng.integers(12, 21)), replace=False)
            mask = int(sum(1 << int(b) for b in bits))
            fingerprint = tuple(v ^ mask for v in base.fingerprint)
        key = Key(int(rng.integers(12)), "major" if rng.random() < 0.6 else "minor")
        timbre = np.clip(np.array(base.timbre) + rng.normal(0, 0.05, len(base.timbre)), 0, 1)
        quality = replace(base.quality, score=round(float(np.clip(rng.beta(6, 1.5), 0, 1)), 4))
        features = replace(base, key=key.name, fifths=curate.fifths_position(key),
                           tempo_bpm=round(float(np.clip(rng.normal(105, 18), 72, 140)), 1),
                           timbre=tuple(round(float(t), 4) for t in timbre), quality=quality,
                           fingerprint=fingerprint)
        made.append(Candidate(track_id=track_id, person_id=int(people[track_id]),
                              features=features, votes=int(rng.poisson(1.5))))
    return made, copies


def _similarity_matrix(fingerprints: Sequence[Sequence[int]]) -> np.ndarray:
    """curate.similarity for all pairs at once (vectorised over the second fingerprint)."""
    n = len(fingerprints)
    length = max(len(f) for f in fingerprints)
    items = np.zeros((n, length), np.uint32)
    valid = np.zeros((n, length), bool)
    for i, f in enumerate(fingerprints):
        items[i, :len(f)], valid[i, :len(f)] = f, True
    max_offset = round(curate.MAX_OFFSET_S / curate.CHROMAPRINT_ITEM_S)
    best = np.zeros((n, n))
    for i in range(n):
        for offset in range(-max_offset, max_offset + 1):
            if offset >= 0:
                left, left_ok = items[i, offset:], valid[i, offset:]
                right, right_ok = items[:, :length - offset], valid[:, :length - offset]
            else:
                left, left_ok = items[i, :length + offset], valid[i, :length + offset]
                right, right_ok = items[:, -offset:], valid[:, -offset:]
            both = left_ok & right_ok
            overlap = both.sum(axis=1)
            errors = (np.bitwise_count(left ^ right) * both).sum(axis=1)
            need = np.minimum(curate.MIN_OVERLAP_ITEMS,
                              np.minimum(valid[i].sum(), valid.sum(axis=1)))
            score = np.where(overlap >= np.maximum(need, 1),
                             1.0 - errors / (32 * np.maximum(overlap, 1)), 0.0)
            best[i] = np.maximum(best[i], score)
    return best


def _greedy_chromaprint(candidates: Sequence[Candidate]) -> list[Candidate]:
    """Start from the first; always go on to the unplayed one with the most similar
    fingerprint (all pairs compared)."""
    similar = _similarity_matrix([c.features.fingerprint for c in candidates])
    path, left = [0], set(range(1, len(candidates)))
    while left:
        here = path[-1]
        following = max(sorted(left), key=lambda j: similar[here, j])
        path.append(following)
        left.remove(following)
    return [candidates[i] for i in path]


def _ordering_quality(groups: Sequence[Sequence[Candidate]], seed: int) -> dict[str, Any]:
    """Mean neighbour key distance (fifths) and tempo distance (%) over the groups, for our
    order, a random order and the greedy chromaprint pairing of each group."""
    rng = random.Random(seed)
    totals: dict[str, list[dict[str, float]]] = {"ours": [], "random": [],
                                                 "greedy_chromaprint": []}
    for group in groups:
        shuffled = list(group)
        rng.shuffle(shuffled)
        for name, ordered in (("ours", curate.order(group)), ("random", shuffled),
                              ("greedy_chromaprint", _greedy_chromaprint(shuffled))):
            totals[name].append(curate.neighbour_distances([c.features for c in ordered]))
    return {name: {"key_fifths": round(float(np.mean([r["key_fifths"] for r in rows])), 3),
                   "tempo_pct": round(float(np.mean([r["tempo_pct"] for r in rows])), 2)}
            for name, rows in totals.items()}


def _album_songs(count: int) -> list[tuple[np.ndarray, int, ClipFeatures, str]]:
    """Real songs of about 15 s: the three speech clips sung, then melodies with a band."""
    songs: list[tuple[np.ndarray, int, ClipFeatures, str]] = []
    for path in sorted((DATA / "speech").glob("*.ogg")):
        song = pipeline.sing(path.read_bytes(), seed=len(songs), audio_format="wav",
                             extras=False)
        samples = decode(song.audio, sample_rate=arrange.SAMPLE_RATE).samples
        features = curate.features(samples, arrange.SAMPLE_RATE, key=song.melody.key,
                                   tempo_bpm=song.melody.tempo_bpm, downbeat_s=0.0,
                                   pitch_accuracy=song.summary["pitch_accuracy"])
        songs.append((samples, arrange.SAMPLE_RATE, features, f"{path.stem} (sung)"))
    styles = sorted(arrange.STYLES)
    while len(songs) < count:
        seed = len(songs)
        tempo = 100.0 + 6 * (seed % 7)
        piece = pipeline.melody(seed=seed, bars=round(CLIP_S * tempo / 240), tempo_bpm=tempo,
                                formats=("wav",), style=styles[seed % len(styles)])
        samples = decode(piece.files["wav"], sample_rate=arrange.SAMPLE_RATE).samples
        features = curate.features(samples, arrange.SAMPLE_RATE, key=piece.melody.key,
                                   tempo_bpm=tempo, downbeat_s=0.0)
        songs.append((samples, arrange.SAMPLE_RATE, features, f"melody {seed}"))
    return songs


def _build_album(songs: Sequence[tuple[np.ndarray, int, ClipFeatures, str]]
                 ) -> dict[str, Any]:
    """Order the songs and build the album (curate.build_album: the encoders and the cover
    run side by side); then each stage again, one after another, for its own time."""
    candidates = [Candidate(i, i, f) for i, (_, _, f, _) in enumerate(songs)]
    curate.cover_png([], "warm-up")  # first call: matplotlib's import and fonts
    title = "SingSong benchmark week"
    cpu = _cpu_s()
    start = time.perf_counter()
    playlist = [songs[c.track_id] for c in curate.order(candidates)]
    album = curate.build_album([(s, r, f) for s, r, f, _ in playlist],
                               [t for _, _, _, t in playlist], album_title=title)
    total, total_cpu = time.perf_counter() - start, _cpu_s() - cpu
    stages: dict[str, float] = {}
    mix, stages["assemble_s"] = _timed(lambda: curate.assemble(
        [(s, r, f) for s, r, f, _ in playlist]))
    for fmt in curate.ALBUM_FORMATS:
        _, stages[f"encode_{fmt}_s"] = _timed(lambda fmt=fmt: curate.encode_album(  # type: ignore[misc]
            mix, [t for _, _, _, t in playlist], fmt, album_title=title))
    _, stages["cover_s"] = _timed(lambda: curate.cover_png([f for _, _, f, _ in playlist], title))
    return {"build_album_20_s": round(total, 3),
            "build_album_20_cpu_s": round(total_cpu, 3),
            "stages_one_by_one_s": {k: round(v, 3) for k, v in stages.items()},
            "album_duration_s": round(album.mix.duration_s, 1),
            "album_lufs": round(integrated_loudness(album.mix.samples, album.mix.sample_rate),
                                2),
            "album_true_peak_dbtp": round(
                20 * float(np.log10(curate.true_peak(album.mix.samples))), 2),
            "bytes": {fmt: len(data) for fmt, data in album.files.items()}}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidates", type=int, default=10_000)
    parser.add_argument("--weeks", type=int, default=50, help="20-song groups for ordering")
    parser.add_argument("--sample", type=int, default=300, help="one larger group, ordered")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    clips = _clips()
    features_ms, real = _features_ms(clips)

    candidates, copies = _synthetic(real, args.candidates, args.seed)
    chosen, choose_s = _timed(lambda: curate.choose(candidates, size=20, per_person=2))
    _, order_20_s = _timed(lambda: curate.order(chosen))
    groups, groups_s = _timed(lambda: curate.duplicate_groups(
        [c.features.fingerprint for c in candidates]))
    all_ordered, order_all_s = _timed(lambda: curate.order(candidates))
    assert sorted(c.track_id for c in all_ordered) == list(range(len(candidates)))

    rng = random.Random(args.seed)
    weeks = [rng.sample(candidates, 20) for _ in range(args.weeks)]
    quality_20 = _ordering_quality(weeks, args.seed)
    quality_large = _ordering_quality([rng.sample(candidates, args.sample)], args.seed)

    album = _build_album(_album_songs(20))
    result = {
        "features_15s_clip": features_ms,
        "candidates": len(candidates),
        "choose_and_order_10000_s": round(choose_s + order_20_s, 3),
        "choose_s": round(choose_s, 3),
        "order_chosen_20_s": round(order_20_s, 4),
        "order_all_10000_s": round(order_all_s, 3),
        "duplicates": {"copies_made": len(copies),
                       "copies_grouped_with_their_original": sum(
                           groups[a] == groups[b] for a, b in copies),
                       "candidates_merged_into_groups": len(candidates) - len(set(groups)),
                       "duplicate_groups_s": round(groups_s, 3)},
        "chosen": len(chosen),
        "ordering_quality_20_songs": {**quality_20, "weeks": args.weeks},
        f"ordering_quality_{args.sample}_songs": quality_large,
        **album,
        "targets_met": {
            "features_at_most_30_ms": features_ms["p95_ms"] <= 30,
            "features_cpu_at_most_30_ms": features_ms["cpu_p95_ms"] <= 30,
            "choose_and_order_10000_at_most_10_s": choose_s + order_all_s <= 10,
            "build_album_20_at_most_5_s": album["build_album_20_s"] <= 5,
        },
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
