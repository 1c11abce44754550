"""Chromaprint fingerprints of a clip (in-process, through ctypes) and how near two are;
near-duplicates among many found by locality-sensitive hashing, never all pairs.

A subprocess per clip would cost more than the whole 30 ms feature budget; fed at 11025 Hz
chromaprint skips its own slow resampler. Two 20-bit slices of every fingerprint item are
bucket keys, and only clips sharing several keys are compared bit by bit.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import math
from collections.abc import Sequence
from functools import cache

import numpy as np
from scipy.signal import resample_poly

from engine.errors import ToolMissing

CHROMAPRINT_RATE = 11025  # chromaprint's own rate: fed at it, it skips its slow resampler
CHROMAPRINT_ITEM_S = 4096 / 3 / CHROMAPRINT_RATE  # one 32-bit item every 0.124 s
MAX_OFFSET_S = 3.0  # fingerprints are compared at offsets up to this much
MIN_OVERLAP_ITEMS = 16
NEAR_DUPLICATE_SIMILARITY = 0.8  # 1 - bit error rate; unrelated audio sits near 0.5


@cache
def _chromaprint() -> ctypes.CDLL:
    """libchromaprint (the C library ffmpeg links), loaded once, with its signatures."""
    name = ctypes.util.find_library("chromaprint") or "libchromaprint.so.1"
    try:
        lib = ctypes.CDLL(name)
    except OSError:
        raise ToolMissing("libchromaprint is not installed (Debian: apt-get install "
                          "libchromaprint1)") from None
    lib.chromaprint_new.restype = ctypes.c_void_p
    lib.chromaprint_new.argtypes = [ctypes.c_int]
    lib.chromaprint_start.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int]
    lib.chromaprint_feed.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int]
    lib.chromaprint_finish.argtypes = [ctypes.c_void_p]
    lib.chromaprint_get_raw_fingerprint.argtypes = [
        ctypes.c_void_p, ctypes.POINTER(ctypes.POINTER(ctypes.c_uint32)),
        ctypes.POINTER(ctypes.c_int)]
    lib.chromaprint_dealloc.argtypes = [ctypes.c_void_p]
    lib.chromaprint_free.argtypes = [ctypes.c_void_p]
    return lib


def fingerprint(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    """Chromaprint's raw fingerprint of a clip, computed in-process by libchromaprint (its
    default algorithm) on the clip at CHROMAPRINT_RATE (11025 Hz).

    Parameters
    ----------
    samples : np.ndarray [shape=(n,)], float in -1..1
        Mono audio (clipped to -1..1 and fed as 16-bit).
    sample_rate : int > 0
        Its rate (Hz); an exact multiple of 11025 Hz is averaged down, any other resampled.

    Returns
    -------
    np.ndarray [shape=(items,)], uint32
        One 32-bit item every CHROMAPRINT_ITEM_S (0.124 s); empty for a clip too short.

    Raises
    ------
    ToolMissing
        When libchromaprint is not installed.
    RuntimeError
        When libchromaprint fails on the clip.
    """
    pcm = (np.clip(_at_chromaprint_rate(samples, sample_rate), -1.0, 1.0) * 32767).astype("<i2")
    lib = _chromaprint()
    context = lib.chromaprint_new(1)  # CHROMAPRINT_ALGORITHM_DEFAULT (TEST2)
    items = ctypes.POINTER(ctypes.c_uint32)()
    size = ctypes.c_int()
    try:
        if not (lib.chromaprint_start(context, CHROMAPRINT_RATE, 1)
                and lib.chromaprint_feed(context, pcm.ctypes.data, pcm.size)
                and lib.chromaprint_finish(context)
                and lib.chromaprint_get_raw_fingerprint(context, ctypes.byref(items),
                                                        ctypes.byref(size))):
            raise RuntimeError("libchromaprint failed to fingerprint the clip")
        result = np.ctypeslib.as_array(items, (size.value,)).copy() if size.value else (
            np.zeros(0, np.uint32))
    finally:
        if items:
            lib.chromaprint_dealloc(items)
        lib.chromaprint_free(context)
    return result


def _at_chromaprint_rate(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    """The samples at 11025 Hz: an exact multiple averages neighbours (its low-pass is
    enough for chromaprint's 28 Hz - 3.5 kHz chroma, and ten times cheaper)."""
    factor, remainder = divmod(sample_rate, CHROMAPRINT_RATE)
    if remainder == 0 and factor >= 1:
        usable = len(samples) // factor * factor
        return np.asarray(sum(samples[i:usable:factor] for i in range(factor)) / factor)
    divisor = math.gcd(sample_rate, CHROMAPRINT_RATE)
    return np.asarray(resample_poly(samples, CHROMAPRINT_RATE // divisor,
                                    sample_rate // divisor))


def similarity(a: Sequence[int] | np.ndarray, b: Sequence[int] | np.ndarray) -> float:
    """How alike two raw fingerprints are at their best alignment.

    Parameters
    ----------
    a, b : sequence of int or np.ndarray, uint32 items
        Raw fingerprints (one item every 0.124 s).

    Returns
    -------
    float in 0..1
        1 - the bit error rate at the best offset within MAX_OFFSET_S (3 s) either way, over
        an overlap of at least MIN_OVERLAP_ITEMS (16) items or the shorter one; 0 when either
        is empty. Unrelated audio scores about 0.5, the same audio near 1.
    """
    x, y = np.asarray(a, dtype=np.uint32), np.asarray(b, dtype=np.uint32)
    need = min(MIN_OVERLAP_ITEMS, len(x), len(y))
    if need == 0:
        return 0.0
    max_offset = round(MAX_OFFSET_S / CHROMAPRINT_ITEM_S)
    best = 0.0
    for offset in range(-max_offset, max_offset + 1):
        left, right = (x[offset:], y) if offset >= 0 else (x, y[-offset:])
        overlap = min(len(left), len(right))
        if overlap < need:
            continue
        errors = int(np.bitwise_count(left[:overlap] ^ right[:overlap]).sum())
        best = max(best, 1.0 - errors / (32 * overlap))
    return best


LSH_BANDS = ((12, 0xFFFFF), (0, 0xFFFFF))  # (shift, mask): sub-hashes of 20 bits per item
LSH_MIN_SHARED = 4  # candidate pairs share at least this many sub-hashes
LSH_MAX_BUCKET = 32  # sub-hashes this common say nothing (silence, a drone): skipped


def duplicate_groups(fingerprints: Sequence[Sequence[int]]) -> list[int]:
    """Near-duplicates among many fingerprints, found without comparing all pairs.

    Two 20-bit slices of every item are bucket keys (LSH_BANDS); only pairs sharing at least
    LSH_MIN_SHARED (4) keys, in buckets of at most LSH_MAX_BUCKET (32), are compared bit by bit.

    Parameters
    ----------
    fingerprints : sequence of sequences of int
        Raw fingerprints (uint32 items).

    Returns
    -------
    groups : list of int, one per fingerprint
        The group's lowest index: near-duplicates (similarity at least
        NEAR_DUPLICATE_SIMILARITY, 0.8, directly or through others) share it.
    """
    parent = list(range(len(fingerprints)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    arrays = [np.asarray(f, dtype=np.uint32) for f in fingerprints]
    for first, second in _lsh_pairs(arrays):
        a, b = root(first), root(second)
        if a != b and similarity(arrays[first], arrays[second]) >= NEAR_DUPLICATE_SIMILARITY:
            parent[max(a, b)] = min(a, b)
    return [root(i) for i in range(len(fingerprints))]


def _lsh_pairs(arrays: Sequence[np.ndarray]) -> list[tuple[int, int]]:
    """Index pairs (i < j) whose fingerprints share at least LSH_MIN_SHARED sub-hashes."""
    keys, owners = [], []
    for index, items in enumerate(arrays):
        own = np.unique(np.concatenate([
            ((items.astype(np.int64) >> shift) & mask) | (band << 32)
            for band, (shift, mask) in enumerate(LSH_BANDS)]))
        keys.append(own)
        owners.append(np.full(len(own), index, np.int64))
    if not keys:
        return []
    key, owner = np.concatenate(keys), np.concatenate(owners)
    order = np.argsort(key, kind="stable")
    key, owner = key[order], owner[order]
    starts = np.flatnonzero(np.concatenate([[True], key[1:] != key[:-1]]))
    sizes = np.diff(np.append(starts, len(key)))
    bucket_size = np.repeat(sizes, sizes)
    pair_codes = []
    for step in range(1, LSH_MAX_BUCKET):
        same = (key[step:] == key[:-step]) & (bucket_size[step:] <= LSH_MAX_BUCKET)
        if not same.any():
            break
        a, b = owner[:-step][same], owner[step:][same]
        pair_codes.append(np.minimum(a, b) * len(arrays) + np.maximum(a, b))
    if not pair_codes:
        return []
    codes, counts = np.unique(np.concatenate(pair_codes), return_counts=True)
    frequent = codes[counts >= LSH_MIN_SHARED]
    return [(int(c // len(arrays)), int(c % len(arrays))) for c in frequent]
