import pytest

from engine.errors import InvalidRequest
from engine.theory import Key, chord_name, chord_pitch_classes, parse_key


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("C", Key(0, "major")),
        ("c", Key(0, "major")),
        ("F#m", Key(6, "minor")),
        ("Bb", Key(10, "major")),
        ("bb minor", Key(10, "minor")),
        ("Eb:min", Key(3, "minor")),
        ("A minor", Key(9, "minor")),
        ("Gb:maj", Key(6, "major")),
        ("Cb", Key(11, "major")),
        ("E#m", Key(5, "minor")),
        ("D♭", Key(1, "major")),
    ],
)
def test_parse_key_reads_common_spellings(text: str, key: Key) -> None:
    assert parse_key(text) == key


@pytest.mark.parametrize("text", ["H", "", "C major minor", "X#", "12", "Cmm"])
def test_parse_key_refuses_nonsense_with_an_example(text: str) -> None:
    with pytest.raises(InvalidRequest, match="for example"):
        parse_key(text)


def test_key_degrees() -> None:
    a_minor = Key(9, "minor")
    assert a_minor.relative_major_tonic == 0
    assert a_minor.scale_pitch_classes() == Key(0, "major").scale_pitch_classes()
    assert a_minor.stable_pitch_classes() == {9, 0, 4}
    assert a_minor.name == "A minor"


def test_chords() -> None:
    assert chord_pitch_classes(7, "maj") == (7, 11, 2)
    assert chord_pitch_classes(9, "min") == (9, 0, 4)
    assert chord_name(10, "min") == "Bbm"
