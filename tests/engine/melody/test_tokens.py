import io
from pathlib import Path

import numpy as np
import pretty_midi
import pytest

from engine.arrange import MELODY_TRACK, melody_midi, midi_bytes
from engine.melody.compose import realise
from engine.melody.pop909 import read_song
from engine.melody.tokens import (
    BAR,
    BOS_MAJOR,
    STEPS_PER_BEAT,
    GridNote,
    Score,
    decode,
    encode,
    pitch_run_lengths,
    quantize_notes,
)
from engine.theory import Key


def test_encode_decode_round_trip() -> None:
    score = Score(
        mode="minor",
        n_bars=3,
        notes=[GridNote(0, 0, 69, 4), GridNote(0, 6, 72, 2), GridNote(2, 15, 64, 32)],
        chords=[(9, "min"), (9, "min"), None, (7, "maj"), (5, "maj"), (4, "aug")],
    )
    tokens = encode(score)
    assert decode(tokens) == score
    assert tokens.count(BAR) == 3


def test_decode_drops_an_unfinished_note() -> None:
    tokens = encode(Score("major", 1, [GridNote(0, 0, 60, 4), GridNote(0, 4, 62, 4)]))
    assert decode(tokens[:-1]).notes == [GridNote(0, 0, 60, 4)]
    assert decode([BOS_MAJOR]).n_bars == 0


def test_quantize_cleans_overlaps_and_doubles() -> None:
    notes = quantize_notes(
        onsets=np.array([0.1, 3.9, 3.95, 8.0]),
        offsets=np.array([6.0, 6.0, 5.0, 8.2]),
        pitches=np.array([60, 62, 67, 64]),
        bar_starts=np.array([0.0, 16.0]),
    )
    # 62 and 67 start together: the higher is the melody; the first note is cut at 4.
    assert notes == [GridNote(0, 0, 60, 4), GridNote(0, 4, 67, 1), GridNote(0, 8, 64, 1)]


def test_runs() -> None:
    assert pitch_run_lengths([60, 60, 62, 62, 62, 60]) == [2, 3, 1]


@pytest.mark.parametrize("song_number", [1, 850])
def test_tokens_round_trip_through_midi(pop909_root: Path, song_number: int) -> None:
    """POP909 MIDI -> tokens -> our MIDI file -> tokens gives the same tokens."""
    song = read_song(pop909_root, song_number)
    assert song is not None
    tokens = encode(song.score)
    score = decode(tokens)
    tempo = 96.0
    melody = realise(score.notes, score.chords, score.n_bars, Key(0, score.mode), 0, tempo, 0)
    data = midi_bytes(melody_midi(melody))

    midi = pretty_midi.PrettyMIDI(io.BytesIO(data))
    track = next(i for i in midi.instruments if i.name == MELODY_TRACK)
    step_s = 60.0 / tempo / STEPS_PER_BEAT
    notes = sorted(track.notes, key=lambda n: n.start)
    back = quantize_notes(
        onsets=np.array([n.start / step_s for n in notes]),
        offsets=np.array([n.end / step_s for n in notes]),
        pitches=np.array([n.pitch for n in notes]),
        bar_starts=np.arange(score.n_bars) * 16.0,
    )
    assert encode(Score(score.mode, score.n_bars, back, score.chords)) == tokens
