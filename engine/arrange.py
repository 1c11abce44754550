"""Backing parts from a melody and rendering MIDI to audio through FluidSynth."""

from __future__ import annotations

import ctypes
import io
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pretty_midi

from engine.audio import fit_length
from engine.errors import InvalidRequest, ToolMissing
from engine.melody.compose import Melody
from engine.theory import chord_pitch_classes

# 32 kHz keeps everything up to 16 kHz and costs FluidSynth a quarter less than 44.1 kHz.
SAMPLE_RATE = 32000
DRUM_CHANNEL = 9
SOUNDFONT_PATHS = (
    Path("/usr/share/sounds/sf2/FluidR3_GM.sf2"),
    Path("/usr/share/sounds/sf2/default-GM.sf2"),
    Path("/usr/share/sounds/sf2/TimGM6mb.sf2"),
    Path("/usr/share/sounds/sf3/default-GM.sf3"),
)
MELODY_TRACK = "melody"
PIANO, ELECTRIC_PIANO, FINGERED_BASS = 0, 4, 33
CHORD_LOW, BASS_LOW = 52, 36  # lowest note of the chord voicing and of the bass


@cache
def find_soundfont() -> Path:
    """The General MIDI soundfont FluidSynth renders with (the best one installed).

    Returns
    -------
    path : Path
        The first of SOUNDFONT_PATHS that exists; looked up once per process.

    Raises
    ------
    ToolMissing
        When none of them is installed.
    """
    for path in SOUNDFONT_PATHS:
        if path.exists():
            return path
    raise ToolMissing("no General MIDI soundfont found (Debian: apt-get install "
                      "fluid-soundfont-gm or timgm6mb-soundfont)")


NoteTuple = tuple[int, float, float, int]
"""A note as (MIDI pitch, start in seconds, end in seconds, velocity)."""


def melody_track(notes: Iterable[NoteTuple]) -> pretty_midi.Instrument:
    """Notes as the piano track named 'melody' (the name every SingSong MIDI file uses).

    Parameters
    ----------
    notes : iterable of (int, float, float, int)
        (MIDI note number, start in s, end in s, velocity 0..127) per note.

    Returns
    -------
    track : pretty_midi.Instrument
        Program PIANO (0).
    """
    track = pretty_midi.Instrument(program=PIANO, name=MELODY_TRACK)
    track.notes = [pretty_midi.Note(velocity=v, pitch=p, start=a, end=b)
                   for p, a, b, v in notes]
    return track


def one_track_midi(notes: Iterable[NoteTuple], tempo_bpm: float) -> pretty_midi.PrettyMIDI:
    """A MIDI file holding only the 'melody' track: the notes a voice was put on, or the
    notes heard in a hummed clip.

    Parameters
    ----------
    notes : iterable of (int, float, float, int)
        (MIDI note number, start in s, end in s, velocity 0..127) per note.
    tempo_bpm : float > 0
        The file's tempo (quarter notes per minute); note times stay in s.

    Returns
    -------
    midi : pretty_midi.PrettyMIDI
    """
    midi = pretty_midi.PrettyMIDI(initial_tempo=tempo_bpm)
    midi.instruments.append(melody_track(notes))
    return midi


def chord_and_bass(melody: Melody) -> list[pretty_midi.Instrument]:
    """A simple accompaniment: sustained close-voiced triads and a root bass on beats 1 and 3.

    Parameters
    ----------
    melody : Melody
        Its chord spans (s) are voiced from CHORD_LOW (MIDI 52) up, the bass from BASS_LOW
        (MIDI 36) up, a note every half bar.

    Returns
    -------
    tracks : list of pretty_midi.Instrument
        The electric piano "chords" (velocity 58) and the fingered "bass" (velocity 76).
    """
    chords = pretty_midi.Instrument(program=ELECTRIC_PIANO, name="chords")
    bass = pretty_midi.Instrument(program=FINGERED_BASS, name="bass")
    half_bar_s = melody.step_s * 8
    for span in melody.chords:
        for pitch in _voicing(span.root, span.quality):
            chords.notes.append(pretty_midi.Note(velocity=58, pitch=pitch, start=span.start_s,
                                                 end=span.end_s))
        root = _bass_pitch(span.root)
        start = span.start_s
        while start < span.end_s - 1e-6:
            end = min(start + half_bar_s, span.end_s)
            bass.notes.append(pretty_midi.Note(velocity=76, pitch=root, start=start,
                                               end=end - 0.02))
            start = end
    return [chords, bass]


