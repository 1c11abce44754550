import numpy as np
import pretty_midi
import pytest

from engine.arrange import (
    BASS_LOW,
    CHORD_LOW,
    CRASH,
    KICK,
    LIFT_PROGRAM,
    OPEN_HAT,
    SNARE,
    STYLES,
    Style,
    render,
)


def _every_note_the_band_plays(style: Style) -> pretty_midi.PrettyMIDI:
    """Each instrument of a style on every key and velocity backing_midi gives it, one note
    after another."""
    v = style.velocity
    parts = [  # program, drums?, keys, velocities
        (style.chord_program, False, range(CHORD_LOW, CHORD_LOW + 24), (v - 14, v - 10)),
        (style.bass_program, False, range(BASS_LOW, BASS_LOW + 12), (v,)),
        (LIFT_PROGRAM, False, range(CHORD_LOW + 12, CHORD_LOW + 36), (v - 26,)),
        (0, True, sorted({*style.drums, KICK, SNARE, OPEN_HAT, CRASH}),
         sorted({min(127, v - 6 + accent) for accent in (0, 10)} | {v - 16, v + 6, v}
                | {min(127, v - 20 + 8 * i) for i in range(4)})),
    ]
    if style.pad_program is not None:
        parts.append((style.pad_program, False, range(60, 72), (v - 24,)))
    midi = pretty_midi.PrettyMIDI(initial_tempo=90)
    start = 0.0
    for program, is_drum, keys, velocities in parts:
        track = pretty_midi.Instrument(program=program, is_drum=is_drum)
        for key in keys:
            for velocity in velocities:
                track.notes.append(pretty_midi.Note(velocity, key, start, start + 0.08))
                start += 0.05
        midi.instruments.append(track)
    return midi


@pytest.mark.parametrize("name", STYLES)
def test_the_chorus_effect_is_off_only_where_nothing_sends_to_it(name) -> None:
    """A style renders without FluidSynth's chorus only where that gives the same samples."""
    style = STYLES[name]
    midi = _every_note_the_band_plays(style)
    with_chorus = render(midi, tail_s=0.5)
    without = render(midi, tail_s=0.5, chorus=False)
    assert np.abs(with_chorus).max() > 0.01
    assert np.array_equal(with_chorus, without) == (not style.chorus_effect)
