"""The song form: the hook, the chorus's open and closed halves, the second voice, the
layout of the parts."""

import numpy as np
import pytest

from engine.errors import InvalidRequest
from engine.form import (
    MAX_SONG_S,
    Hook,
    answer_phrase,
    check_form,
    choose_hook,
    harmony_pitch,
    hook_from_lines,
    lay_out,
    split_verses,
)
from engine.melody.compose import compose_phrases
from engine.notes import Syllable
from engine.theory import Key

RATE = 22050


def _spoken(onsets_s: list[float]) -> list[Syllable]:
    return [Syllable(t - 0.04, t, t + 0.14, t + 0.16) for t in onsets_s]


def _voice(found: list[Syllable], loud: set[int]) -> np.ndarray:
    """A tone under each syllable's vowel; the `loud` ones 12 dB louder."""
    samples = np.zeros(int((found[-1].end_s + 0.5) * RATE), np.float32)
    for index, syllable in enumerate(found):
        a, b = int(syllable.onset_s * RATE), int(syllable.voiced_end_s * RATE)
        level = 0.4 if index in loud else 0.1
        samples[a:b] = level * np.sin(2 * np.pi * 150 * np.arange(b - a) / RATE)
    return samples


def test_the_hook_is_a_phrase_that_sings_well() -> None:
    # Phrases of 2, 5 and 12 syllables; the 5-syllable phrase holds the strongest stress
    # and ends at a pause.
    onsets = [0.0, 0.2, 1.0, 1.2, 1.4, 1.6, 1.8] + [2.8 + 0.2 * i for i in range(12)]
    found = _spoken(onsets)
    hook = choose_hook(found, [2, 5, 12], _voice(found, loud={4}), RATE)
    assert hook == Hook(2, 5)


def test_a_long_phrase_gives_its_end_or_its_start() -> None:
    found = _spoken([0.2 * i for i in range(14)])
    hook = choose_hook(found, [14], _voice(found, loud=set()), RATE)
    assert 3 <= hook.count <= 8 and hook.first in (0, 14 - hook.count)


def test_lyrics_give_their_repeated_line_or_their_last() -> None:
    found = _spoken([0.2 * i for i in range(4)] + [1.5 + 0.2 * i for i in range(5)] +
                    [3.0 + 0.2 * i for i in range(4)])
    spans = ((0.0, 0.9), (1.4, 2.5), (2.9, 3.9))
    assert hook_from_lines(found, ("la la", "oh my love", "la la"), spans) == Hook(0, 4)
    assert hook_from_lines(found, ("one", "two", "three"), spans) == Hook(9, 4)
    assert hook_from_lines(found[:2], ("one",), ((0.0, 0.5),)) is None


@pytest.mark.parametrize("key", [Key(0, "major"), Key(9, "minor"), Key(6, "major")])
def test_the_second_voice_is_a_third_above_in_key(key: Key) -> None:
    scale = key.scale_pitch_classes()
    for pitch in range(48, 84):
        above = harmony_pitch(pitch, key)
        assert above % 12 in scale
        if pitch % 12 in scale:
            assert above - pitch in (3, 4)


def test_the_motif_is_answered_on_the_tonic() -> None:
    key = Key(2, "major")
    motif = compose_phrases(seed=5, phrase_lengths=[5], pitch_range=(55, 70), tempo_bpm=92,
                            key=key)
    opened, closed = answer_phrase(motif, (55, 70))
    assert [n.start_s for n in opened.notes] == [n.start_s for n in closed.notes]
    assert opened.notes[-1].pitch % 12 == (key.tonic + 7) % 12
    assert closed.notes[-1].pitch % 12 == key.tonic
    assert (closed.chords[-1].root, closed.chords[-1].quality) == key.tonic_chord
    assert closed.chords[-2].root == (key.tonic + 7) % 12  # the dominant leads home


def _song(phrases: list[int], seconds: float, form: str = "full"):
    key = Key(0, "major")
    whole = compose_phrases(seed=1, phrase_lengths=phrases, pitch_range=(55, 70),
                            tempo_bpm=92, key=key)
    motif = compose_phrases(seed=2, phrase_lengths=[5], pitch_range=(55, 70), tempo_bpm=92,
                            key=key)
    chorus = answer_phrase(motif, (55, 70))
    groups = split_verses(whole, phrases, form, budget_s=70.0)
    verses = [compose_phrases(seed=1, phrase_lengths=g, pitch_range=(55, 70), tempo_bpm=92,
                              key=key) for g in groups]
    return groups, lay_out(verses, chorus, form, seconds, intro_bars=1)


def test_a_short_note_comes_back_between_two_choruses() -> None:
    groups, layout = _song([5, 6], seconds=4.0)
    assert len(groups) == 1
    assert [s.name for s in layout.sections] == ["intro", "verse", "chorus", "verse",
                                                   "chorus", "ending"]
    assert 25.0 <= layout.sections[-1].start_s <= 60.0


def test_a_long_verse_is_split_with_the_chorus_early() -> None:
    groups, layout = _song([8, 9, 7, 10, 6, 8, 9, 7], seconds=17.0)
    assert len(groups) >= 2 and sum(map(sum, groups)) == 64
    names = [s.name for s in layout.sections]
    assert names.count("chorus") >= 2 and names[-2] == "chorus"
    first_chorus = next(s.start_s for s in layout.sections if s.name == "chorus")
    assert first_chorus <= 20.0
    assert layout.sections[-1].start_s <= MAX_SONG_S
    # Verses back to back are heard as one.
    assert all(a.name != b.name or a.name != "verse"
               for a, b in zip(layout.sections, layout.sections[1:], strict=False))
    assert len(layout.melody.notes) == 64 + 10 * names.count("chorus")


def test_too_long_a_note_keeps_what_fits() -> None:
    groups, layout = _song([10] * 30, seconds=60.0)
    assert sum(map(sum, groups)) < 300
    assert layout.sections[-1].start_s <= MAX_SONG_S


def test_the_short_form_is_the_verse_alone() -> None:
    groups, layout = _song([5, 6, 7], seconds=5.0, form="short")
    assert groups == [[5, 6, 7]]
    assert [s.name for s in layout.sections] == ["intro", "verse", "ending"]
    assert not layout.chorus_bars


def test_forms_are_checked() -> None:
    assert check_form("short") == "short"
    with pytest.raises(InvalidRequest, match="unknown form 'opera': choose full or short"):
        check_form("opera")
