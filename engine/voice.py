"""Held vowels resynthesised with the WORLD vocoder, joined with the voice's own consonants.

Overlap-add (retune.py) keeps words and timbre but, where a short spoken vowel is stretched
into a sung note, it repeats the speaker's irregular periods: the held vowel flutters and
the noise between its harmonics is stretched with it. Here each voiced stretch of the sung
voice, from just after its start (where the consonant-vowel transition sounds) to its end,
is made again by WORLD (Morise et al. 2016) from the speaker's own spectral envelope (read at
the input instant the time map names) on the sung pitch contour, with the breath noise
between harmonics lowered. The onsets, and everything unvoiced, stay as the voice said them;
each join is a short crossfade, placed where the two signals' periods line up.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from scipy.ndimage import uniform_filter1d

from engine.pitch import HOP_S, PitchTrack, midi_to_hz
from engine.retune import RetunedVoice, TimeMap

with warnings.catch_warnings():  # pyworld imports pkg_resources, which warns that it is old
    warnings.simplefilter("ignore", UserWarning)
    import pyworld

FRAME_S = 0.005  # WORLD's synthesis frame period
ATTACK_S = 0.05  # overlap-add keeps the first this-long of each voiced stretch (the onset)
MIN_HELD_S = 0.12  # shorter voiced stretches are left to overlap-add
FADE_IN_S = 0.025
FADE_OUT_S = 0.012
APERIODICITY_EVERY = 3  # d4c on every third analysis frame (it is smooth; and the dearest)
BREATH_SCALE = 0.5  # aperiodicity on held vowels, in amplitude: less noise between harmonics
FLOOR_HZ = (71.0, 300.0)  # bounds of the analysis floor (WORLD's default is 71 Hz)
FLOOR_SHARE = 0.85  # the floor, against the 5th percentile of the voice's pitch
SMOOTH_FRAMES = 5  # analysis frames (of HOP_S) the envelope is averaged over
# and then synthesis frames (of FRAME_S): interpolating between analysis frames that a held
# vowel stretches far apart leaves a kink at each, a flutter of 10-40 Hz
OUTPUT_SMOOTH_FRAMES = 7
# Synthesis needs the vocal tract's response, shorter than the three periods of the floor
# that cheaptrick's window spans: it runs with the smallest FFT holding SYNTH_PERIODS of
# them, which halves its cost for a voice with a floor of 86..129 Hz (at 22,050 Hz). With
# one and a half periods, a 71 Hz voice's spectral valleys filled in by up to 10 dB.
SYNTH_PERIODS = 2.0


@dataclass(frozen=True)
class HeldSpan:
    """A voiced stretch of the sung voice that WORLD makes, in output seconds."""

    start_s: float
    end_s: float


def held_spans(voiced_in: np.ndarray, hop_s: float, times_in: np.ndarray,
               time_map: TimeMap) -> list[HeldSpan]:
    """The voiced stretches of the input that the time map sings, on the song's time line.

    Each starts ATTACK_S (50 ms) after the stretch's mapped start (its attack is left to
    overlap-add); those shorter than MIN_HELD_S (0.12 s) are left out.

    Parameters
    ----------
    voiced_in : np.ndarray [shape=(n,)], bool
        Whether each input frame is voiced.
    hop_s : float > 0
        Frame spacing of the input track (s).
    times_in : np.ndarray [shape=(n,)], float
        Each frame's time on the input (s).
    time_map : TimeMap
        Input -> output time (s -> s); frames outside its input span are cut off.

    Returns
    -------
    spans : list of HeldSpan
        Start and end on the output time line (s), in order.
    """
    edges = np.flatnonzero(np.diff(np.concatenate([[0], voiced_in.astype(int), [0]])))
    first_in, last_in = float(time_map.input_s[0]), float(time_map.input_s[-1])
    spans = []
    for first, stop in zip(edges[::2], edges[1::2], strict=True):
        start_in = max(float(times_in[first]), first_in)
        end_in = min(float(times_in[stop - 1]) + hop_s, last_in)
        if end_in <= start_in:
            continue
        start_out = float(time_map.to_output(start_in)) + ATTACK_S
        end_out = float(time_map.to_output(end_in))
        if end_out - start_out >= MIN_HELD_S:
            spans.append(HeldSpan(start_out, end_out))
    return spans


@dataclass(frozen=True)
class HeldVowel:
    """A held stretch of voice made by WORLD, to be joined into the retuned voice."""

    span: HeldSpan
    samples: np.ndarray
    first_hz: float  # its pitch where it begins (the join looks for a lag within a period)


def analyse(samples: np.ndarray, sample_rate: int, f0: PitchTrack) -> Envelope:
    """WORLD's view of a voice, once for every piece of song sung from it.

    Parameters
    ----------
    samples : np.ndarray [shape=(n,)], float in -1..1
        The mono input voice.
    sample_rate : int > 0
        Its rate (Hz).
    f0 : PitchTrack
        Its pitch track (HOP_S frames); the analysis floor is FLOOR_SHARE of its 5th percentile
        of voiced f0, within FLOOR_HZ (71..300 Hz).

    Returns
    -------
    envelope : Envelope
        Spectral envelope (smoothed log) and aperiodicity at each voiced frame (times in s),
        on the bins of the synthesis FFT (the smallest holding SYNTH_PERIODS, 2, periods of
        the floor, and no larger than cheaptrick's).
    """
    return Envelope.analyse(samples.astype(np.float64), sample_rate, f0)


def synthesise_held(envelope: Envelope, sample_rate: int, f0: PitchTrack, time_map: TimeMap,
                    contour: tuple[np.ndarray, np.ndarray]) -> list[HeldVowel]:
    """The held stretches of a sung voice, made by WORLD.

    Needs nothing of the overlap-add result, so it can run beside it (pyworld lets go of the
    GIL). The breath noise between harmonics is scaled by BREATH_SCALE (0.5).

    Parameters
    ----------
    envelope : Envelope
        `analyse` of the input voice.
    sample_rate : int > 0
        Rate of the input and of the result (Hz).
    f0 : PitchTrack
        The input's pitch track (HOP_S frames).
    time_map : TimeMap
        Input -> song time (s -> s).
    contour : (np.ndarray, np.ndarray)
        The sung pitch as (song times in s, MIDI pitch in fractional semitones), as
        retune.sung_contour gives it.

    Returns
    -------
    held : list of HeldVowel
        One per held_spans span, synthesised at FRAME_S (5 ms) frames; empty when there is none
        or the envelope has no voiced frame.
    """
    spans = held_spans(f0.voiced, HOP_S, f0.times_s, time_map)
    if not spans or envelope.times_s.size == 0:
        return []

    def make(span: HeldSpan) -> HeldVowel:
        frames_out = np.arange(span.start_s, span.end_s, FRAME_S)
        spectrum, aperiodicity = envelope.at(time_map.to_input(frames_out), OUTPUT_SMOOTH_FRAMES)
        hz = np.asarray(midi_to_hz(np.interp(frames_out, contour[0], contour[1])))
        # WORLD's noise for each pulse spans one period, which must fit in its FFT
        fft_size = 2 * (spectrum.shape[1] - 1)
        hz = np.maximum(hz, 1.1 * sample_rate / fft_size)
        sound = pyworld.synthesize(hz, np.ascontiguousarray(spectrum),
                                   np.ascontiguousarray(aperiodicity * BREATH_SCALE),
                                   sample_rate, frame_period=FRAME_S * 1000)
        return HeldVowel(span, sound, float(hz[0]))

    return [make(span) for span in spans]


def join_held(sung_voice: RetunedVoice, held: list[HeldVowel]) -> RetunedVoice:
    """The retuned voice with each held stretch crossfaded in.

    Each comes in after its attack over FADE_IN_S (25 ms), delayed by less than one period to
    where its periods line up with the voice's, and goes out over FADE_OUT_S (12 ms) where the
    voicing ends; stretches before the voice's start or past its end are skipped.

    Parameters
    ----------
    sung_voice : RetunedVoice
        The overlap-add result.
    held : list of HeldVowel
        From synthesise_held, at the same sample rate.

    Returns
    -------
    voice : RetunedVoice
        float32 samples, as long as `sung_voice`'s, at its rate and start (s).
    """
    rate = sung_voice.sample_rate
    out = sung_voice.samples.astype(np.float64)
    for vowel in held:
        first = round((vowel.span.start_s - sung_voice.start_s) * rate)
        length = min(len(vowel.samples), len(out) - first)
        if first < 0 or length <= 0:
            continue
        sound = vowel.samples[:length]
        period = round(rate / max(vowel.first_hz, 50.0))
        fade_in = min(round(FADE_IN_S * rate), length // 3)
        lag = _best_lag(out[first: first + fade_in + period], sound[: fade_in + period], period)
        sound = np.concatenate([np.zeros(lag), sound[: length - lag]])
        fade_out = min(round(FADE_OUT_S * rate), length // 3)
        weight = np.ones(length)
        weight[:lag] = 0.0
        rising = weight[lag: lag + fade_in]
        rising[:] = 0.5 - 0.5 * np.cos(np.pi * np.arange(len(rising)) / fade_in)
        weight[length - fade_out:] = 0.5 + 0.5 * np.cos(np.pi * np.arange(fade_out) / fade_out)
        target = out[first: first + length]
        target[:] = (1 - weight) * target + weight * sound
    return RetunedVoice(out.astype(np.float32), rate, sung_voice.start_s)


@dataclass(frozen=True)
class Envelope:
    """WORLD's spectral envelope and aperiodicity of the input's voiced frames."""

    times_s: np.ndarray
    log_spectrum: np.ndarray  # [frames, bins]
    aperiodicity: np.ndarray  # [frames, bins]

    @staticmethod
    def analyse(x: np.ndarray, rate: int, f0: PitchTrack) -> Envelope:
        voiced = f0.voiced
        times, hz = f0.times_s[voiced], f0.f0_hz[voiced]
        # The analysis window spans three periods of the voice's lowest usual pitch: a
        # high voice gets a shorter FFT, which halves what synthesis costs.
        floor_hz = float(np.clip(FLOOR_SHARE * np.percentile(hz, 5), *FLOOR_HZ))
        fft_size = pyworld.get_cheaptrick_fft_size(rate, floor_hz)
        spectrum = pyworld.cheaptrick(x, hz, times, rate, f0_floor=floor_hz, fft_size=fft_size)
        every = slice(None, None, APERIODICITY_EVERY)
        coarse = pyworld.d4c(x, np.ascontiguousarray(hz[every]),
                             np.ascontiguousarray(times[every]), rate, fft_size=fft_size)
        aperiodicity = _rows_at(coarse, times[every], times)
        # A held vowel stretches each 10 ms frame over many: frame-to-frame wobble (shimmer,
        # jitter, noise) would become a flutter, so the envelope is smoothed over SMOOTH_FRAMES.
        log_spectrum = uniform_filter1d(np.log(np.maximum(spectrum, 1e-16)), SMOOTH_FRAMES,
                                        axis=0, mode="nearest")
        aperiodicity = uniform_filter1d(aperiodicity, SMOOTH_FRAMES, axis=0, mode="nearest")
        step = fft_size // min(fft_size, _power_of_two_at_least(SYNTH_PERIODS * rate / floor_hz))
        return Envelope(times, _bins_every(log_spectrum, step), _bins_every(aperiodicity, step))

    def at(self, times_in: np.ndarray, smooth: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """Spectrum and aperiodicity at input times, interpolated between voiced frames and
        then averaged over `smooth` of the requested frames."""
        log_spectrum = _rows_at(self.log_spectrum, self.times_s, times_in)
        aperiodicity = _rows_at(self.aperiodicity, self.times_s, times_in)
        if smooth > 1:
            log_spectrum = uniform_filter1d(log_spectrum, smooth, axis=0, mode="nearest")
            aperiodicity = uniform_filter1d(aperiodicity, smooth, axis=0, mode="nearest")
        return np.exp(log_spectrum, out=log_spectrum), aperiodicity


def _rows_at(table: np.ndarray, times_s: np.ndarray, at_s: np.ndarray) -> np.ndarray:
    """Rows of `table` (one per time in `times_s`, increasing) linearly interpolated at
    `at_s`, held at the ends: np.interp for every column at once."""
    position = np.interp(at_s, times_s, np.arange(len(times_s)))
    low = np.floor(position).astype(int)
    high = np.minimum(low + 1, len(times_s) - 1)
    weight = (position - low)[:, None]
    # (1 - weight) * table[low] + weight * table[high], in place: the same sums, bit for bit,
    # with two arrays of [frames, bins] made instead of five.
    rows: np.ndarray = table[low]
    rows *= 1 - weight
    upper = table[high]
    upper *= weight
    rows += upper
    return rows


def _power_of_two_at_least(n: float) -> int:
    return 1 << max(0, int(np.ceil(np.log2(n))))


def _bins_every(table: np.ndarray, step: int) -> np.ndarray:
    """Every `step`-th frequency bin of `table` [frames, bins]: the same envelope on the
    grid of an FFT `step` times smaller (the envelopes are smooth over the voice's f0, wider
    than `step` bins)."""
    return np.ascontiguousarray(table[:, ::step]) if step > 1 else table


def _best_lag(reference: np.ndarray, candidate: np.ndarray, period: int) -> int:
    """The delay of `candidate` (less than one period) that best lines its waveform up with
    `reference`."""
    span = min(len(reference), len(candidate))
    lags = max(1, min(period, span - 1))
    scores = np.correlate(reference[:span], candidate[: span - lags + 1], mode="valid")
    return int(np.argmax(scores[:lags]))
