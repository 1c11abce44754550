"""The weekly album, measured: clip features (target 30 ms per 15 s clip), choosing and
ordering 10,000 candidates (target 10 s), building a 20-song album (target 5 s); how well
neighbours fit (key and tempo distance) in our order, a random order, the order before issue
16 and a greedy all-pairs chromaprint pairing; and random weeks of 5-20 real songs built into
albums as a listener gets them: the decoded true peak of the OGG and MP3, each join's overlap
against a bar, the quietest 400 ms inside the album, its length against its tracks minus the
crossfades. Prints JSON.

    .venv/bin/python -m benchmarks.curation [--candidates 10000] [--weeks 8] [--seed 0]
    .venv/bin/python -m benchmarks.curation --librosa   # the features against librosa's

--weeks 50 (the issue's figure) took 13 minutes on two shared cores; the default 8 about
four.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import resource
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from engine import album as engine_album
from engine import arrange, audio, pipeline
from engine.album import Candidate, ClipFeatures, _fingerprints, _ordering
from engine.audio import decode, decode_file
from engine.theory import Key

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
RATE = 22050
CLIP_S = 15.0
ALBUM_RATE = 48000  # the scheduler's (Opus's own rate)
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
    engine_album.features(clips[0], RATE)  # first call: imports, caches
    seconds, cpu_seconds, found = [], [], []
    for clip in clips:
        cpu = time.process_time()
        features, elapsed = _timed(lambda clip=clip: engine_album.features(clip, RATE))  # type: ignore[misc]
        cpu_seconds.append(time.process_time() - cpu)
        seconds.append(elapsed)
        found.append(features)
    values, cpu_values = np.array(seconds) * 1000, np.array(cpu_seconds) * 1000
    return {"clips": len(clips), "median_ms": round(float(np.median(values)), 2),
            "p95_ms": round(float(np.percentile(values, 95)), 2),
            "max_ms": round(float(values.max()), 2),
            "cpu_median_ms": round(float(np.median(cpu_values)), 2),
            "cpu_p95_ms": round(float(np.percentile(cpu_values, 95)), 2)}, found


def _librosa_features(clips: Sequence[np.ndarray]) -> dict[str, Any]:
    """What engine.album hand-writes (STFT, chroma, onset strength, tempo and the beat grid),
    done by librosa on the same clips beside ours, after librosa's numba functions are
    compiled once (as a worker would at start); and the tempo both find for a tune at 120
    BPM (the test_features tune: G major notes every 0.5 s)."""
    import librosa

    hop = 512  # engine.album's onset hop at 22.05 kHz

    def theirs(clip: np.ndarray) -> float:
        power = np.abs(librosa.stft(clip, n_fft=2 * hop, hop_length=hop)) ** 2
        librosa.feature.chroma_stft(S=power, sr=RATE)
        onset = librosa.onset.onset_strength(y=clip, sr=RATE, hop_length=hop)
        tempo, _ = librosa.beat.beat_track(onset_envelope=onset, sr=RATE, hop_length=hop)
        return float(np.atleast_1d(tempo)[0])

    _, warm_up_s = _timed(lambda: theirs(clips[0]))
    engine_album.features(clips[0], RATE)
    ours_ms, librosa_ms = [], []
    for clip in clips:
        ours_ms.append(_timed(lambda clip=clip: engine_album.features(clip, RATE))[1] * 1000)  # type: ignore[misc]
        librosa_ms.append(_timed(lambda clip=clip: theirs(clip))[1] * 1000)  # type: ignore[misc]
    pitches = [67, 71, 74, 71, 67, 66, 67, 74, 72, 71, 69, 66, 67, 62, 67, 79] * 2
    t = np.arange(RATE // 2) / RATE
    notes = [sum(np.sin(2 * np.pi * 440.0 * 2 ** ((p - 69) / 12) * k * t) / k
                 for k in (1, 2, 3)) * np.exp(-3.0 * t) for p in pitches]
    tune = (0.3 * np.concatenate(notes)).astype(np.float32)
    return {"librosa_warm_up_s": round(warm_up_s, 1),
            "ours_whole_features_median_ms": round(float(np.median(ours_ms)), 1),
            "ours_whole_features_p95_ms": round(float(np.percentile(ours_ms, 95)), 1),
            "librosa_stft_chroma_onset_beats_median_ms": round(float(np.median(librosa_ms)), 1),
            "librosa_stft_chroma_onset_beats_p95_ms": round(float(np.percentile(librosa_ms, 95)),
                                                            1),
            "tune_120_bpm": {"ours": engine_album.features(tune, RATE).tempo_bpm,
                             "librosa": round(theirs(tune), 3)}}


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
        features = replace(base, key=key.name, fifths=engine_album.fifths_position(key),
                           tempo_bpm=round(float(np.clip(rng.normal(105, 18), 72, 140)), 1),
                           timbre=tuple(round(float(t), 4) for t in timbre), quality=quality,
                           fingerprint=fingerprint)
        made.append(Candidate(track_id=track_id, person_id=int(people[track_id]),
                              features=features, votes=int(rng.poisson(1.5))))
    return made, copies


def _similarity_matrix(fingerprints: Sequence[Sequence[int]]) -> np.ndarray:
    """engine_album.similarity for all pairs at once (vectorised over the second fingerprint)."""
    n = len(fingerprints)
    length = max(len(f) for f in fingerprints)
    items = np.zeros((n, length), np.uint32)
    valid = np.zeros((n, length), bool)
    for i, f in enumerate(fingerprints):
        items[i, :len(f)], valid[i, :len(f)] = f, True
    max_offset = round(_fingerprints.MAX_OFFSET_S / _fingerprints.CHROMAPRINT_ITEM_S)
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
            need = np.minimum(_fingerprints.MIN_OVERLAP_ITEMS,
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


OLD_WEIGHTS = (0.5, 4.0, 2.0)  # key step, |ln tempo ratio|, timbre: the order before issue 16


def _old_order(chosen: Sequence[Candidate]) -> list[Candidate]:
    """The order before issue 16: the circle of fifths snaking through tempo, then windowed
    2-opt under fixed weights (a 79-to-140 BPM step weighed like 4.6 fifths)."""
    points = [(c.features.fifths, math.log(c.features.tempo_bpm), c.features.timbre)
              for c in chosen]

    def cost(a: int, b: int) -> float:
        step = abs(points[a][0] - points[b][0]) % 12
        return (OLD_WEIGHTS[0] * min(step, 12 - step)
                + OLD_WEIGHTS[1] * abs(points[a][1] - points[b][1])
                + OLD_WEIGHTS[2] * math.dist(points[a][2], points[b][2]))

    path = _ordering._circle_path(chosen)
    for _ in range(_ordering.ORDER_PASSES):
        if not _ordering._improve_locally(path, cost):
            break
    return [chosen[i] for i in path]


def _ordering_quality(groups: Sequence[Sequence[Candidate]], seed: int) -> dict[str, Any]:
    """Mean neighbour key distance (fifths) and tempo distance (%) over the groups for our
    order, the old order, one shuffled order, the greedy chromaprint pairing, and a random
    order's expectation (the mean over all pairs); and in how many groups ours and the old
    order are under that expectation on both counts."""
    rng = random.Random(seed)
    rows: dict[str, list[dict[str, float]]] = {name: [] for name in (
        "ours", "old_order", "shuffled", "greedy_chromaprint", "random_expected")}
    both_better = {"ours": 0, "old_order": 0}
    for group in groups:
        shuffled = list(group)
        rng.shuffle(shuffled)
        expected = engine_album.random_order_distances([c.features for c in group])
        rows["random_expected"].append(expected)
        for name, ordered in (("ours", engine_album.order(group)), ("old_order", _old_order(group)),
                              ("shuffled", shuffled),
                              ("greedy_chromaprint", _greedy_chromaprint(shuffled))):
            found = engine_album.neighbour_distances([c.features for c in ordered])
            rows[name].append(found)
            if name in both_better and all(found[k] < expected[k] for k in expected):
                both_better[name] += 1
    means = {name: {"key_fifths": round(float(np.mean([r["key_fifths"] for r in found])), 3),
                    "tempo_pct": round(float(np.mean([r["tempo_pct"] for r in found])), 2)}
             for name, found in rows.items()}
    return {**means, "groups": len(groups),
            "groups_both_better_than_random": both_better}


Song = tuple[np.ndarray, int, ClipFeatures, str]


def _sung_songs() -> list[Song]:
    """The three speech clips sung (each about 20-40 s)."""
    songs: list[Song] = []
    for path in sorted((DATA / "speech").glob("*.ogg")):
        song = pipeline.sing(path.read_bytes(), seed=len(songs), audio_format="wav",
                             extras=False)
        samples = decode(song.audio, sample_rate=arrange.SAMPLE_RATE).samples
        features = engine_album.features(samples, arrange.SAMPLE_RATE, key=song.melody.key,
                                         tempo_bpm=song.melody.tempo_bpm, downbeat_s=0.0,
                                         pitch_accuracy=song.summary["pitch_accuracy"])
        songs.append((samples, arrange.SAMPLE_RATE, features, f"{path.stem} (sung)"))
    return songs


def _melody_songs(count: int, seed: int, tempo_range_bpm: tuple[float, float]) -> list[Song]:
    """Melodies with a band, about 15 s each, in random keys and styles at random tempi."""
    rng = random.Random(seed)
    styles = sorted(arrange.STYLES)
    songs: list[Song] = []
    for index in range(count):
        tempo = float(round(rng.uniform(*tempo_range_bpm)))
        key = Key(rng.randrange(12), rng.choice(["major", "minor"]))
        piece = pipeline.melody(seed=seed + index, key=key, bars=round(CLIP_S * tempo / 240),
                                tempo_bpm=tempo, formats=("wav",), style=rng.choice(styles))
        samples = decode(piece.files["wav"], sample_rate=arrange.SAMPLE_RATE).samples
        features = engine_album.features(samples, arrange.SAMPLE_RATE, key=piece.melody.key,
                                         tempo_bpm=tempo, downbeat_s=0.0)
        songs.append((samples, arrange.SAMPLE_RATE, features,
                      f"melody {seed + index} ({tempo:g} BPM)"))
    return songs


def _album_songs(count: int) -> list[Song]:
    """Real songs for the 20-song build: the three speech clips sung, then melodies."""
    songs = _sung_songs()
    return songs + _melody_songs(count - len(songs), seed=len(songs),
                                 tempo_range_bpm=(100.0, 136.0))


def _built(songs: Sequence[Song], title: str) -> tuple[list[Song], engine_album.Album]:
    """The songs in our order, built into an album at the scheduler's rate."""
    candidates = [Candidate(i, i, f) for i, (_, _, f, _) in enumerate(songs)]
    playlist = [songs[c.track_id] for c in engine_album.order(candidates)]
    return playlist, engine_album.build_album([(s, r, f) for s, r, f, _ in playlist],
                                              [t for _, _, _, t in playlist], album_title=title,
                                              sample_rate=ALBUM_RATE)


