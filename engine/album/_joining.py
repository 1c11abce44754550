"""Joining the ordered songs into one mastered mix: each join overlaps a bar with the
incoming song's first downbeat on a downbeat of the outgoing one, the outgoing tail cut where
it has faded, and far-apart tempi ramped to meet (see `assemble`)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
from scipy.signal import resample_poly

from engine import audio
from engine.album._features import BEATS_PER_BAR, ClipFeatures
from engine.errors import InvalidRequest

SONG_LUFS = -16.0  # each song is levelled to this before the crossfades
MAX_SONG_GAIN_DB = 20.0
ALBUM_LUFS = -14.0
CROSSFADE_SHARE = 0.4  # a crossfade takes at most this share of either song
LEVEL_WINDOW_S, LEVEL_HOP_S = 0.4, 0.1  # short-term level: windows and their spacing
LOUD_PERCENTILE = 95.0  # a song's loud part: this percentile of its short-term levels
FADED_BELOW_LOUD_DB = 15.0  # a song has faded (or not yet risen) this far under it
BEATMATCH_TOLERANCE = 0.03  # tempi this close (relative) are crossfaded as they are
RAMP_BARS = 1  # over this many bars before a join the outgoing tempo moves to the incoming
STRETCH_PRE_ROLL_S = 0.2  # fed to the stretcher before the ramp (its first output is faint)
SEAM_S = 0.01  # the untouched song and its stretched tail are crossfaded over this


@dataclass(frozen=True)
class Chapter:
    """Where one song sits in the album (s); chapters meet mid-crossfade."""

    start_s: float
    end_s: float


@dataclass(frozen=True)
class Join:
    """One song going into the next, in album time (s). The incoming song starts at start_s
    and overlaps the outgoing one for overlap_s, its first downbeat on a downbeat of the
    outgoing one. bar_s: the outgoing song's bar as heard at the join; tempo_ratio: how much
    faster its last bars were played to meet the incoming tempo (1: untouched; under 1:
    slower); trimmed_s: how much of its faded tail (s of the song) was left out."""

    start_s: float
    overlap_s: float
    bar_s: float
    tempo_ratio: float
    trimmed_s: float


@dataclass(frozen=True)
class AlbumMix:
    """The mastered album: mono float32 samples, its chapters and joins, and `inside_s`,
    the stretch from the first song's rise to the last song's fade (album s)."""

    samples: np.ndarray
    sample_rate: int
    chapters: tuple[Chapter, ...]
    joins: tuple[Join, ...] = ()
    inside_s: tuple[float, float] = (0.0, 0.0)

    @property
    def duration_s(self) -> float:
        """The album's length (s)."""
        return len(self.samples) / self.sample_rate


@dataclass(frozen=True)
class _Clip:
    """A song ready to be joined: levelled, at the album's rate, starting on its last
    downbeat before it rises (or where its sound starts); times in s from that start."""

    samples: np.ndarray
    rate: int
    beat_s: float
    downbeat_s: float  # its first downbeat
    rise_s: float  # where it is first within FADED_BELOW_LOUD_DB of its loud part
    faded_s: float  # where it is last within FADED_BELOW_LOUD_DB of its loud part

    @property
    def bar_s(self) -> float:
        return BEATS_PER_BAR * self.beat_s

    @property
    def length_s(self) -> float:
        return len(self.samples) / self.rate


def assemble(songs: Sequence[tuple[np.ndarray, int, ClipFeatures]], *,
             sample_rate: int | None = None) -> AlbumMix:
    """Join songs, in the given order, into one mastered mix.

    Each song is trimmed to its bounds and levelled to SONG_LUFS (-16 LUFS; at most
    MAX_SONG_GAIN_DB, 20 dB, of gain). Neighbours overlap by one bar of the outgoing song
    (less only where that would take over CROSSFADE_SHARE, 40 %, of a song) with an
    equal-power crossfade; the incoming song's first downbeat lands on a downbeat of the
    outgoing one, chosen so the outgoing song ends where it has faded (its quiet tail is left
    out). Where the tempi differ by more than BEATMATCH_TOLERANCE (3 %), the outgoing song's
    last bars speed up or slow down (pitch kept, Rubber Band through pedalboard) to the
    incoming tempo, or to its double or half, so the beats meet throughout the crossfade. The
    whole is mastered to ALBUM_LUFS (-14 LUFS) under a true-peak limiter at
    audio.MASTER_CEILING_DBTP (-2.5 dBTP).

    Parameters
    ----------
    songs : sequence of (samples, sample_rate, ClipFeatures)
        Each song's mono float samples in -1..1, their rate (Hz) and its features.
    sample_rate : int > 0 or None
        The album's rate (Hz); None: the first song's.

    Returns
    -------
    AlbumMix
        float32 samples, chapters (s; neighbours meet mid-crossfade), joins and the stretch
        from the first song's rise to the last one's fade (s).

    Raises
    ------
    InvalidRequest
        For no songs.
    """
    if not songs:
        raise InvalidRequest("an album needs at least one song")
    rate = sample_rate or songs[0][1]
    clips = [_prepared_clip(s, r, f, rate) for s, r, f in songs]
    pieces: list[tuple[int, np.ndarray]] = []
    joins: list[Join] = []
    offset = fade_in = 0
    for index, clip in enumerate(clips):
        samples, fade_out = clip.samples, 0
        if index + 1 < len(clips):
            samples, start, join = _joined_tail(clip, clips[index + 1], fade_in / rate)
            fade_out = len(samples) - start
            joins.append(replace(join, start_s=round((offset + start) / rate, 4)))
        pieces.append((offset, _crossfaded(samples, fade_in, fade_out)))
        if index + 1 < len(clips):
            offset, fade_in = offset + start, fade_out
    mix = np.zeros(max(o + len(p) for o, p in pieces), np.float32)
    for start, piece in pieces:
        mix[start:start + len(piece)] += piece
    starts = [0.0] + [j.start_s + j.overlap_s / 2 for j in joins]
    ends = [*starts[1:], len(mix) / rate]
    chapters = tuple(Chapter(round(float(a), 3), round(float(b), 3))
                     for a, b in zip(starts, ends, strict=True))
    inside_s = (clips[0].rise_s, min(offset / rate + clips[-1].faded_s, len(mix) / rate))
    mastered = mix * audio.mastering_gain(mix, rate, ALBUM_LUFS, audio.MASTER_CEILING_DBTP)
    return AlbumMix(mastered.astype(np.float32), rate, chapters, tuple(joins),
                    (round(inside_s[0], 3), round(inside_s[1], 3)))


