"""From a voice to units of singing: syllables and range (the voice path), notes (piano)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
from scipy.ndimage import median_filter, uniform_filter1d
from scipy.signal import find_peaks

from engine.pitch import HOP_S, PitchTrack, hz_to_midi

WINDOW_S = 0.03
SMOOTH_S = 0.03
FLOOR_BELOW_PEAK_DB = 30.0  # nuclei quieter than this below the loudest are breath or noise
MIN_DIP_DB = 2.0  # two peaks are two syllables only if the level dips this much between
MIN_GAP_S = 0.09  # nor closer than this
MIN_VOICED_S = 0.04


@dataclass(frozen=True)
class Syllable:
    """One syllable: its sound from start_s to end_s, its voiced nucleus from onset_s (the
    instant a singer puts on the beat) to voiced_end_s."""

    start_s: float
    onset_s: float
    voiced_end_s: float
    end_s: float

    @property
    def voiced_s(self) -> float:
        return self.voiced_end_s - self.onset_s


def frame_levels_db(samples: np.ndarray, sample_rate: int, times_s: np.ndarray) -> np.ndarray:
    """RMS level in dB of a WINDOW_S window centred on each time."""
    half = int(WINDOW_S * sample_rate / 2)
    padded = np.pad(samples.astype(np.float64), half)
    energy = np.concatenate([[0.0], np.cumsum(padded**2)])
    centres = np.clip(np.rint(times_s * sample_rate).astype(int), 0, len(samples))
    window_energy = energy[centres + 2 * half] - energy[centres]
    levels: np.ndarray = 10.0 * np.log10(window_energy / max(2 * half, 1) + 1e-10)
    return levels


def syllables(samples: np.ndarray, sample_rate: int, track: PitchTrack) -> list[Syllable]:
    """Syllable nuclei as voiced peaks of loudness (after de Jong and Wempe, 2009)."""
    if track.f0_hz.size < 3:
        return []
    times = track.times_s
    level = uniform_filter1d(frame_levels_db(samples, sample_rate, times),
                             max(1, round(SMOOTH_S / HOP_S)))
    voiced = track.voiced
    floor = level.max() - FLOOR_BELOW_PEAK_DB
    peaks, _ = find_peaks(level, height=floor, distance=max(1, round(MIN_GAP_S / HOP_S)))
    peaks = [int(p) for p in peaks if voiced[p]]
    peaks = _merge_without_dip(peaks, level)
    if not peaks:
        return []
    bounds = [int(np.argmin(level[a:b])) + a for a, b in itertools.pairwise(peaks)]
    starts = [0, *bounds]
    ends = [*bounds, len(level) - 1]
    found = []
    for peak, lo, hi in zip(peaks, starts, ends, strict=True):
        first, last = peak, peak
        while first > lo and voiced[first - 1]:
            first -= 1
        while last < hi and voiced[last + 1]:
            last += 1
        if (last - first + 1) * HOP_S < MIN_VOICED_S:
            continue
        sound = np.flatnonzero(level[lo:hi + 1] > floor)
        start = lo + int(sound[0]) if sound.size else first
        end = lo + int(sound[-1]) if sound.size else last
        found.append(Syllable(
            start_s=float(times[min(start, first)]),
            onset_s=float(times[first]),
            voiced_end_s=float(times[last] + HOP_S),
            end_s=float(times[max(end, last)] + HOP_S),
        ))
    return found


def _merge_without_dip(peaks: list[int], level: np.ndarray) -> list[int]:
    """Neighbouring peaks without a dip of MIN_DIP_DB between them are one syllable."""
    merged: list[int] = []
    for peak in peaks:
        if merged:
            previous = merged[-1]
            dip = min(level[previous], level[peak]) - level[previous:peak + 1].min()
            if dip < MIN_DIP_DB:
                if level[peak] > level[previous]:
                    merged[-1] = peak
                continue
        merged.append(peak)
    return merged


PHRASE_PAUSE_S = 0.25  # unvoiced time between two nuclei that ends a phrase
PHRASE_SILENCE_S = 0.12  # or silence between their sounds
MAX_PHRASE = 12  # longer breath groups are split where they pause most
MIN_PHRASE = 2


def phrases(found: list[Syllable]) -> list[int]:
    """Group syllables into phrases at the speech's pauses: the number of syllables in each,
    in order. A phrase ends where the voice pauses (PHRASE_PAUSE_S unvoiced, or
    PHRASE_SILENCE_S of silence); a breath group longer than MAX_PHRASE is split at its
    longest pause; a lone syllable joins the neighbour it is closer to."""
    if not found:
        return []
    pauses = np.array([b.onset_s - a.voiced_end_s for a, b in itertools.pairwise(found)])
    silences = np.array([b.start_s - a.end_s for a, b in itertools.pairwise(found)])
    ends = set(np.flatnonzero((pauses >= PHRASE_PAUSE_S) | (silences >= PHRASE_SILENCE_S)))
    bounds = [0, *sorted(int(i) + 1 for i in ends), len(found)]
    groups = _join_lone(list(itertools.pairwise(bounds)), pauses)
    split: list[tuple[int, int]] = []
    while groups:
        a, b = groups.pop(0)
        if b - a <= MAX_PHRASE:
            split.append((a, b))
            continue
        inner = np.arange(a + MIN_PHRASE, b - MIN_PHRASE + 1)  # where a new phrase may start
        cut = int(inner[np.argmax(pauses[inner - 1])])
        groups[:0] = [(a, cut), (cut, b)]
    return [b - a for a, b in split]


def _join_lone(groups: list[tuple[int, int]], pauses: np.ndarray) -> list[tuple[int, int]]:
    """Join phrases of fewer than MIN_PHRASE syllables to the nearer neighbour."""
    while len(groups) > 1:
        lone = next((i for i, (a, b) in enumerate(groups) if b - a < MIN_PHRASE), None)
        if lone is None:
            break
        a, b = groups[lone]
        before = pauses[a - 1] if lone > 0 else np.inf
        after = pauses[b - 1] if lone + 1 < len(groups) else np.inf
        other = lone - 1 if before <= after else lone + 1
        first, last = min(lone, other), max(lone, other)
        groups[first:last + 1] = [(groups[first][0], groups[last][1])]
    return groups


def comfortable_range(track: PitchTrack, span: int = 12) -> tuple[int, int]:
    """A singable range of `span` semitones for this voice (MIDI notes). People speak near the
    bottom of their singing range, so it reaches 3 semitones below the median of their
    speaking pitch and the rest above it."""
    voiced = track.f0_hz[track.voiced]
    centre = float(np.median(hz_to_midi(voiced))) if voiced.size else 57.0
    low = round(centre - 3)
    return low, low + span


# --- Transcription: a hummed or sung line as notes ----------------------------------------

NOTE_SIGMA_SEMITONES = 0.4  # how far a held note's pitch may wander (vibrato, scoops)
NOTE_SWITCH_COST = 8.0  # what a change of note costs, in units of the squared deviation
MIN_NOTE_S = 0.06  # shorter pieces are glides or consonants, not notes


@dataclass(frozen=True)
class HeardNote:
    """A note heard in a voice: nearest semitone after the singer's tuning is removed."""

    pitch: int
    start_s: float
    end_s: float
    velocity: int


