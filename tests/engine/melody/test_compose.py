import pytest

from engine.errors import InvalidRequest
from engine.melody.compose import MAX_REPEATS, compose
from engine.melody.tokens import pitch_run_lengths
from engine.theory import Key, parse_key


def test_same_seed_same_melody_other_seed_other_melody() -> None:
    first = compose(seed=11, key=parse_key("D"), bars=8)
    assert compose(seed=11, key=parse_key("D"), bars=8) == first
    assert compose(seed=12, key=parse_key("D"), bars=8).notes != first.notes


@pytest.mark.parametrize("key_name", ["C", "F#m", "Bb", "Ebm", "A minor"])
def test_key_is_honoured(key_name: str) -> None:
    key = parse_key(key_name)
    melodies = [compose(seed=seed, key=key, bars=8) for seed in range(12)]
    notes = [n for m in melodies for n in m.notes]
    in_key = sum(n.pitch % 12 in key.scale_pitch_classes() for n in notes) / len(notes)
    assert all(m.key == key for m in melodies)
    assert in_key > 0.85
    # Every melody comes home: its last note is the tonic, over the tonic chord.
    assert all(m.notes[-1].pitch % 12 == key.tonic for m in melodies)
    tonic_chord = (key.tonic, "maj" if key.mode == "major" else "min")
    assert all((m.chords[-1].root, m.chords[-1].quality) == tonic_chord for m in melodies)
    assert all(m.chords[-1].end_s == pytest.approx(m.duration_s) for m in melodies)


@pytest.mark.parametrize(("low", "high"), [(48, 60), (60, 72), (55, 84), (40, 52)])
def test_range_is_honoured(low: int, high: int) -> None:
    for seed in range(6):
        melody = compose(seed=seed, bars=8, pitch_range=(low, high))
        assert all(low <= n.pitch <= high for n in melody.notes)


@pytest.mark.parametrize("count", [1, 5, 17, 40])
def test_exact_note_count(count: int) -> None:
    for seed in range(3):
        melody = compose(seed=seed, n_notes=count, key=Key(7, "major"))
        assert len(melody.notes) == count
        assert melody.notes[-1].pitch % 12 == 7
        assert melody.n_bars == melody.notes[-1].start_step // 16 + 1


@pytest.mark.parametrize("bars", [1, 4, 8, 16])
def test_bars_and_grid(bars: int) -> None:
    melody = compose(seed=3, bars=bars, tempo_bpm=120.0)
    assert melody.n_bars == bars
    assert melody.duration_s == pytest.approx(bars * 2.0)
    starts = [n.start_step for n in melody.notes]
    assert starts == sorted(set(starts))  # monophonic, in order
    for note, after in zip(melody.notes, melody.notes[1:], strict=False):
        assert note.end_s <= after.start_s + 1e-9  # no overlaps
    assert melody.notes[-1].end_s <= melody.duration_s + 1e-9
    assert {n.start_step // 16 for n in melody.notes} == set(range(bars))  # no empty bar


def test_no_long_runs_of_one_pitch() -> None:
    longest = max(
        max(pitch_run_lengths([n.pitch for n in compose(seed=s, bars=16).notes]))
        for s in range(40)
    )
    assert longest <= MAX_REPEATS


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"bars": 0}, "bars must be between"),
        ({"bars": 65}, "bars must be between"),
        ({"tempo_bpm": 1000.0}, "tempo must be between"),
        ({"bars": None, "n_notes": 0}, "number of notes"),
        ({"pitch_range": (60, 62)}, "pitch range"),
        ({"temperature": 0.0}, "temperature"),
        ({"top_p": 1.5}, "top_p"),
    ],
)
def test_bad_options_are_refused(options: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidRequest, match=message):
        compose(seed=0, **options)  # type: ignore[arg-type]
