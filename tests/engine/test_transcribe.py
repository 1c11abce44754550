"""Transcription of sung lines that waver, scoop, drift and re-articulate (synthetic voices:
harmonic tones along a pitch contour, with a loudness envelope)."""

import numpy as np
import pytest

from engine.audio import BadAudio, wav_bytes
from engine.pipeline import piano
from engine.pitch import midi_to_hz, track
from engine.transcribe import HeardNote, transcribe
from tests.engine.test_pitch import harmonic_tone

SR = 22050
PHRASE = [57, 59, 61, 62, 64, 62, 61, 59, 57]


def sing(contour_midi: np.ndarray, loudness_db: np.ndarray | None = None) -> np.ndarray:
    """A voice-like tone along a contour of fractional MIDI pitches (one per sample), its
    level following `loudness_db`, with 0.3 s of silence on either side."""
    voice = harmonic_tone(np.asarray(midi_to_hz(contour_midi)), SR).astype(np.float64)
    if loudness_db is not None:
        voice *= 10 ** (loudness_db / 20)
    silence = np.zeros(int(0.3 * SR))
    return np.concatenate([silence, voice, silence]).astype(np.float32)


def heard(samples: np.ndarray) -> list[HeardNote]:
    return transcribe(samples, SR, track(samples, SR)).notes


def seconds(duration_s: float) -> np.ndarray:
    return np.arange(int(duration_s * SR)) / SR


def test_a_wavering_scooped_note_stays_one_note() -> None:
    """2.5 s on A3: a quick scoop up from 1.2 semitones below (80 ms), a wide vibrato
    (+-60 cents at 5.5 Hz), a slow wander of the centre by 35 cents, loudness swelling by
    6 dB."""
    t = seconds(2.5)
    scoop = -1.2 * np.clip(1 - t / 0.08, 0, 1)
    wander = 0.35 * np.sin(2 * np.pi * 0.4 * t)
    contour = 57 + scoop + 0.6 * np.sin(2 * np.pi * 5.5 * t) + wander
    notes = heard(sing(contour, 3 * np.sin(2 * np.pi * 1.3 * t)))
    assert [n.pitch for n in notes] == [57]
    assert notes[0].start_s == pytest.approx(0.3, abs=0.03)
    assert notes[0].end_s == pytest.approx(2.8, abs=0.03)


def legato(pitches: list[int], note_s: float, tuning: np.ndarray | None = None,
           glide_s: float = 0.05, vibrato: float = 0.35) -> np.ndarray:
    """Notes sung legato: glides of `glide_s` from one to the next, a vibrato of +-`vibrato`
    semitones, and the singer's tuning (semitones, one value per sample) added."""
    steps = np.repeat(np.asarray(pitches, dtype=np.float64), int(note_s * SR))
    glide = int(glide_s * SR)
    contour = np.convolve(np.pad(steps, glide, mode="edge"), np.ones(glide) / glide,
                          mode="same")[glide:-glide]
    t = np.arange(len(contour)) / SR
    contour = contour + vibrato * np.sin(2 * np.pi * 5.5 * t)
    return contour + (tuning if tuning is not None else 0.0)


def test_a_singer_drifting_40_cents_keeps_the_intended_semitones() -> None:
    length = int(0.4 * SR) * len(PHRASE)
    drift = np.linspace(-0.05, -0.45, length)  # from 5 to 45 cents flat
    samples = sing(legato(PHRASE, 0.4, drift))
    transcript = transcribe(samples, SR, track(samples, SR))
    assert [n.pitch for n in transcript.notes] == PHRASE
    assert -45 < transcript.tuning.drift_cents < -20
    assert -35 < transcript.tuning.cents < -15


def test_a_quick_scale_keeps_every_note() -> None:
    """Up and down a scale at five notes a second (30 ms glides, +-25 cent vibrato): a note
    no longer than a vibrato cycle is still a note, at its own onset."""
    scale = [60, 62, 64, 65, 67, 65, 64, 62, 60]
    notes = heard(sing(legato(scale, 0.2, glide_s=0.03, vibrato=0.25)))
    assert [n.pitch for n in notes] == scale
    onsets = 0.3 + 0.2 * np.arange(len(scale))
    assert np.abs(np.array([n.start_s for n in notes]) - onsets).max() < 0.05