def _voicing(root: int, quality: str) -> list[int]:
    """A close triad from CHORD_LOW up, lowest note first."""
    return sorted(CHORD_LOW + (pc - CHORD_LOW) % 12 for pc in chord_pitch_classes(root, quality))


def _bass_pitch(root: int) -> int:
    return BASS_LOW + (root - BASS_LOW) % 12


def melody_midi(melody: Melody, accompaniment: bool = True) -> pretty_midi.PrettyMIDI:
    """A melody as MIDI: its 'melody' track, and chords and bass under it.

    Parameters
    ----------
    melody : Melody
        Notes and chords in s, MIDI note numbers.
    accompaniment : bool
        Whether to add chord_and_bass's tracks.

    Returns
    -------
    midi : pretty_midi.PrettyMIDI
        At the melody's tempo (BPM).
    """
    midi = pretty_midi.PrettyMIDI(initial_tempo=melody.tempo_bpm)
    midi.instruments.append(
        melody_track((n.pitch, n.start_s, n.end_s, n.velocity) for n in melody.notes))
    if accompaniment:
        midi.instruments.extend(chord_and_bass(melody))
    return midi


def midi_bytes(midi: pretty_midi.PrettyMIDI) -> bytes:
    """A MIDI file's bytes (Standard MIDI File, as pretty_midi writes it)."""
    buffer = io.BytesIO()
    midi.write(buffer)
    return buffer.getvalue()


class _Synth:
    """FluidSynth with a General MIDI soundfont (148 MB).

    Each render gets a fresh synthesiser, so nothing of one song (a reverb tail, a modulation
    phase) reaches the next and the same MIDI always gives the same samples. Its samples are
    loaded only for the instruments a render selects (FluidSynth's dynamic sample loading,
    from the page cache): a band needs a few, and the whole soundfont held in memory made
    a worker 120 MB larger, for no faster a render.
    """

    def __init__(self, soundfont: Path, sample_rate: int) -> None:
        self.soundfont, self.sample_rate = soundfont, sample_rate

    def _new_synth(self, chorus: bool = True) -> tuple[Any, int]:
        import fluidsynth

        synth = fluidsynth.Synth(gain=0.5, samplerate=float(self.sample_rate),
                                 **{"synth.dynamic-sample-loading": 1,
                                    "synth.chorus.active": int(chorus)})
        soundfont_id = synth.sfload(str(self.soundfont))
        if soundfont_id < 0:
            raise ToolMissing(f"FluidSynth could not load the soundfont {self.soundfont}")
        return synth, soundfont_id

    def render(self, midi: pretty_midi.PrettyMIDI, tail_s: float, chorus: bool = True
               ) -> np.ndarray:
        synth, soundfont_id = self._new_synth(chorus)
        try:
            return self._play(synth, soundfont_id, midi, tail_s)
        finally:
            synth.delete()

    def _play(self, synth: Any, soundfont_id: int, midi: pretty_midi.PrettyMIDI,
              tail_s: float) -> np.ndarray:
        events: list[tuple[int, int, int, int, int]] = []  # frame, on?, channel, key, velocity
        melodic = (c for c in range(16) if c != DRUM_CHANNEL)
        for instrument in midi.instruments:
            channel = DRUM_CHANNEL if instrument.is_drum else next(melodic, None)
            if channel is None:
                raise ValueError("more than 15 melodic tracks")
            bank = 128 if instrument.is_drum else 0
            synth.program_select(channel, soundfont_id, bank, instrument.program)
            for note in instrument.notes:
                events.append((self._frame(note.start), 1, channel, note.pitch, note.velocity))
                events.append((self._frame(note.end), 0, channel, note.pitch, 0))
        events.sort()  # at one instant, note-offs (0) come before note-ons (1)
        total = self._frame(midi.get_end_time() + tail_s)
        out = np.zeros((2, max(total, 0)), np.float32)  # left and right
        cursor = 0
        for frame, on, channel, key, velocity in events:
            if frame > cursor:
                _write_float(synth, out, cursor, min(frame, total))
                cursor = frame
            if on:
                synth.noteon(channel, key, velocity)
            else:
                synth.noteoff(channel, key)
        if total > cursor:
            _write_float(synth, out, cursor, total)
        mono: np.ndarray = out[0] + out[1]  # their mean, as out.mean(axis=0) gives it, 8x faster
        mono *= np.float32(0.5)
        return mono

    def _frame(self, seconds: float) -> int:
        return round(seconds * self.sample_rate)


