"""Measures of a sung voice against the notes it sings, for benchmarks/sing_quality.py.

Plain functions over numpy arrays: pitch against the notes (Praat), f0 movement, vibrato,
roughness, harmonicity, clicks, levels, loudness and true peak, note lengths, word error.
Times are in seconds, pitch in MIDI note numbers (fractional) or cents, levels in dB.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import jiwer
import numpy as np
import parselmouth
import pyloudnorm
from scipy.signal import butter, resample_poly, sosfiltfilt

HOP_S = 0.01  # Praat frames
WITHIN_CENTS = 50.0
MAX_STEP_CENTS = 100.0  # a bigger jump between 10 ms frames is a tracker error, not movement
VIBRATO_BAND_HZ = (3.0, 9.0)
ROUGHNESS_BAND_HZ = (15.0, 70.0)
SLOW_LEVEL_HZ = 10.0
ENVELOPE_RATE = 1000  # Hz, the amplitude envelope's sampling rate for roughness
CLICK_RATIO = 400.0
SILENCE_DB = -120.0  # the level given to digital silence


class MeasureError(ValueError):
    """A measure cannot be taken on this input (too short, no notes)."""


@dataclass(frozen=True)
class Notes:
    """Notes in time order that do not overlap: onset and end (s), pitch (MIDI, may be
    fractional, as an annotation of a real singer is)."""

    start_s: np.ndarray
    end_s: np.ndarray
    midi: np.ndarray

    @classmethod
    def of(cls, notes: Iterable[tuple[float, float, float]]) -> Notes:
        """From (pitch MIDI, start s, end s) triples, sorted by onset."""
        rows = sorted((float(s), float(e), float(p)) for p, s, e in notes)
        array = np.array(rows, dtype=np.float64).reshape(-1, 3)
        return cls(array[:, 0], array[:, 1], array[:, 2])

    def __len__(self) -> int:
        return len(self.start_s)

    @property
    def duration_s(self) -> np.ndarray:
        return np.asarray(self.end_s - self.start_s)

    def at(self, times_s: np.ndarray) -> np.ndarray:
        """The index of the note sounding at each time (start inclusive, end exclusive),
        -1 where none does."""
        index = np.searchsorted(self.start_s, times_s, side="right") - 1
        safe = np.clip(index, 0, None)
        inside = (index >= 0) & (times_s < self.end_s[safe]) if len(self) else index < -1
        return np.asarray(np.where(inside, index, -1))


def hz_to_midi(f0_hz: np.ndarray | float) -> np.ndarray:
    return 69.0 + 12.0 * np.log2(np.asarray(f0_hz, dtype=np.float64) / 440.0)


def midi_to_hz(midi: np.ndarray | float) -> np.ndarray:
    return 440.0 * 2.0 ** ((np.asarray(midi, dtype=np.float64) - 69.0) / 12.0)


# --- Pitch ---------------------------------------------------------------------------------

def praat_pitch(samples: np.ndarray, sample_rate: int, floor_hz: float, ceiling_hz: float,
                hop_s: float = HOP_S) -> tuple[np.ndarray, np.ndarray]:
    """f0 by Praat's autocorrelation tracker (`to_pitch_ac`, default settings otherwise).

    samples: mono float; floor_hz, ceiling_hz: the search range (Hz); hop_s: frame step (s).
    Returns frame times (s) and f0 (Hz, 0 where unvoiced); both empty when the clip is
    shorter than one analysis window (3 / floor_hz seconds).
    """
    sound = parselmouth.Sound(samples.astype(np.float64), sampling_frequency=sample_rate)
    if sound.duration < 3.0 / floor_hz:
        return np.zeros(0), np.zeros(0)
    track = sound.to_pitch_ac(time_step=hop_s, pitch_floor=floor_hz, pitch_ceiling=ceiling_hz)
    return np.asarray(track.xs()), np.asarray(track.selected_array["frequency"])


def pitch_range_hz(notes: Notes) -> tuple[float, float]:
    """The tracker's range for a voice singing `notes`: 0.7 times the lowest note's
    frequency (at least 40 Hz) to 1.5 times the highest (at most 1100 Hz)."""
    if not len(notes):
        raise MeasureError("no notes")
    low = float(midi_to_hz(notes.midi.min()))
    high = float(midi_to_hz(notes.midi.max()))
    return max(40.0, 0.7 * low), min(1100.0, 1.5 * high)


def deviation_cents(times_s: np.ndarray, f0_hz: np.ndarray, notes: Notes) -> np.ndarray:
    """Signed distance (cents) of each voiced frame inside a note from that note's pitch.

    Frames between notes are left out. Returns one value per judged frame.
    """
    index = notes.at(times_s)
    judged = (index >= 0) & (f0_hz > 0)
    return np.asarray(100.0 * (hz_to_midi(f0_hz[judged]) - notes.midi[index[judged]]))


def movement_cents(times_s: np.ndarray, f0_hz: np.ndarray, notes: Notes,
                   max_step_cents: float = MAX_STEP_CENTS) -> np.ndarray:
    """How fast the pitch moves inside notes: |change| in cents per 10 ms between each pair
    of consecutive frames that are both voiced and inside the same note.

    Steps above `max_step_cents` (tracker octave errors) are left out. A steady tone gives
    about 0; a sine vibrato of depth A cents at r Hz gives a mean of 4 * A * r / 100.
    """
    if len(times_s) < 2:
        return np.zeros(0)
    index = notes.at(times_s)
    pair = (index[1:] >= 0) & (index[1:] == index[:-1]) & (f0_hz[1:] > 0) & (f0_hz[:-1] > 0)
    safe = np.where(f0_hz > 0, f0_hz, 1.0)
    step = np.abs(np.diff(1200.0 * np.log2(safe))) * (0.01 / np.diff(times_s))
    step = step[pair]
    return np.asarray(step[step <= max_step_cents])


def vibrato(cents: np.ndarray, hop_s: float = HOP_S,
            band_hz: tuple[float, float] = VIBRATO_BAND_HZ) -> tuple[float, float]:
    """Depth (cents) and rate (Hz) of the pitch modulation in a held note's f0 contour.

    cents: f0 every `hop_s` seconds (any reference), without gaps. The contour's straight
    line trend is taken out; depth is sqrt(2) times the standard deviation of what is left
    (the half peak-to-peak of a sine, e.g. 50 for a +-50 cent vibrato); rate is the highest
    peak of its Hann-windowed, zero-padded spectrum between band_hz[0] and band_hz[1] Hz.
    """
    if len(cents) < 4:
        raise MeasureError("a vibrato needs at least 4 frames")
    frames = np.arange(len(cents))
    residual = cents - np.polyval(np.polyfit(frames, cents, 1), frames)
    depth = float(np.sqrt(2.0) * residual.std())
    size = max(4096, 2 ** int(np.ceil(np.log2(len(cents)))))
    spectrum = np.abs(np.fft.rfft(residual * np.hanning(len(cents)), n=size))
    freqs = np.fft.rfftfreq(size, hop_s)
    band = (freqs >= band_hz[0]) & (freqs <= band_hz[1])
    return depth, float(freqs[band][np.argmax(spectrum[band])])


def note_vibratos(times_s: np.ndarray, f0_hz: np.ndarray, notes: Notes,
                  min_note_s: float = 0.4, skip_start_s: float = 0.1, skip_end_s: float = 0.05,
                  min_run_s: float = 0.25) -> np.ndarray:
    """vibrato() on each note of at least `min_note_s`: on the longest run of consecutive
    voiced frames inside the note, less its first `skip_start_s` (the glide or overshoot
    into it) and its last `skip_end_s`, when that run lasts at least `min_run_s`.

    Returns an array [n, 2] of (depth cents, rate Hz), one row per measured note.
    """
    rows = []
    hop_s = float(np.median(np.diff(times_s))) if len(times_s) > 1 else HOP_S
    for start, end in zip(notes.start_s, notes.end_s, strict=True):
        if end - start < min_note_s:
            continue
        window = (times_s >= start + skip_start_s) & (times_s < end - skip_end_s)
        run = _longest_run(window & (f0_hz > 0))
        if len(run) * hop_s < min_run_s:
            continue
        rows.append(vibrato(1200.0 * np.log2(f0_hz[run] / 440.0), hop_s))
    return np.array(rows, dtype=np.float64).reshape(-1, 2)


def _longest_run(mask: np.ndarray) -> np.ndarray:
    """Indices of the longest run of True in `mask` (empty when there is none)."""
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    if not len(starts):
        return np.zeros(0, dtype=np.int64)
    longest = int(np.argmax(ends - starts))
    return np.arange(starts[longest], ends[longest])


# --- Voice quality ---------------------------------------------------------------------------

def roughness(samples: np.ndarray, sample_rate: int, period_s: float,
              band_hz: tuple[float, float] = ROUGHNESS_BAND_HZ,
              slow_hz: float = SLOW_LEVEL_HZ, middle: float = 0.6) -> float:
    """Fast amplitude flutter of a held vowel, as a fraction of its level (0 = steady).

    samples: the held vowel (mono float, at least 0.1 s); period_s: its pitch period (s).
    The amplitude envelope is the square root of the power averaged over exactly one pitch
    period (a window that cancels the ripple of the pitch itself), sampled at 1 kHz. Its
    fluctuation in the `band_hz` band (15-70 Hz: flutter heard as roughness, too fast to be
    vibrato or phrasing) is compared with its slow level (below `slow_hz`): the RMS of the
    band-passed envelope over the mean of the low-passed envelope, both on the `middle`
    share of the vowel (filtered over the whole of it, so the filters' edges fall outside).
    A tone amplitude-modulated to depth m at 30 Hz gives about m / sqrt(2). Modulation near
    the pitch itself is attenuated by the one-period window (for a 100 Hz voice, 50 % at
    60 Hz), so compare voices of similar pitch.
    """
    width = max(1, round(period_s * sample_rate))
    if len(samples) < width + round(0.1 * sample_rate):
        raise MeasureError("too short for roughness")
    power = np.concatenate([[0.0], np.cumsum(samples.astype(np.float64) ** 2)])
    mean_power = (power[width:] - power[:-width]) / width
    step = max(1, round(sample_rate / ENVELOPE_RATE))
    envelope = np.sqrt(np.maximum(mean_power[::step], 0.0))
    rate = sample_rate / step
    fast = sosfiltfilt(butter(2, band_hz, "bandpass", fs=rate, output="sos"), envelope)
    slow = sosfiltfilt(butter(2, slow_hz, "lowpass", fs=rate, output="sos"), envelope)
    edge = round(len(envelope) * (1.0 - middle) / 2)
    centre = slice(edge, len(envelope) - edge)
    level = float(np.mean(slow[centre]))
    return float(np.sqrt(np.mean(fast[centre] ** 2)) / level) if level > 0 else 0.0


def note_roughness(samples: np.ndarray, sample_rate: int, times_s: np.ndarray,
                   f0_hz: np.ndarray, notes: Notes, min_note_s: float = 0.3,
                   min_voiced: float = 0.9) -> np.ndarray:
    """roughness() of each held vowel: every note of at least `min_note_s` whose middle 60 %
    has at least `min_voiced` of its pitch frames voiced; the period is that of the median
    f0 there. `times_s`, `f0_hz`: the pitch track of `samples` (Praat, s and Hz).
    Returns one value per measured note."""
    values = []
    for start, end in zip(notes.start_s, notes.end_s, strict=True):
        if end - start < min_note_s:
            continue
        margin = 0.2 * (end - start)
        frames = (times_s >= start + margin) & (times_s < end - margin)
        if not frames.any() or (f0_hz[frames] > 0).mean() < min_voiced:
            continue
        segment = samples[round(start * sample_rate):round(end * sample_rate)]
        period_s = 1.0 / float(np.median(f0_hz[frames][f0_hz[frames] > 0]))
        values.append(roughness(segment, sample_rate, period_s))
    return np.array(values, dtype=np.float64)


def praat_hnr(samples: np.ndarray, sample_rate: int, floor_hz: float,
              hop_s: float = HOP_S) -> tuple[np.ndarray, np.ndarray]:
    """Harmonics-to-noise ratio (dB) by Praat's cross-correlation method
    (`to_harmonicity_cc`, one period per window, silence threshold 0.1).

    Returns frame times (s) and HNR (dB, NaN where Praat finds no voice).
    """
    sound = parselmouth.Sound(samples.astype(np.float64), sampling_frequency=sample_rate)
    if sound.duration < 3.0 / floor_hz:
        return np.zeros(0), np.zeros(0)
    harmonicity = sound.to_harmonicity_cc(time_step=hop_s, minimum_pitch=floor_hz)
    values = np.asarray(harmonicity.values[0], dtype=np.float64)
    return np.asarray(harmonicity.xs()), np.where(values > -199.0, values, np.nan)


def in_notes(times_s: np.ndarray, values: np.ndarray, notes: Notes) -> np.ndarray:
    """The finite values of the frames that lie inside a note."""
    keep = (notes.at(times_s) >= 0) & np.isfinite(values)
    return np.asarray(values[keep])


# --- Waveform -----------------------------------------------------------------------------

def clicks(samples: np.ndarray, sample_rate: int, ratio: float = CLICK_RATIO,
           block_s: float = 0.01, reach_blocks: int = 2, percentile: float = 50.0,
           sound_db: float = -35.0, merge_s: float = 0.002) -> np.ndarray:
    """Times (s) of waveform discontinuities: clicks, cuts, spikes.

    A sample is a click when the magnitude of the waveform's second difference there,
    |x[n+1] - 2 x[n] + x[n-1]|, exceeds `ratio` times its local level, during sound. The
    local level is the median (`percentile`) of |second difference| over the sample's block
    of `block_s` seconds and `reach_blocks` blocks either side (50 ms, so one click cannot
    raise it); during sound: the block's or a neighbour's RMS is within `sound_db` dB of the
    loudest block's. Flagged samples closer than `merge_s` seconds count as one click.

    Calibration at 32 kHz, through Opus: the 9 speech clips and vocadito count 0 (their
    highest local ratio is 319, a plosive released into silence); on a 220 Hz sine of
    amplitude 0.3, a one-sample spike of 0.1 gives 444 (counted), a step of 0.1 gives 224
    (not counted). So it counts spikes, cuts into or out of silence, and a voice broken into
    pulses with silence between them (ratios over 1000), not a small step inside a loud
    vowel, which no such detector tells from the voice's own transients.
    """
    x = samples.astype(np.float64)
    d2 = np.abs(np.diff(x, 2))
    block = max(1, round(block_s * sample_rate))
    n_blocks = len(d2) // block
    if n_blocks < 2 * reach_blocks + 1:
        return np.zeros(0)
    blocks = d2[:n_blocks * block].reshape(n_blocks, block)
    padded = np.pad(blocks, ((reach_blocks, reach_blocks), (0, 0)), mode="edge")
    windows = np.lib.stride_tricks.sliding_window_view(padded, 2 * reach_blocks + 1, axis=0)
    level = np.percentile(windows.reshape(n_blocks, -1), percentile, axis=1)
    rms = np.sqrt(np.mean(x[1:n_blocks * block + 1].reshape(n_blocks, block) ** 2, axis=1))
    top = float(rms.max())
    if top <= 0:
        return np.zeros(0)
    near = np.lib.stride_tricks.sliding_window_view(
        np.pad(rms, reach_blocks, mode="edge"), 2 * reach_blocks + 1).max(axis=1)
    sounding = near > top * 10 ** (sound_db / 20)
    floor = 1e-6 * top  # so near-silence (Opus's noise floor) is never divided by zero
    threshold = np.where(sounding, ratio * np.maximum(level, floor), np.inf)
    flagged = np.flatnonzero(blocks > threshold[:, None]) + 1  # +1: d2[n] sits on x[n + 1]
    if not len(flagged):
        return np.zeros(0)
    first = np.concatenate([[True], np.diff(flagged) > merge_s * sample_rate])
    return np.asarray(flagged[first] / sample_rate)


def true_peak_dbtp(samples: np.ndarray, sample_rate: int) -> float:
    """The true peak (dBTP): the largest magnitude after 4x oversampling (ITU-R BS.1770-4,
    polyphase FIR interpolation). `sample_rate` is not needed for the figure; it is kept
    so every level function has one signature."""
    del sample_rate
    if not samples.size:
        return float("-inf")
    top = float(np.max(np.abs(resample_poly(samples.astype(np.float64), 4, 1))))
    return 20.0 * float(np.log10(top)) if top > 0 else float("-inf")


def loudness_lufs(samples: np.ndarray, sample_rate: int) -> float:
    """Integrated loudness (LUFS, ITU-R BS.1770-4, gated) by pyloudnorm: an implementation
    independent of the engine's own, so the engine is not judged by itself."""
    x = samples.astype(np.float64)
    if len(x) < round(0.4 * sample_rate):
        x = np.pad(x, (0, round(0.4 * sample_rate) - len(x)))
    return float(pyloudnorm.Meter(sample_rate).integrated_loudness(x))


def frame_db(samples: np.ndarray, sample_rate: int,
             frame_s: float = 0.02) -> tuple[np.ndarray, np.ndarray]:
    """RMS level (dBFS, SILENCE_DB for digital silence) of frames of `frame_s` seconds.
    Returns the frames' centre times (s) and levels."""
    size = max(1, round(frame_s * sample_rate))
    n = len(samples) // size
    frames = samples[:n * size].astype(np.float64).reshape(n, size)
    rms = np.sqrt(np.mean(frames**2, axis=1))
    with np.errstate(divide="ignore"):
        level = np.maximum(20.0 * np.log10(rms), SILENCE_DB)
    return (np.arange(n) + 0.5) * size / sample_rate, level


def sound_span_s(samples: np.ndarray, sample_rate: int, below_top_db: float = 40.0,
                 frame_s: float = 0.01) -> tuple[float, float]:
    """Where the sound starts and ends (s): the first and last frames of `frame_s` whose RMS
    is within `below_top_db` dB of the loudest frame's. (nan, nan) for silence."""
    times, level = frame_db(samples, sample_rate, frame_s)
    if not level.size or level.max() <= SILENCE_DB:
        return float("nan"), float("nan")
    loud = np.flatnonzero(level > level.max() - below_top_db)
    half = frame_s / 2
    return float(times[loud[0]] - half), float(times[loud[-1]] + half)


def level_between_notes_db(samples: np.ndarray, sample_rate: int, notes: Notes,
                           frame_s: float = 0.02, guard_s: float = 0.03) -> tuple[float, float]:
    """The voice's level inside notes and between them (dBFS, medians of frame RMS).

    Inside: frames of `frame_s` whose centre lies inside a note. Between: frames from the
    first note's onset to the last note's end whose centre is at least `guard_s` away from
    every note (consonants, breaths, pauses, and whatever noise came along). nan when there
    are no such frames.
    """
    times, level = frame_db(samples, sample_rate, frame_s)
    index = notes.at(times)
    inside = level[index >= 0]
    if not len(notes):
        raise MeasureError("no notes")
    near = (notes.at(times - guard_s) >= 0) | (notes.at(times + guard_s) >= 0) | (index >= 0)
    span = (times >= notes.start_s[0]) & (times < notes.end_s[-1])
    between = level[span & ~near]
    return (float(np.median(inside)) if inside.size else float("nan"),
            float(np.median(between)) if between.size else float("nan"))


# --- Notes and rhythm ---------------------------------------------------------------------

def phrase_ends(notes: Notes, gap_s: float = 0.25) -> np.ndarray:
    """Which notes end a phrase: those followed by a gap of at least `gap_s` seconds (from
    their end to the next onset), and the last note."""
    if not len(notes):
        return np.zeros(0, dtype=bool)
    gaps = np.concatenate([notes.start_s[1:] - notes.end_s[:-1], [np.inf]])
    return np.asarray(gaps >= gap_s)


def note_lengths(notes: Notes, short_s: float = 0.15, gap_s: float = 0.25) -> dict[str, Any]:
    """Note durations (s): median, share under `short_s`, and the phrase-end notes' (see
    phrase_ends) count, shortest and median."""
    return note_length_figures(notes.duration_s, notes.duration_s[phrase_ends(notes, gap_s)],
                               short_s)


def note_length_figures(durations_s: np.ndarray, phrase_end_s: np.ndarray,
                        short_s: float = 0.15) -> dict[str, Any]:
    """note_lengths() from the durations (s) of all notes and of the phrase-end notes (of
    one clip, or pooled over several)."""
    if not len(durations_s):
        raise MeasureError("no notes")
    return {"notes": len(durations_s), "median_s": round(float(np.median(durations_s)), 3),
            "share_under_150_ms": round(float(np.mean(durations_s < short_s)), 4),
            "phrase_ends": len(phrase_end_s),
            "phrase_end_min_s": round(float(phrase_end_s.min()), 3),
            "phrase_end_median_s": round(float(np.median(phrase_end_s)), 3)}


def inter_onset_beats(notes: Notes, tempo_bpm: float, step_beats: float = 0.25,
                      most_beats: float = 4.0) -> dict[str, int]:
    """Histogram of the time from each onset to the next, in beats at `tempo_bpm`, rounded to
    the nearest `step_beats`; keys are the beat counts as text ("0.5", "1", ...), with
    longer gaps counted under ">4"."""
    beats = np.diff(notes.start_s) * tempo_bpm / 60.0
    rounded = np.round(beats / step_beats) * step_beats
    histogram: dict[str, int] = {}
    for value in sorted(rounded):
        key = f">{most_beats:g}" if value > most_beats else f"{value:g}"
        histogram[key] = histogram.get(key, 0) + 1
    return histogram


# --- Words --------------------------------------------------------------------------------

def transcribe(samples_16k: np.ndarray) -> str:
    """The words pocketsphinx (its US English model) hears in mono float samples at 16 kHz,
    lower case, separated by single spaces ("" when it hears none).

    A fresh decoder for each transcript (0.3 s to load): a decoder carries its cepstral mean
    over from one utterance to the next, so a reused one gives a transcript that depends on
    what it heard before. Its search is narrower than the default (3000 HMMs a frame, not
    30000): on a LibriSpeech clip the same transcript in 60 % of the time, and a third of
    the time on its noisy song, where the default search takes 9 s.
    """
    from pocketsphinx import Decoder

    decoder = Decoder(samprate=16000, logfn=os.devnull, maxhmmpf=3000, maxwpf=10)
    pcm = (np.clip(samples_16k, -1.0, 1.0) * 32767).astype("<i2").tobytes()
    decoder.start_utt()
    decoder.process_raw(pcm, full_utt=True)
    decoder.end_utt()
    hypothesis = decoder.hyp()
    return " ".join(hypothesis.hypstr.split()) if hypothesis is not None else ""


def word_error_rate(references: Sequence[str], hypotheses: Sequence[str]) -> float:
    """Word error rate (jiwer) over pairs of texts, counted over all their words together:
    (substitutions + deletions + insertions) / reference words. Pairs with an empty
    reference are skipped; nan when none is left."""
    pairs = [(r, h) for r, h in zip(references, hypotheses, strict=True) if r.strip()]
    if not pairs:
        return float("nan")
    return float(jiwer.wer([r for r, _ in pairs], [h for _, h in pairs]))