def tuning_offset(track: PitchTrack) -> float:
    """How far the singer sits from equal temperament (A = 440 Hz), in semitones (-0.5..0.5):
    the circular mean of every voiced frame's distance to its nearest semitone."""
    midi = track.midi()[track.voiced]
    if midi.size == 0:
        return 0.0
    angle = np.angle(np.mean(np.exp(2j * np.pi * (midi - np.round(midi)))))
    return float(angle / (2 * np.pi))


def transcribe(samples: np.ndarray, sample_rate: int, track: PitchTrack) -> list[HeardNote]:
    """The notes of a monophonic voice. Notes end where the voicing breaks (a consonant, a
    breath) and where the pitch settles on another semitone: a Viterbi path over semitones
    with a cost for each change, so vibrato and glides do not split notes; pieces shorter
    than MIN_NOTE_S are merged into their neighbours."""
    if track.f0_hz.size == 0:
        return []
    offset = tuning_offset(track)
    midi = track.midi() - offset
    level = frame_levels_db(samples, sample_rate, track.times_s)
    loudest = float(level[track.voiced].max()) if track.voiced.any() else 0.0
    edges = np.flatnonzero(np.diff(np.concatenate([[0], track.voiced.astype(int), [0]])))
    notes: list[HeardNote] = []
    for first, stop in zip(edges[::2], edges[1::2], strict=True):
        if (stop - first) * HOP_S < MIN_NOTE_S:
            continue
        stretch = median_filter(midi[first:stop], size=5, mode="nearest")
        for start, end, pitch in _settled_pieces(stretch):
            loudness = float(np.median(level[first + start:first + end])) - loudest
            notes.append(HeardNote(
                pitch=int(pitch),
                start_s=float(track.times_s[first + start]),
                end_s=float(track.times_s[first + end - 1] + HOP_S),
                velocity=_velocity(loudness),
            ))
    return notes


