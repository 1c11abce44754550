"""Backing parts from a melody and rendering MIDI to audio through FluidSynth."""

from __future__ import annotations

import io
import shutil
import subprocess
import tempfile
from functools import cache
from pathlib import Path

import numpy as np
import pretty_midi
import soundfile as sf

from engine.errors import ToolMissing
from engine.melody.compose import Melody
from engine.theory import chord_pitch_classes

SAMPLE_RATE = 44100
RENDER_TIMEOUT_S = 120.0
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
    """The General MIDI soundfont FluidSynth renders with (the best one installed)."""
    for path in SOUNDFONT_PATHS:
        if path.exists():
            return path
    raise ToolMissing("no General MIDI soundfont found (Debian: apt-get install "
                      "fluid-soundfont-gm or timgm6mb-soundfont)")


def melody_instrument(melody: Melody, program: int = PIANO) -> pretty_midi.Instrument:
    """The melody as the MIDI track named 'melody'."""
    track = pretty_midi.Instrument(program=program, name=MELODY_TRACK)
    for note in melody.notes:
        track.notes.append(pretty_midi.Note(velocity=note.velocity, pitch=note.pitch,
                                            start=note.start_s, end=note.end_s))
    return track


def chord_and_bass(melody: Melody) -> list[pretty_midi.Instrument]:
    """A simple accompaniment: sustained close-voiced triads and a root bass on beats 1 and 3."""
    chords = pretty_midi.Instrument(program=ELECTRIC_PIANO, name="chords")
    bass = pretty_midi.Instrument(program=FINGERED_BASS, name="bass")
    half_bar_s = melody.step_s * 8
    for span in melody.chords:
        for pc in chord_pitch_classes(span.root, span.quality):
            pitch = CHORD_LOW + (pc - CHORD_LOW) % 12
            chords.notes.append(pretty_midi.Note(velocity=58, pitch=pitch, start=span.start_s,
                                                 end=span.end_s))
        root = BASS_LOW + (span.root - BASS_LOW) % 12
        start = span.start_s
        while start < span.end_s - 1e-6:
            end = min(start + half_bar_s, span.end_s)
            bass.notes.append(pretty_midi.Note(velocity=76, pitch=root, start=start,
                                               end=end - 0.02))
            start = end
    return [chords, bass]


def melody_midi(melody: Melody, accompaniment: bool = True) -> pretty_midi.PrettyMIDI:
    midi = pretty_midi.PrettyMIDI(initial_tempo=melody.tempo_bpm)
    midi.instruments.append(melody_instrument(melody))
    if accompaniment:
        midi.instruments.extend(chord_and_bass(melody))
    return midi


def midi_bytes(midi: pretty_midi.PrettyMIDI) -> bytes:
    buffer = io.BytesIO()
    midi.write(buffer)
    return buffer.getvalue()


def render(midi: pretty_midi.PrettyMIDI, sample_rate: int = SAMPLE_RATE,
           tail_s: float = 1.0) -> np.ndarray:
    """Render MIDI through the FluidSynth program; mono float samples, `tail_s` of release."""
    fluidsynth = shutil.which("fluidsynth")
    if fluidsynth is None:
        raise ToolMissing("fluidsynth is not installed (Debian: apt-get install fluidsynth)")
    with tempfile.TemporaryDirectory(prefix="singsong-render-") as folder:
        mid_path, wav_path = Path(folder, "in.mid"), Path(folder, "out.wav")
        midi.write(str(mid_path))
        command = [fluidsynth, "-ni", "-q", "-g", "0.5", "-r", str(sample_rate), "-O", "float",
                   "-F", str(wav_path), str(find_soundfont()), str(mid_path)]
        result = subprocess.run(command, capture_output=True, timeout=RENDER_TIMEOUT_S,
                                check=False)
        if result.returncode != 0 or not wav_path.exists():
            raise RuntimeError(f"fluidsynth failed: {result.stderr.decode()[-500:]}")
        audio, _ = sf.read(str(wav_path), dtype="float32", always_2d=True)
    mono = audio.mean(axis=1)
    wanted = int((midi.get_end_time() + tail_s) * sample_rate)
    return _fit_length(mono, wanted)


def _fit_length(samples: np.ndarray, length: int) -> np.ndarray:
    if len(samples) >= length:
        return samples[:length]
    return np.concatenate([samples, np.zeros(length - len(samples), samples.dtype)])