def _prepared_clip(samples: np.ndarray, rate: int, feats: ClipFeatures,
                   album_rate: int) -> _Clip:
    """The song levelled, at the album's rate, with where it rises and fades, starting on
    its last downbeat before it rises (a quiet lead-in of whole bars is left out)."""
    clip = _levelled_clip(samples, rate, feats, album_rate)
    rise_s, faded_s = _audible_span_s(clip, album_rate)
    beat_s = feats.beat_period_s
    downbeat_s = max(feats.first_downbeat_s - feats.start_s, 0.0)
    bars_before_rise = math.floor((rise_s - downbeat_s) / (BEATS_PER_BAR * beat_s))
    cut_s = downbeat_s + bars_before_rise * BEATS_PER_BAR * beat_s if bars_before_rise > 0 else 0.0
    return _Clip(clip[round(cut_s * album_rate):], album_rate, beat_s,
                 downbeat_s if cut_s == 0.0 else 0.0, rise_s - cut_s, faded_s - cut_s)


def _levelled_clip(samples: np.ndarray, rate: int, feats: ClipFeatures,
                   album_rate: int) -> np.ndarray:
    """The song trimmed to its bounds, at the album's rate, levelled to SONG_LUFS."""
    clip = np.asarray(samples[round(feats.start_s * rate):round(feats.end_s * rate)],
                      dtype=np.float32)
    if rate != album_rate:
        divisor = math.gcd(rate, album_rate)
        clip = resample_poly(clip, album_rate // divisor, rate // divisor).astype(np.float32)
    if not math.isfinite(feats.loudness_lufs):
        return clip
    gain_db = min(SONG_LUFS - feats.loudness_lufs, MAX_SONG_GAIN_DB)
    return np.asarray(clip * np.float32(10 ** (gain_db / 20)))


def _audible_span_s(clip: np.ndarray, rate: int) -> tuple[float, float]:
    """Where the clip first rises to, and last falls from, FADED_BELOW_LOUD_DB under its
    loud part (LOUD_PERCENTILE of its short-term levels), in s from its start."""
    levels = audio.window_levels_dbfs(clip, rate, LEVEL_WINDOW_S, LEVEL_HOP_S)
    audible = np.flatnonzero(levels >= np.percentile(levels, LOUD_PERCENTILE)
                             - FADED_BELOW_LOUD_DB)
    length_s = len(clip) / rate
    return (float(audible[0]) * LEVEL_HOP_S,
            min(float(audible[-1]) * LEVEL_HOP_S + LEVEL_WINDOW_S, length_s))


def tempo_ratio(outgoing_beat_s: float, incoming_beat_s: float) -> float:
    """How much faster the outgoing song must play for its beats to meet the incoming song's.

    Parameters
    ----------
    outgoing_beat_s, incoming_beat_s : float > 0
        The two songs' beat periods (s).

    Returns
    -------
    float in 1/sqrt(2)..sqrt(2)
        Their ratio folded by octaves (at double or half time every other beat meets); 1 when
        within BEATMATCH_TOLERANCE (3 %).
    """
    ratio = outgoing_beat_s / incoming_beat_s
    ratio /= 2.0 ** round(math.log2(ratio))
    return 1.0 if abs(math.log(ratio)) <= math.log1p(BEATMATCH_TOLERANCE) else ratio


def _joined_tail(out: _Clip, into: _Clip, busy_s: float) -> tuple[np.ndarray, int, Join]:
    """The outgoing clip cut (and, for far-apart tempi, its last bars stretched) for its join
    with the next, the sample at which the next one starts, and the join (start_s 0).
    busy_s: the outgoing clip's own first seconds, which its previous join fades in and
    this one must leave alone."""
    ratio = tempo_ratio(out.beat_s, into.beat_s)
    heard_bar_s = out.bar_s / ratio
    overlap_s = min(heard_bar_s, CROSSFADE_SHARE * out.length_s, CROSSFADE_SHARE * into.length_s)
    start_s = _incoming_start_s(out, into, overlap_s * ratio, ratio, busy_s)
    end_s = start_s + overlap_s * ratio  # on the outgoing song's own time line
    trimmed_s = out.length_s - end_s
    join = Join(0.0, round(overlap_s, 4), round(heard_bar_s, 4), round(ratio, 4),
                round(trimmed_s, 3))
    if ratio == 1.0:
        cut = out.samples[:round(end_s * out.rate)]
        return cut, round(start_s * out.rate), join
    ramp_start_s = max(busy_s, start_s - RAMP_BARS * out.bar_s)
    tail, start = _ramped(out, ramp_start_s, start_s, end_s, ratio)
    return tail, start, join


def _incoming_start_s(out: _Clip, into: _Clip, overlap_s: float, ratio: float,
                      busy_s: float) -> float:
    """Where the incoming song starts on the outgoing song's time line (s): its first
    downbeat on a downbeat of the outgoing song, the overlap (`overlap_s` of outgoing time)
    ending as near its fade as the bars allow, inside the song and after `busy_s`.
    Without such a downbeat (a song shorter than a few bars) the overlap ends the song."""
    lead_in_s = into.downbeat_s * ratio
    nearest = round((out.faded_s - overlap_s + lead_in_s - out.downbeat_s) / out.bar_s)
    for bars in range(nearest, nearest - 4, -1):
        start_s = out.downbeat_s + bars * out.bar_s - lead_in_s
        if start_s >= busy_s and start_s + overlap_s <= out.length_s + 1e-9:
            return start_s
    return max(busy_s, out.length_s - overlap_s)


def _ramped(out: _Clip, ramp_start_s: float, start_s: float, end_s: float,
            ratio: float) -> tuple[np.ndarray, int]:
    """The outgoing clip up to end_s with its tempo moving from its own to `ratio` times it
    between ramp_start_s and start_s and held there to end_s (pitch kept), and where
    start_s falls in the result (samples)."""
    import pedalboard  # loaded by the processes that build albums, not on import

    rate = out.rate
    pre_s = min(STRETCH_PRE_ROLL_S, ramp_start_s)
    first, ramp, stop = (round(t * rate) for t in (ramp_start_s - pre_s, ramp_start_s,
                                                   start_s))
    end = round(end_s * rate)
    speed = np.concatenate([np.ones(ramp - first), np.linspace(1.0, ratio, stop - ramp),
                            np.full(end - stop, ratio)])
    stretched = pedalboard.time_stretch(out.samples[None, first:end], rate,
                                        stretch_factor=speed, high_quality=False)[0]
    # Rubber Band follows the speed per input sample; its output runs on past the end.
    mapped = np.concatenate([[0.0], np.cumsum(1.0 / speed)])
    stretched = audio.fit_length(stretched, round(mapped[-1]))[ramp - first:]
    seam = min(round(SEAM_S * rate), len(stretched), len(out.samples) - ramp)
    fade = np.linspace(0.0, 1.0, seam, dtype=np.float32)
    head = out.samples[:ramp + seam].copy()
    head[ramp:] = head[ramp:] * (1 - fade) + stretched[:seam] * fade
    tail = np.concatenate([head, stretched[seam:]]).astype(np.float32)
    return tail, ramp + round(mapped[stop - first] - mapped[ramp - first])


def _crossfaded(samples: np.ndarray, fade_in: int, fade_out: int) -> np.ndarray:
    """The samples with an equal-power fade-in over the first `fade_in` and a fade-out
    over the last `fade_out` samples."""
    shaped = samples.copy()
    fade_in, fade_out = min(fade_in, len(shaped)), min(fade_out, len(shaped))
    if fade_in:
        shaped[:fade_in] *= np.sin(0.5 * np.pi * (np.arange(fade_in) + 0.5) / fade_in)
    if fade_out:
        shaped[len(shaped) - fade_out:] *= np.cos(
            0.5 * np.pi * (np.arange(fade_out) + 0.5) / fade_out)
    return shaped


def quietest_inside_dbfs(mix: AlbumMix) -> float:
    """The quietest short-term level inside the album, from the first song's rise to the last
    song's fade (where a gap between songs would show).

    Parameters
    ----------
    mix : AlbumMix

    Returns
    -------
    float
        dBFS (full scale 1.0) of the quietest LEVEL_WINDOW_S (0.4 s) window, every
        LEVEL_HOP_S (0.1 s); at most 0.
    """
    first, last = (round(t * mix.sample_rate) for t in mix.inside_s)
    levels = audio.window_levels_dbfs(mix.samples[first:last], mix.sample_rate,
                                      LEVEL_WINDOW_S, LEVEL_HOP_S)
    return float(levels.min(initial=0.0))