def test_repeated_notes_with_a_consonant_between_stay_apart() -> None:
    """"la la la" and "ta ta ta" on one pitch: a voiced consonant (the level dips 15 dB for
    60 ms, the pitch held) and an unvoiced one (60 ms of hiss, no pitch)."""
    held, dip = int(0.4 * SR), int(0.02 * SR)
    vowel, consonant = np.zeros(held), np.concatenate([
        np.linspace(0, -15, dip), np.full(dip, -15.0), np.linspace(-15, 0, dip)])
    la = np.concatenate([vowel, consonant, vowel, consonant, vowel])
    voiced = heard(sing(np.full(len(la), 60.0), la))
    assert [n.pitch for n in voiced] == [60, 60, 60]
    tone = harmonic_tone(np.full(held, float(midi_to_hz(60))), SR)
    hiss = np.random.default_rng(0).normal(0, 0.02, 3 * dip).astype(np.float32)
    ta = np.pad(np.concatenate([tone, hiss, tone, hiss, tone]), int(0.3 * SR))
    assert [n.pitch for n in heard(ta)] == [60, 60, 60]


def test_silence_has_no_notes() -> None:
    silence = np.zeros(2 * SR, np.float32)
    assert heard(silence) == []
    with pytest.raises(BadAudio, match="no notes heard"):
        piano(wav_bytes(silence, SR))


def test_a_held_note_the_tracker_loses_for_50_ms_stays_one_note() -> None:
    """A clatter as loud as the voice masks 50 ms of a held A3: the tracker calls it
    unvoiced, the loudness holds and the pitch on both sides is one note, so it is one note.
    A gap as long between two notes still parts them."""
    held, masked = int(0.6 * SR), int(0.05 * SR)

    def masked_between(first_midi: float, second_midi: float) -> np.ndarray:
        first = harmonic_tone(np.full(held, float(midi_to_hz(first_midi))), SR)
        second = harmonic_tone(np.full(held, float(midi_to_hz(second_midi))), SR)
        rms = float(np.sqrt(np.mean(first.astype(np.float64) ** 2)))
        clatter = np.random.default_rng(1).normal(0, rms, masked).astype(np.float32)
        return np.pad(np.concatenate([first, clatter, second]), int(0.3 * SR))

    samples = masked_between(57, 57)
    midi = track(samples, SR).midi()
    gap = np.isnan(midi[int(0.85 / 0.01):int(0.97 / 0.01)])
    assert gap.sum() * 0.01 > 0.03  # longer than the tracker's usual dropouts
    assert [n.pitch for n in heard(samples)] == [57]
    assert [n.pitch for n in heard(masked_between(57, 60))] == [57, 60]


def steps_sung(pitches: list[int], lengths_s: list[float], glide_s: float = 0.03,
               vibrato: float = 0.25) -> np.ndarray:
    """Notes of the given lengths joined by `glide_s` glides, with a +-`vibrato` semitone
    vibrato at 5.5 Hz: a contour, one fractional MIDI pitch per sample."""
    steps = np.concatenate([np.full(int(s * SR), float(p))
                            for p, s in zip(pitches, lengths_s, strict=True)])
    glide = int(glide_s * SR)
    contour = np.convolve(np.pad(steps, glide, mode="edge"), np.ones(glide) / glide,
                          mode="same")[glide:-glide]
    return contour + vibrato * np.sin(2 * np.pi * 5.5 * np.arange(len(contour)) / SR)


@pytest.mark.parametrize("pitches", [[52, 48, 52], [57, 53, 57]])
def test_a_short_note_between_long_ones_keeps_its_own_pitch(pitches: list[int]) -> None:
    """A 100-ms note between two 300-ms notes four semitones away: its pitch is its own,
    not pulled towards its neighbours by the vibrato average."""
    notes = heard(sing(steps_sung(pitches, [0.3, 0.1, 0.3])))
    assert [n.pitch for n in notes] == pitches