def _write_float(synth: Any, out: np.ndarray, start: int, stop: int) -> None:
    """Render frames start..stop into out[0] (left) and out[1] (right) as floats.

    FluidSynth's 16-bit output (pyfluidsynth's get_samples) is dithered from a table it
    fills with the C library's rand() once per process: any library that seeds rand()
    (pedalboard's does) makes the band differ from one process to the next. Floats have no
    dither, and no rounding to 16 bits before the mix.
    """
    if stop <= start:
        return
    left, right = out[0, start:stop], out[1, start:stop]
    _float_writer()(synth.synth, stop - start, left.ctypes.data, 0, 1, right.ctypes.data, 0, 1)


@cache
def _float_writer() -> Any:
    """libfluidsynth's fluid_synth_write_float, its argument types set once per process."""
    import fluidsynth

    write = fluidsynth._fl.fluid_synth_write_float
    write.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p, ctypes.c_int,
                      ctypes.c_int, ctypes.c_void_p, ctypes.c_int, ctypes.c_int]
    write.restype = ctypes.c_int
    return write


@cache
def _synth(sample_rate: int) -> _Synth:
    return _Synth(find_soundfont(), sample_rate)


def render(midi: pretty_midi.PrettyMIDI, sample_rate: int = SAMPLE_RATE,
           tail_s: float = 1.0, chorus: bool = True) -> np.ndarray:
    """Render MIDI through FluidSynth with a General MIDI soundfont.

    Each render gets a fresh synthesiser, so the same MIDI always gives the same samples.

    Parameters
    ----------
    midi : pretty_midi.PrettyMIDI
        At most 15 melodic tracks (channel 10 is the drums').
    sample_rate : int > 0
        Output rate (Hz); SAMPLE_RATE (32 kHz) by default.
    tail_s : float >= 0
        Seconds of release kept after the last note ends (s).
    chorus : bool
        Whether FluidSynth's chorus effect runs. It costs about a tenth of a render even when
        no instrument sends anything to it; off, such MIDI renders to the same samples.

    Returns
    -------
    samples : np.ndarray [shape=(round((end + tail_s) * sample_rate),)], float32
        Mono (left and right averaged) of the whole piece, `end` being its end time (s).

    Raises
    ------
    ToolMissing
        When no soundfont is installed or FluidSynth cannot load it.
    ValueError
        For more than 15 melodic tracks.
    """
    samples = _synth(sample_rate).render(midi, tail_s, chorus)
    return fit_length(samples, round((midi.get_end_time() + tail_s) * sample_rate))


# --- The band behind a sung voice -------------------------------------------------------