def _album_figures(playlist: Sequence[Song], album: engine_album.Album) -> dict[str, float]:
    """What a listener meets in one built album (see _weeks)."""
    mix = album.mix
    tracks_s = sum(f.end_s - f.start_s for _, _, f, _ in playlist)
    overlaps_s = sum(j.overlap_s for j in mix.joins)
    return {
        "ogg_dbtp": audio.decoded_true_peak_dbtp(album.files["ogg"]),
        "mp3_dbtp": audio.decoded_true_peak_dbtp(album.files["mp3"]),
        "min_overlap_bars": min((j.overlap_s / j.bar_s for j in mix.joins), default=1.0),
        "quietest_400ms_dbfs": engine_album.quietest_inside_dbfs(mix),
        "length_minus_tracks_minus_crossfades_s": mix.duration_s - (tracks_s - overlaps_s),
        "faded_tails_cut_s": sum(j.trimmed_s for j in mix.joins),
        "ramped_share": float(np.mean([j.tempo_ratio != 1.0 for j in mix.joins]))
        if mix.joins else 0.0,
        "lufs": audio.integrated_loudness(mix.samples, mix.sample_rate),
    }


def _weeks(pool: Sequence[Song], weeks: int, seed: int) -> dict[str, Any]:
    """Random weeks of 5-20 songs from the pool, each built into an album: the decoded true
    peak of its OGG and MP3 (dBTP, 4x), its shortest overlap in bars of the outgoing song,
    its quietest 400 ms between the first song's rise and the last song's fade (dBFS), its
    length minus (its tracks' lengths minus its crossfades) (s; negative where faded tails
    and quiet lead-ins were cut) and the faded tails cut (s), the share of joins ramped, its
    loudness; and how its order
    compares (the same figures as ordering_quality)."""
    rng = random.Random(seed)
    found: list[dict[str, float]] = []
    groups = []
    for week in range(weeks):
        songs = rng.sample(list(pool), rng.randint(5, min(20, len(pool))))
        groups.append([Candidate(i, i, f) for i, (_, _, f, _) in enumerate(songs)])
        found.append(_album_figures(*_built(songs, f"week {week}")))
    values = {k: np.array([f[k] for f in found]) for k in found[0]}
    return {
        "weeks": weeks,
        "ogg_true_peak_dbtp_max": round(float(values["ogg_dbtp"].max()), 2),
        "mp3_true_peak_dbtp_max": round(float(values["mp3_dbtp"].max()), 2),
        "overlap_bars_min": round(float(values["min_overlap_bars"].min()), 3),
        "quietest_400ms_dbfs_min": round(float(values["quietest_400ms_dbfs"].min()), 1),
        "quietest_400ms_dbfs_median": round(float(np.median(values["quietest_400ms_dbfs"])),
                                            1),
        "length_minus_tracks_minus_crossfades_s": {
            "min": round(float(values["length_minus_tracks_minus_crossfades_s"].min()), 2),
            "max": round(float(values["length_minus_tracks_minus_crossfades_s"].max()), 2)},
        "faded_tails_cut_s_per_album": round(float(values["faded_tails_cut_s"].mean()), 2),
        "joins_ramped_share": round(float(values["ramped_share"].mean()), 3),
        "lufs": {"min": round(float(values["lufs"].min()), 2),
                 "max": round(float(values["lufs"].max()), 2)},
        "order": _ordering_quality(groups, seed),
    }