def test_a_held_note_masked_by_a_louder_clatter_stays_one_note() -> None:
    """A clatter 6 dB louder than the voice masks 150 ms of a held A3 (the voice goes on
    under it): the tracker calls it unvoiced, longer than any dropout, but the noise is at
    least as loud as the voice around it, so the note is one note. The same clatter between
    two notes, and a 150-ms breath between two on one pitch, still part them."""
    held, masked = int(0.6 * SR), int(0.15 * SR)

    def tone(midi: float, samples: int) -> np.ndarray:
        return harmonic_tone(np.full(samples, float(midi_to_hz(midi))), SR)

    rms = float(np.sqrt(np.mean(tone(57, held).astype(np.float64) ** 2)))
    clatter = np.random.default_rng(1).normal(0, 2 * rms, masked).astype(np.float32)
    under = np.pad(np.concatenate([tone(57, held), clatter + tone(57, masked), tone(57, held)]),
                   int(0.3 * SR))
    midi = track(under, SR).midi()
    assert np.isnan(midi[int(0.9 / 0.01):int(1.05 / 0.01)]).sum() * 0.01 > 0.1
    assert [n.pitch for n in heard(under)] == [57]
    between = np.pad(np.concatenate([tone(57, held), clatter, tone(60, held)]), int(0.3 * SR))
    assert [n.pitch for n in heard(between)] == [57, 60]
    breath = np.random.default_rng(2).normal(0, 0.01, masked).astype(np.float32)
    apart = np.pad(np.concatenate([tone(57, held), breath, tone(57, held)]), int(0.3 * SR))
    assert [n.pitch for n in heard(apart)] == [57, 57]


def la_la_la(dip_db: float = 15.0) -> np.ndarray:
    """The loudness (dB, one value per sample) of "la la la" on one note: 0.4-s vowels
    parted by a voiced consonant that dips `dip_db` for 60 ms."""
    held, dip = int(0.4 * SR), int(0.02 * SR)
    consonant = np.concatenate([np.linspace(0, -dip_db, dip), np.full(dip, -dip_db),
                                np.linspace(-dip_db, 0, dip)])
    vowel = np.zeros(held)
    return np.concatenate([vowel, consonant, vowel, consonant, vowel])


def test_repeated_notes_under_a_hiss_stay_apart() -> None:
    """"la la la" under steady white noise 6 dB below the voice: the noise fills the
    consonants' dips in the loudness, not in the voice's harmonics."""
    la = la_la_la()
    voice = sing(np.full(len(la), 60.0), la).astype(np.float64)
    rms = float(np.sqrt(np.mean(voice[int(0.3 * SR):int(0.6 * SR)] ** 2)))
    noisy = voice + np.random.default_rng(0).normal(0, rms * 10 ** (-6 / 20), len(voice))
    assert [n.pitch for n in heard(noisy.astype(np.float32))] == [60, 60, 60]


def test_a_new_syllable_after_a_fading_note_is_found_by_its_rise() -> None:
    """Each syllable fades by 6 dB over 0.2 s, dips 3 dB more and comes back in 20 ms: the
    dip is shallow against the faded end (as a room's tail fills it), the rise is sudden."""

    def ramp(from_db: float, to_db: float, duration_s: float) -> np.ndarray:
        return np.linspace(from_db, to_db, int(duration_s * SR))

    syllable = np.concatenate([ramp(0, 0, 0.2), ramp(0, -6, 0.2), ramp(-6, -9, 0.03),
                               ramp(-9, 0, 0.02)])
    loudness = np.concatenate([syllable, syllable, ramp(0, 0, 0.4)])
    notes = heard(sing(np.full(len(loudness), 57.0), loudness))
    assert [n.pitch for n in notes] == [57, 57, 57]
    assert np.abs(np.array([n.start_s for n in notes]) - [0.3, 0.75, 1.2]).max() < 0.05