def _settled_pieces(stretch: np.ndarray) -> list[tuple[int, int, int]]:
    """(start frame, end frame, semitone) pieces of one voiced stretch."""
    states = np.arange(np.floor(stretch.min()) - 1, np.ceil(stretch.max()) + 2)
    cost = (stretch[:, None] - states[None, :]) ** 2 / (2 * NOTE_SIGMA_SEMITONES**2)
    frames, count = cost.shape
    total = cost[0].copy()
    back = np.zeros((frames, count), dtype=np.int64)
    for i in range(1, frames):
        best = int(total.argmin())
        switch = total[best] + NOTE_SWITCH_COST
        back[i] = np.where(total <= switch, np.arange(count), best)
        total = np.minimum(total, switch) + cost[i]
    path = np.empty(frames, dtype=np.int64)
    path[-1] = int(total.argmin())
    for i in range(frames - 1, 0, -1):
        path[i - 1] = back[i, path[i]]
    pitches = states[path]
    bounds = [0, *(np.flatnonzero(np.diff(pitches)) + 1).tolist(), frames]
    pieces = [[a, b, int(pitches[a])] for a, b in itertools.pairwise(bounds)]
    return [tuple(p) for p in _merge_short(pieces)]  # type: ignore[misc]


def _merge_short(pieces: list[list[int]]) -> list[list[int]]:
    """Fold pieces shorter than MIN_NOTE_S into the neighbour nearest in pitch, then join
    neighbours that ended up on the same semitone."""
    min_frames = round(MIN_NOTE_S / HOP_S)
    while len(pieces) > 1:
        short = [i for i, p in enumerate(pieces) if p[1] - p[0] < min_frames]
        if not short:
            break
        i = short[0]
        piece = pieces.pop(i)
        if i == 0:
            pieces[0][0] = piece[0]
        elif i == len(pieces):
            pieces[-1][1] = piece[1]
        elif abs(pieces[i - 1][2] - piece[2]) <= abs(pieces[i][2] - piece[2]):
            pieces[i - 1][1] = piece[1]
        else:
            pieces[i][0] = piece[0]
    joined: list[list[int]] = []
    for piece in pieces:
        if joined and joined[-1][2] == piece[2]:
            joined[-1][1] = piece[1]
        else:
            joined.append(piece)
    return joined


def _velocity(db_below_loudest: float) -> int:
    """MIDI velocity from loudness: the loudest note 110, 30 dB quieter 40."""
    return int(np.clip(round(110 + db_below_loudest * 70 / 30), 40, 110))


def detect_beat(onsets_s: np.ndarray, min_bpm: float = 60.0,
                max_bpm: float = 180.0) -> tuple[float, float]:
    """The beat the onsets fit best: (tempo in BPM, time of one beat in seconds).

    For each candidate tempo the onsets are wrapped onto its eighth notes; the tempo whose
    wrapped onsets bunch up the most wins, with a gentle preference for tempos near 100 BPM
    (a tempo and its double fit the same onsets).
    """
    if len(onsets_s) < 2:
        return 100.0, float(onsets_s[0]) if len(onsets_s) else 0.0
    tempos = np.arange(min_bpm, max_bpm + 0.5, 0.5)
    eighths_s = 30.0 / tempos
    phases = np.exp(2j * np.pi * onsets_s[None, :] / eighths_s[:, None])
    strength = np.abs(phases.mean(axis=1)) - 0.05 * np.abs(np.log2(tempos / 100.0))
    best = int(np.argmax(strength))
    anchor = float(np.angle(phases[best].mean()) / (2 * np.pi) * eighths_s[best])
    return float(tempos[best]), anchor % eighths_s[best]


def quantize(notes: list[HeardNote], tempo_bpm: float, anchor_s: float,
             steps_per_beat: int = 4) -> list[HeardNote]:
    """Snap onsets and ends to the grid (16ths by default); every note keeps at least a step,
    and a note that would land on the previous one's onset is dropped."""
    step = 60.0 / tempo_bpm / steps_per_beat
    snapped: list[HeardNote] = []
    for note in notes:
        start = anchor_s + round((note.start_s - anchor_s) / step) * step
        end = anchor_s + round((note.end_s - anchor_s) / step) * step
        start = max(start, 0.0)
        if snapped and start <= snapped[-1].start_s + 1e-9:
            continue
        if snapped and snapped[-1].end_s > start:
            last = snapped[-1]
            snapped[-1] = HeardNote(last.pitch, last.start_s, start, last.velocity)
        snapped.append(HeardNote(note.pitch, float(start), float(max(end, start + step)),
                                 note.velocity))
    return snapped