ENDING_BEATS = 1  # how long the final chord is held before it rings out
LIFT_PROGRAM = 49  # String Ensemble 2: what the chorus adds above the chords
LIFT_HATS = (2, 6, 10, 14)  # open hats on the off-beat 8ths of a lifted bar
LIFT_KICK = 10  # and a push of the kick before beat 4
FILL_STEPS = (12, 13, 14, 15)  # the snare's 16ths on the beat before a lift
RING_OUT_S = 0.6  # what a render keeps of the ring-out after the final chord is let go
KICK, SIDE_STICK, SNARE, CLAP, CLOSED_HAT, OPEN_HAT, CRASH, RIDE = 36, 37, 38, 39, 42, 46, 49, 51


@dataclass(frozen=True)
class Style:
    """How the band plays: instruments (General MIDI programs), the drum pattern on the
    16ths of a bar, how the chords and the bass move, and the swing of the off-beat 8ths."""

    name: str
    chord_program: int
    bass_program: int
    pad_program: int | None
    drums: dict[int, tuple[int, ...]]  # drum note -> steps of the bar it plays on
    chord_steps: tuple[int, ...]  # where the chord is struck (0..15), each held to the next
    arpeggio: bool
    bass_steps: tuple[int, ...]
    swing: float  # how late each off-beat 8th comes, in 16ths (0 = straight)
    velocity: int
    tempo_range_bpm: tuple[int, int]  # where a song in this style is sung
    crash_every_bars: int = 4
    # Whether any of its instruments sends to FluidSynth's chorus effect (in FluidR3_GM);
    # where none does, the band renders without it, to the same samples and cheaper.
    chorus_effect: bool = True


STYLES: dict[str, Style] = {
    "pop": Style(
        name="pop", chord_program=0, bass_program=33, pad_program=None,
        drums={KICK: (0, 6, 8), SNARE: (4, 12), CLOSED_HAT: (0, 2, 4, 6, 8, 10, 12, 14)},
        chord_steps=(0, 4, 8, 12), arpeggio=False, bass_steps=(0, 2, 4, 6, 8, 10, 12, 14),
        swing=0.0, velocity=84, tempo_range_bpm=(86, 100), chorus_effect=False,
    ),
    "lofi": Style(
        name="lofi", chord_program=4, bass_program=32, pad_program=None,
        drums={KICK: (0, 7, 10), SIDE_STICK: (4, 12), CLOSED_HAT: (0, 2, 4, 6, 8, 10, 12, 14)},
        chord_steps=(0, 10), arpeggio=False, bass_steps=(0, 7, 10), swing=0.6, velocity=68,
        tempo_range_bpm=(76, 88), crash_every_bars=0,
    ),
    "ballad": Style(
        name="ballad", chord_program=0, bass_program=32, pad_program=48,
        drums={KICK: (0, 8), SIDE_STICK: (4, 12), RIDE: (0, 4, 8, 12)},
        chord_steps=(0, 2, 4, 6, 8, 10, 12, 14), arpeggio=True, bass_steps=(0, 8),
        swing=0.0, velocity=64, tempo_range_bpm=(72, 84), crash_every_bars=8,
        chorus_effect=False,
    ),
    "robot": Style(
        name="robot", chord_program=81, bass_program=38, pad_program=89,
        drums={KICK: (0, 4, 8, 12), CLAP: (4, 12), CLOSED_HAT: (2, 6, 10, 14)},
        chord_steps=(2, 6, 10, 14), arpeggio=False, bass_steps=(0, 2, 4, 6, 8, 10, 12, 14),
        swing=0.0, velocity=80, tempo_range_bpm=(92, 104),
    ),
}
DEFAULT_STYLE = "pop"


def style_named(name: str) -> Style:
    """The band style of a name, ignoring case and surrounding spaces.

    Parameters
    ----------
    name : str
        One of STYLES ("pop", "lofi", "ballad", "robot").

    Returns
    -------
    style : Style

    Raises
    ------
    InvalidRequest
        For an unknown name.
    """
    try:
        return STYLES[name.strip().lower()]
    except KeyError:
        raise InvalidRequest(f"unknown style {name!r}: choose one of "
                             f"{', '.join(STYLES)}") from None


