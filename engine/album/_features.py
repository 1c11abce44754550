"""What the album needs to know about one song, measured once at ingest: its bounds,
loudness, key, tempo and beat grid, chroma, timbre, quality and fingerprint.

Hand-written on numpy and scipy.fft rather than librosa: benchmarks/curation.py --librosa
measures librosa's STFT, chroma, onset strength and beat tracker at about three times this
whole function's time on a 15 s clip, with a numba warm-up of tens of seconds per process.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from functools import cache
from typing import Any

import numpy as np
import scipy.fft
from numpy.lib.stride_tricks import sliding_window_view

from engine import audio
from engine.album._fingerprints import fingerprint
from engine.errors import InvalidRequest
from engine.theory import Key, parse_key

FRAME_S = 0.0232  # onset, timbre and silence hop (512 samples at 22.05 kHz; a power of 2)
CHROMA_FRAME_S = 0.1858  # chroma frames, side by side (4096 samples at 22.05 kHz; ditto)
SILENCE_BELOW_PEAK_DB = 45.0  # a frame this far under the loudest one is silence...
SILENCE_FLOOR_DBFS = -60.0  # ...and so is any frame under this level
QUIET_BELOW_LOUD_DB = 30.0  # inside the bounds, frames this far under the loud ones are gaps
MIN_TEMPO_BPM, MAX_TEMPO_BPM, PRIOR_TEMPO_BPM = 60.0, 200.0, 120.0
BEATS_PER_BAR = 4
ONSET_LAG_FRAMES = 1.5  # an onset peaks in the flux this many hops before it sounds
GOOD_LENGTH_S = (10.0, 180.0)  # a song length that fits an album track
CLIPPED_LEVEL = 0.999
CLIPPING_ZERO_SHARE = 0.02  # this share of samples stuck at full scale scores 0
QUALITY_WEIGHTS = {"pitch": 0.4, "clipping": 0.25, "silence": 0.15, "length": 0.2}
TIMBRE_BANDS_HZ = (0.0, 200.0, 500.0, 1000.0, 2000.0, 4000.0)
TIMBRE_NAMES = ("centroid", "rolloff", "flatness", "band_0_200", "band_200_500",
                "band_500_1k", "band_1k_2k", "band_2k_4k", "band_4k_up")

# Krumhansl and Kessler's key profiles (probe-tone ratings), tonic first.
_MAJOR_PROFILE = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29,
                           2.88])
_MINOR_PROFILE = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34,
                           3.17])


@dataclass(frozen=True)
class Quality:
    """A clip's fitness for the album (0..1) and its parts, each 0..1 (1 is best).

    pitch_accuracy: share of the vocal's voiced frames within 50 cents of its note (None
    when unknown); clipping_share: share of samples stuck at full scale; silence_share: share
    of frames inside the trimmed bounds 30 dB or more under the loud ones (the 95th
    percentile); length_fit: 1 for 10-180 s, less outside.
    """

    score: float
    pitch_accuracy: float | None
    clipping_share: float
    silence_share: float
    length_fit: float


@dataclass(frozen=True)
class ClipFeatures:
    """What the album needs to know about one song; JSON round trip via to_json/from_json.

    Times are seconds on the clip's own time line; chroma is 12 means (C first, summing to
    1); timbre holds TIMBRE_NAMES in 0..1; fingerprint is chromaprint's raw 32-bit items.
    """

    start_s: float
    end_s: float
    duration_s: float
    loudness_lufs: float
    key: str
    fifths: int  # the key's place on the circle of fifths: C major / A minor 0, G / Em 1, ...
    tempo_bpm: float
    beat_period_s: float
    first_beat_s: float
    first_downbeat_s: float
    chroma: tuple[float, ...]
    timbre: tuple[float, ...]
    quality: Quality
    fingerprint: tuple[int, ...] = field(repr=False)

    def beats_s(self) -> np.ndarray:
        """Beat times from the first beat to the end of the trimmed clip.

        Returns
        -------
        np.ndarray [shape=(beats,)], float
            Seconds on the clip's time line, beat_period_s apart.
        """
        count = max(0, int((self.end_s - self.first_beat_s) / self.beat_period_s) + 1)
        return self.first_beat_s + self.beat_period_s * np.arange(count)

    def to_json(self) -> dict[str, Any]:
        """The features as plain JSON values (tuples as lists; a silent clip's -inf
        loudness as None).

        Returns
        -------
        dict of str to JSON values
            from_json gives back an equal ClipFeatures.
        """
        data = asdict(self)
        data["chroma"], data["timbre"] = list(self.chroma), list(self.timbre)
        data["fingerprint"] = list(self.fingerprint)
        if not math.isfinite(self.loudness_lufs):
            data["loudness_lufs"] = None  # JSON has no -inf
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ClipFeatures:
        """Features from what to_json gave (after a JSON round trip).

        Parameters
        ----------
        data : dict of str to JSON values
            to_json's keys; loudness_lufs None for a silent clip.

        Returns
        -------
        ClipFeatures

        Raises
        ------
        TypeError, KeyError
            When keys are missing or unknown (a record from another version).
        """
        values = dict(data)
        values["quality"] = Quality(**values["quality"])
        if values["loudness_lufs"] is None:
            values["loudness_lufs"] = float("-inf")
        for name in ("chroma", "timbre", "fingerprint"):
            values[name] = tuple(values[name])
        return cls(**values)


def features(samples: np.ndarray, sample_rate: int, *, key: Key | str | None = None,
             tempo_bpm: float | None = None, downbeat_s: float | None = None,
             pitch_accuracy: float | None = None) -> ClipFeatures:
    """What the album needs to know about one decoded song.

    Parameters
    ----------
    samples : np.ndarray [shape=(n,)], float in -1..1
        Mono audio; its frames are sized for 22.05 kHz (FRAME_S 23 ms, CHROMA_FRAME_S 186 ms,
        rounded to powers of two at other rates).
    sample_rate : int > 0
        Its rate (Hz).
    key : Key, str ("F#m", "C major", ...) or None
        The key when known (SingSong's own songs know it); None: estimated from the chroma
        against Krumhansl and Kessler's key profiles.
    tempo_bpm : float > 0 or None
        The tempo when known (BPM); None: estimated from the onset strength's autocorrelation
        (MIN_TEMPO_BPM..MAX_TEMPO_BPM, 60-200, weighted around 120), refined by the beat grid
        that collects the most onset strength.
    downbeat_s : float or None
        The time of any downbeat when known (s; SingSong's songs start on one at 0): the beat
        grid is anchored on it. None: the grid's phase and downbeat come from the onsets (on
        busy off-beats it can land half a beat early or late).
    pitch_accuracy : float in 0..1 or None
        The vocal's share of voiced frames within 50 cents of its notes when known
        (engine.pipeline's summary has it); it weighs 0.4 in the quality score.

    Returns
    -------
    ClipFeatures
        Bounds (s) without the silence at either end (frames SILENCE_BELOW_PEAK_DB, 45 dB,
        under the loudest or under -60 dBFS), integrated loudness (LUFS, BS.1770) of the
        trimmed clip, key, tempo (BPM) and beat grid (s), mean chroma, timbre, quality and
        chromaprint fingerprint.

    Raises
    ------
    InvalidRequest
        For an empty clip, or a key that cannot be read.
    ToolMissing
        When libchromaprint is not installed.
    """
    samples = np.asarray(samples, dtype=np.float32)
    if samples.size == 0:
        raise InvalidRequest("the clip is empty: there is nothing to describe")
    duration_s = len(samples) / sample_rate
    hop = _power_of_two(FRAME_S * sample_rate)
    # Frames side by side (window = hop): audio's short-term levels, dBFS.
    level_db = audio.window_levels_dbfs(samples, sample_rate, hop / sample_rate,
                                        hop / sample_rate)
    loud = level_db > max(float(level_db.max(initial=-200.0)) - SILENCE_BELOW_PEAK_DB,
                          SILENCE_FLOOR_DBFS)
    if loud.any():
        first, last = int(np.argmax(loud)), len(loud) - int(np.argmax(loud[::-1]))
        # Samples after the last whole frame count with it.
        start_s = first * hop / sample_rate
        end_s = duration_s if last == len(loud) else last * hop / sample_rate
        inside = level_db[first:last]
        quiet = inside < np.percentile(inside, 95) - QUIET_BELOW_LOUD_DB
        silence_share = float(quiet.mean())
    else:
        start_s, end_s, silence_share = 0.0, duration_s, 1.0
    clip = samples[round(start_s * sample_rate):round(end_s * sample_rate)]

    power = _power_spectrogram(clip, 2 * hop, hop)
    chroma = _chroma(clip, sample_rate)
    known_key = parse_key(key) if isinstance(key, str) else key
    found_key = known_key or _estimate_key(chroma)
    band_starts, band_widths, centres_hz = _bands(sample_rate, 2 * hop)
    band_power = np.add.reduceat(power, band_starts, axis=1)
    onset = _onset_strength(band_power)
    if tempo_bpm:
        periods_s = [60.0 / tempo_bpm]
    else:  # the autocorrelation's period, refined by the grid that fits the onsets best
        estimate = _estimate_period_s(onset, hop / sample_rate)
        periods_s = list(estimate * np.linspace(0.97, 1.03, 25))
    period_s, first_beat_s, first_downbeat_s = _beat_grid(onset, hop / sample_rate, periods_s)
    if downbeat_s is not None:  # the known downbeat anchors the grid: the first of each
        first_beat_s = _first_at_or_after(start_s, downbeat_s, period_s) - start_s
        first_downbeat_s = _first_at_or_after(start_s, downbeat_s,
                                              BEATS_PER_BAR * period_s) - start_s
    quality = _quality(samples, silence_share, end_s - start_s, pitch_accuracy)
    return ClipFeatures(
        start_s=round(float(start_s), 4), end_s=round(float(end_s), 4),
        duration_s=round(duration_s, 4),
        loudness_lufs=round(audio.integrated_loudness(clip, sample_rate), 3),
        key=found_key.name, fifths=fifths_position(found_key),
        tempo_bpm=round(float(60.0 / period_s), 3), beat_period_s=round(float(period_s), 5),
        first_beat_s=round(float(start_s + first_beat_s), 4),
        first_downbeat_s=round(float(start_s + first_downbeat_s), 4),
        chroma=tuple(round(float(c), 5) for c in chroma.mean(axis=0) / max(
            float(chroma.mean(axis=0).sum()), 1e-12)),
        timbre=tuple(round(float(t), 5) for t in _timbre(band_power, centres_hz, band_widths)),
        quality=quality,
        fingerprint=tuple(int(v) for v in fingerprint(clip, sample_rate)),
    )


def _first_at_or_after(time_s: float, anchor_s: float, step_s: float) -> float:
    """The first of anchor_s + k * step_s (k any integer) at or after time_s."""
    return anchor_s + math.ceil((time_s - anchor_s) / step_s - 1e-9) * step_s


def fifths_position(key: Key) -> int:
    """The key's place on the circle of fifths; relative keys share a place.

    Parameters
    ----------
    key : Key

    Returns
    -------
    int in 0..11
        C major and A minor 0, G major and E minor 1, ..., F major and D minor 11.
    """
    return (key.relative_major_tonic * 7) % 12


def _power_of_two(samples: float) -> int:
    """The power of two nearest to `samples` (FFT sizes that are fast at any rate)."""
    return int(2 ** round(math.log2(max(samples, 1.0))))


def _power_spectrogram(samples: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    """|STFT|^2 with a Hann window, frames of n_fft every hop samples ([frames, bins])."""
    if len(samples) < n_fft:
        samples = audio.fit_length(samples, n_fft)
    frames = sliding_window_view(samples, n_fft)[::hop] * _hann(n_fft)
    spectrum = scipy.fft.rfft(frames, axis=1)
    return np.asarray(spectrum.real**2 + spectrum.imag**2)


@cache
def _hann(n: int) -> np.ndarray:
    return np.hanning(n).astype(np.float32)


def _chroma(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    """Per-frame pitch-class magnitude ([frames, 12], C first) from 55 Hz to 5 kHz."""
    n_fft = _power_of_two(CHROMA_FRAME_S * sample_rate)
    power = _power_spectrogram(samples, n_fft, n_fft)
    bins, starts = _chroma_bins(sample_rate, n_fft)
    # Summed with reduceat over bins grouped by pitch class: no BLAS threads for a tiny job.
    return np.asarray(np.add.reduceat(np.sqrt(power[:, bins]), starts, axis=1))


@cache
def _chroma_bins(sample_rate: int, n_fft: int) -> tuple[np.ndarray, np.ndarray]:
    """The FFT bins from 55 Hz to 5 kHz ordered by pitch class (C first), and where each
    class's run of bins starts in that order."""
    freqs = np.arange(n_fft // 2 + 1) * sample_rate / n_fft
    bins = np.flatnonzero((freqs >= 55.0) & (freqs <= 5000.0))
    classes = np.round(12 * np.log2(freqs[bins] / 440.0) + 9).astype(int) % 12
    order = np.argsort(classes, kind="stable")
    return bins[order], np.searchsorted(classes[order], np.arange(12))


def _estimate_key(chroma: np.ndarray) -> Key:
    """The key whose Krumhansl profile correlates best with the mean chroma."""
    mean = chroma.mean(axis=0)
    if not np.any(mean > 0):
        return Key(0, "major")
    profiles, keys = _key_profiles()
    centred = mean - mean.mean()
    scores = (profiles * (centred / max(float(np.linalg.norm(centred)), 1e-12))).sum(axis=1)
    return keys[int(np.argmax(scores))]


@cache
def _key_profiles() -> tuple[np.ndarray, tuple[Key, ...]]:
    """The 24 key profiles, centred and of unit length (rows), and their keys."""
    rows, keys = [], []
    for mode, profile in (("major", _MAJOR_PROFILE), ("minor", _MINOR_PROFILE)):
        for tonic in range(12):
            rotated = np.roll(profile, tonic) - profile.mean()
            rows.append(rotated / np.linalg.norm(rotated))
            keys.append(Key(tonic, mode))  # type: ignore[arg-type]
    return np.array(rows), tuple(keys)


def _onset_strength(bands: np.ndarray) -> np.ndarray:
    """Spectral flux of log-compressed band magnitudes, one value per frame (mean-removed)."""
    log_mag = np.log1p(100.0 * np.sqrt(bands))
    flux = np.maximum(np.diff(log_mag, axis=0), 0.0).mean(axis=1)
    flux = np.concatenate([[0.0], flux])
    return np.asarray(flux - flux.mean())


@cache
def _bands(sample_rate: int, n_fft: int, count: int = 40) -> tuple[np.ndarray, np.ndarray,
                                                                     np.ndarray]:
    """FFT bins grouped into up to `count` bands spaced evenly in log frequency from 50 Hz
    to the Nyquist frequency (bins under 50 Hz join the first; empty bands are dropped):
    each band's first bin, its width (bins) and its centre (Hz)."""
    freqs = np.arange(n_fft // 2 + 1) * sample_rate / n_fft
    edges = np.geomspace(50.0, sample_rate / 2, count + 1)
    band = np.clip(np.searchsorted(edges, freqs, side="right") - 1, 0, count - 1)
    starts = np.flatnonzero(np.diff(band, prepend=-1))
    widths = np.diff(starts, append=len(freqs))
    return starts, widths, np.sqrt(edges[:-1] * edges[1:])[band[starts]]


def _estimate_period_s(onset: np.ndarray, hop_s: float) -> float:
    """The beat period (s) whose lag best autocorrelates the onset strength, weighted by a
    log-normal prior around 120 BPM (one octave wide)."""
    if len(onset) < 8 or not np.any(onset):
        return 60.0 / PRIOR_TEMPO_BPM
    size = scipy.fft.next_fast_len(2 * len(onset))
    spectrum = scipy.fft.rfft(onset, size)
    autocorr = scipy.fft.irfft(spectrum.real**2 + spectrum.imag**2, size)[:len(onset)]
    lags = np.arange(len(onset), dtype=np.float64)
    lags[0] = 1.0
    bpm = 60.0 / (lags * hop_s)
    usable = (bpm >= MIN_TEMPO_BPM) & (bpm <= MAX_TEMPO_BPM)
    if not usable.any():
        return 60.0 / PRIOR_TEMPO_BPM
    prior = np.exp(-0.5 * np.log2(bpm / PRIOR_TEMPO_BPM) ** 2)
    scored = np.where(usable, np.maximum(autocorr, 0.0) * prior, -np.inf)
    lag = int(np.argmax(scored))
    if 0 < lag < len(scored) - 1 and np.isfinite(scored[lag - 1 : lag + 2]).all():
        left, mid, right = scored[lag - 1], scored[lag], scored[lag + 1]
        bend = left - 2 * mid + right
        shift = 0.5 * (left - right) / bend if bend < 0 else 0.0
        return float((lag + shift) * hop_s)
    return float(lag * hop_s)


def _beat_grid(onset: np.ndarray, hop_s: float, periods_s: Sequence[float]
               ) -> tuple[float, float, float]:
    """The beat grid that collects the most onset strength: its period (one of `periods_s`),
    its first beat and its first downbeat (s from the clip's start); the downbeat is the beat
    of the bar (every BEATS_PER_BAR beats) whose own grid collects the most."""
    if len(onset) < 2:
        return periods_s[0], 0.0, 0.0
    best: tuple[float, float, int, np.ndarray] = (-np.inf, periods_s[0], 0, onset[:1])
    for period_s in periods_s:
        period = period_s / hop_s
        phases = np.arange(max(1, int(period)))
        beats = np.arange(int(len(onset) / period) + 1)
        grid = np.round(phases[:, None] + beats[None, :] * period).astype(int)
        inside = grid < len(onset)
        strength = np.where(inside, onset[np.minimum(grid, len(onset) - 1)], 0.0)
        scores = strength.sum(axis=1) / np.maximum(inside.sum(axis=1), 1)
        phase = int(np.argmax(scores))
        if scores[phase] > best[0] + 1e-12:
            best = (float(scores[phase]), period_s, phase, strength[phase])
    _, period_s, phase, on_beats = best
    bar_scores = [on_beats[m::BEATS_PER_BAR].mean() if on_beats[m::BEATS_PER_BAR].size
                  else -np.inf for m in range(BEATS_PER_BAR)]
    downbeat = int(np.argmax(bar_scores))
    # Flux value i compares the windows (two hops long) starting i - 1 and i hops in: it
    # peaks when a note starts in the second half of window i, 1.5 hops after i.
    first_beat_s = (phase + ONSET_LAG_FRAMES) * hop_s
    return period_s, first_beat_s, first_beat_s + downbeat * period_s


def _timbre(band_power: np.ndarray, centres_hz: np.ndarray, bins: np.ndarray) -> np.ndarray:
    """TIMBRE_NAMES, each in 0..1, from band energies ([frames, bands]) with their centres
    (Hz) and widths (bins): the mean spectral centroid and 85 % rolloff (octaves above 50
    Hz over 8), flatness (dB over 60, plus 1) and the share of energy in each of
    TIMBRE_BANDS_HZ."""
    frame_energy = band_power.sum(axis=1)
    active = frame_energy > frame_energy.max(initial=0.0) * 1e-4
    if not active.any():
        return np.zeros(len(TIMBRE_NAMES))
    spectra, energy = band_power[active], frame_energy[active]
    octaves = np.log2(centres_hz / 50.0)
    centroid = (spectra * octaves).sum(axis=1) / energy
    rolloff = octaves[np.argmax(np.cumsum(spectra, axis=1) >= 0.85 * energy[:, None], axis=1)]
    density = spectra / bins + 1e-12
    flatness_db = 10 * np.log10(np.exp(np.log(density).mean(axis=1)) / density.mean(axis=1))
    shares = np.add.reduceat(spectra.sum(axis=0), np.searchsorted(centres_hz, TIMBRE_BANDS_HZ)
                             ) / energy.sum()
    values = [centroid.mean() / 8, rolloff.mean() / 8, 1 + flatness_db.mean() / 60, *shares]
    return np.clip(np.array(values, dtype=np.float64), 0.0, 1.0)


def _quality(samples: np.ndarray, silence_share: float, length_s: float,
             pitch_accuracy: float | None) -> Quality:
    stuck = np.abs(samples) >= CLIPPED_LEVEL
    # A sample at full scale counts as clipped when a neighbour is there too: a flat top.
    flat = stuck[1:] & stuck[:-1]
    clipping_share = float(flat.mean()) if flat.size else 0.0
    low, high = GOOD_LENGTH_S
    length_fit = min(1.0, length_s / low, high / max(length_s, 1e-9))
    parts = {"clipping": max(0.0, 1.0 - clipping_share / CLIPPING_ZERO_SHARE),
             "silence": 1.0 - silence_share, "length": length_fit}
    if pitch_accuracy is not None:
        parts["pitch"] = pitch_accuracy
    score = sum(QUALITY_WEIGHTS[k] * v for k, v in parts.items()) / sum(
        QUALITY_WEIGHTS[k] for k in parts)
    return Quality(score=round(score, 4), pitch_accuracy=pitch_accuracy,
                   clipping_share=round(clipping_share, 6),
                   silence_share=round(silence_share, 4), length_fit=round(length_fit, 4))