def _build_album(songs: Sequence[Song]) -> dict[str, Any]:
    """Order the songs and build the album (engine_album.build_album: the encoders and the cover
    run side by side); then each stage again, one after another, for its own time."""
    engine_album.cover_png([], "warm-up")  # first call: matplotlib's import and fonts
    title = "SingSong benchmark week"
    cpu = _cpu_s()
    (playlist, album), total = _timed(lambda: _built(songs, title))
    total_cpu = _cpu_s() - cpu
    stages: dict[str, float] = {}
    mix, stages["assemble_s"] = _timed(lambda: engine_album.assemble(
        [(s, r, f) for s, r, f, _ in playlist], sample_rate=ALBUM_RATE))
    for fmt in engine_album.ALBUM_FORMATS:
        _, stages[f"encode_{fmt}_s"] = _timed(lambda fmt=fmt: engine_album.encode_album(  # type: ignore[misc]
            mix, [t for _, _, _, t in playlist], fmt, album_title=title))
    _, stages["cover_s"] = _timed(lambda: engine_album.cover_png(
        [f for _, _, f, _ in playlist], title))
    figures = _album_figures(playlist, album)
    return {"build_album_20_s": round(total, 3),
            "build_album_20_cpu_s": round(total_cpu, 3),
            "stages_one_by_one_s": {k: round(v, 3) for k, v in stages.items()},
            "album_duration_s": round(album.mix.duration_s, 1),
            "album_lufs": round(figures["lufs"], 2),
            "album_ogg_true_peak_dbtp": round(figures["ogg_dbtp"], 2),
            "album_mp3_true_peak_dbtp": round(figures["mp3_dbtp"], 2),
            "bytes": {fmt: len(data) for fmt, data in album.files.items()}}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidates", type=int, default=10_000)
    parser.add_argument("--weeks", type=int, default=8,
                        help="random weeks of 5-20 songs built into albums (50 in the issue)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--librosa", action="store_true",
                        help="only compare the features with librosa's (engine/album/_features.py "
                             "says why it keeps its own)")
    args = parser.parse_args(argv)

    clips = _clips()
    if args.librosa:
        print(json.dumps(_librosa_features(clips), indent=2))
        return
    features_ms, real = _features_ms(clips)

    candidates, copies = _synthetic(real, args.candidates, args.seed)
    chosen, choose_s = _timed(lambda: engine_album.choose(candidates, size=20, per_person=2))
    _, order_20_s = _timed(lambda: engine_album.order(chosen))
    groups, groups_s = _timed(lambda: engine_album.duplicate_groups(
        [c.features.fingerprint for c in candidates]))

    rng = random.Random(args.seed)
    synthetic_weeks = [rng.sample(candidates, rng.randint(5, 20)) for _ in range(args.weeks)]
    quality = _ordering_quality(synthetic_weeks, args.seed)

    album = _build_album(_album_songs(20))
    pool = _sung_songs() + _melody_songs(37, seed=100, tempo_range_bpm=(72.0, 140.0))
    weeks = _weeks(pool, args.weeks, args.seed)
    result = {
        "features_15s_clip": features_ms,
        "candidates": len(candidates),
        "choose_and_order_10000_s": round(choose_s + order_20_s, 3),
        "choose_s": round(choose_s, 3),
        "order_chosen_20_s": round(order_20_s, 4),
        "duplicates": {"copies_made": len(copies),
                       "copies_grouped_with_their_original": sum(
                           groups[a] == groups[b] for a, b in copies),
                       "candidates_merged_into_groups": len(candidates) - len(set(groups)),
                       "duplicate_groups_s": round(groups_s, 3)},
        "chosen": len(chosen),
        "ordering_quality_synthetic_weeks": quality,
        **album,
        "albums_of_random_weeks": weeks,
        "targets_met": {
            "features_at_most_30_ms": features_ms["p95_ms"] <= 30,
            "features_cpu_at_most_30_ms": features_ms["cpu_p95_ms"] <= 30,
            "choose_and_order_10000_at_most_10_s": choose_s + order_20_s <= 10,
            "build_album_20_at_most_5_s": album["build_album_20_s"] <= 5,
            "decoded_true_peak_at_most_-1_dbtp": max(
                weeks["ogg_true_peak_dbtp_max"], weeks["mp3_true_peak_dbtp_max"]) <= -1.0,
            "every_join_at_least_half_a_bar": weeks["overlap_bars_min"] >= 0.5,
            "nothing_inside_under_-30_dbfs": weeks["quietest_400ms_dbfs_min"] >= -30.0,
        },
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