def backing_midi(melody: Melody, style: Style, intro_bars: int = 1,
                 lift_bars: frozenset[int] = frozenset()) -> pretty_midi.PrettyMIDI:
    """Chords, bass and drums for a melody, with `intro_bars` of band before it starts and
    an ending: the tonic chord struck once on the downbeat after the last bar, with a crash,
    left to ring for ENDING_BEATS.

    The harmony is the chord sequence the melody model wrote with the melody (a half bar
    without a chord holds the last one); the intro plays the first chord. Off-beat 8ths come
    `style.swing` 16ths late.

    Parameters
    ----------
    melody : Melody
        The song's melody (times in s from its first bar), in 4/4.
    style : Style
        How the band plays.
    intro_bars : int >= 0
        Bars of band before the melody starts; its chords are played this many bars later.
    lift_bars : frozenset of int
        Bars of the melody (0 = its first) where the band lifts, as it does in a chorus: fuller
        drums, a crash where the lift begins, a snare fill into it, and strings an octave above
        the chords. Bars outside the melody are ignored.

    Returns
    -------
    midi : pretty_midi.PrettyMIDI
        At the melody's tempo (BPM): chords, bass, drums, then the lift's strings and the pad
        where there are any.
    """
    step_s = melody.step_s
    bar_s = 16 * step_s
    intro_s = intro_bars * bar_s
    n_bars = melody.n_bars + intro_bars
    chords_at = _chord_per_half_bar(melody, intro_bars)
    midi = pretty_midi.PrettyMIDI(initial_tempo=melody.tempo_bpm)
    chords = pretty_midi.Instrument(program=style.chord_program, name="chords")
    bass = pretty_midi.Instrument(program=style.bass_program, name="bass")
    drums = pretty_midi.Instrument(program=0, is_drum=True, name="drums")

    def at(bar: int, step: float) -> float:
        swung = step + (style.swing if int(step) % 4 == 2 else 0.0)
        return (bar * 16 + swung) * step_s

    for bar in range(n_bars):
        for half in range(2):
            root, quality = chords_at[2 * bar + half]
            voicing = _voicing(root, quality)
            steps = [s for s in style.chord_steps if s // 8 == half]
            for index, step in enumerate(steps):
                end_step = next((s for s in style.chord_steps if s > step), 16)
                start, end = at(bar, step), at(bar, end_step) - 0.01
                pitches = [voicing[index % 3]] if style.arpeggio else voicing
                for pitch in pitches:
                    chords.notes.append(pretty_midi.Note(style.velocity - 14, pitch, start, end))
            for step in (s for s in style.bass_steps if s // 8 == half):
                end_step = next((s for s in style.bass_steps if s > step), 16)
                bass.notes.append(pretty_midi.Note(style.velocity, _bass_pitch(root), at(bar, step),
                                                   at(bar, end_step) - 0.02))
        for drum, drum_steps in style.drums.items():
            for step in drum_steps:
                accent = 10 if step % 8 == 0 else 0
                drums.notes.append(pretty_midi.Note(min(127, style.velocity - 6 + accent), drum,
                                                    at(bar, step), at(bar, step) + step_s))
        if style.crash_every_bars and bar % style.crash_every_bars == 0 and bar >= intro_bars:
            drums.notes.append(pretty_midi.Note(style.velocity, CRASH, at(bar, 0),
                                                at(bar, 0) + 4 * step_s))
    lifted = sorted(bar + intro_bars for bar in lift_bars if 0 <= bar < melody.n_bars)
    lift = pretty_midi.Instrument(program=LIFT_PROGRAM, name="lift")
    for bar in lifted:
        _lift_bar(bar, bar - 1 not in lifted, chords_at[2 * bar: 2 * bar + 2], style, at,
                  step_s, drums, lift)
        if bar - 1 not in lifted and bar - 1 >= 0:
            _fill(bar - 1, style, at, step_s, drums)
    _final_hit(melody, style, n_bars * bar_s, chords, bass, drums)
    midi.instruments += [chords, bass, drums]
    if lift.notes:
        midi.instruments.append(lift)
    if style.pad_program is not None:
        pad = pretty_midi.Instrument(program=style.pad_program, name="pad")
        for span in melody.chords:
            for pc in chord_pitch_classes(span.root, span.quality):
                pad.notes.append(pretty_midi.Note(style.velocity - 24, 60 + pc,
                                                  intro_s + span.start_s, intro_s + span.end_s))
        midi.instruments.append(pad)
    return midi


def _lift_bar(bar: int, first: bool, halves: list[tuple[int, str]], style: Style,
              at: Callable[[int, float], float], step_s: float, drums: pretty_midi.Instrument,
              lift: pretty_midi.Instrument) -> None:
    """A lifted bar: open hats on the off-beats, a push of the kick, a crash where the lift
    begins, and the chords held an octave up by strings."""
    for step in LIFT_HATS:
        drums.notes.append(pretty_midi.Note(style.velocity - 16, OPEN_HAT, at(bar, step),
                                            at(bar, step) + step_s))
    drums.notes.append(pretty_midi.Note(style.velocity - 6, KICK, at(bar, LIFT_KICK),
                                        at(bar, LIFT_KICK) + step_s))
    if first:
        drums.notes.append(pretty_midi.Note(style.velocity + 6, CRASH, at(bar, 0),
                                            at(bar, 0) + 4 * step_s))
    for half, (root, quality) in enumerate(halves):
        for pitch in _voicing(root, quality):
            lift.notes.append(pretty_midi.Note(style.velocity - 26, pitch + 12,
                                               at(bar, 8 * half), at(bar, 8 * half + 8) - 0.02))


def _fill(bar: int, style: Style, at: Callable[[int, float], float], step_s: float,
          drums: pretty_midi.Instrument) -> None:
    """A snare fill on the last beat of `bar`, getting louder into the next."""
    for index, step in enumerate(FILL_STEPS):
        drums.notes.append(pretty_midi.Note(min(127, style.velocity - 20 + 8 * index), SNARE,
                                            at(bar, step), at(bar, step) + step_s))


def _final_hit(melody: Melody, style: Style, at_s: float, chords: pretty_midi.Instrument,
               bass: pretty_midi.Instrument, drums: pretty_midi.Instrument) -> None:
    """The last chord (the tonic: the melody ends there) once more, on the downbeat after
    the song, held for ENDING_BEATS, over its bass, a kick and a crash."""
    root, quality = melody.key.tonic_chord
    end_s = at_s + ENDING_BEATS * 4 * melody.step_s
    for pitch in _voicing(root, quality):
        chords.notes.append(pretty_midi.Note(style.velocity - 10, pitch, at_s, end_s))
    bass.notes.append(pretty_midi.Note(style.velocity, _bass_pitch(root), at_s, end_s))
    for drum in (KICK, CRASH):
        drums.notes.append(pretty_midi.Note(style.velocity, drum, at_s, at_s + 4 * melody.step_s))


def _chord_per_half_bar(melody: Melody, intro_bars: int) -> list[tuple[int, str]]:
    """(root, quality) for every half bar of intro and melody; gaps hold the last chord."""
    half_s = 8 * melody.step_s
    halves = 2 * (melody.n_bars + intro_bars)
    first = ((melody.chords[0].root, melody.chords[0].quality) if melody.chords
             else melody.key.tonic_chord)
    out: list[tuple[int, str]] = []
    for half in range(halves):
        t = (half - 2 * intro_bars) * half_s + 1e-6
        playing = [c for c in melody.chords if c.start_s <= t < c.end_s]
        if playing:
            out.append((playing[0].root, playing[0].quality))
        else:
            out.append(out[-1] if out else first)
    return out

