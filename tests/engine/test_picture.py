"""Pictures: a song's card kept as data and drawn later is the picture drawn at once."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from engine import picture
from engine.audio import wav_bytes
from engine.pipeline import melody, piano, sing
from tests.engine.test_piano import SR, sung_scale

PNG = b"\x89PNG\r\n\x1a\n"


def test_a_card_draws_what_voice_png_draws() -> None:
    """Every number of the line survives the JSON (gaps, points out of range, long floats),
    so the card draws the same bytes."""
    sung = [(60, 0.5, 1.0), (64, 1.1, 1.7), (62, 1.8, 2.4)]
    times = np.arange(0.3, 2.6, 0.03) + 1e-9 / 3
    midi = 62 + 2.7 * np.sin(times * 7.1) + np.pi * 1e-7
    midi[10:14] = np.nan  # unvoiced
    midi[20] = 70.0  # beyond 4 semitones over the highest note: not drawn
    midi[30] = 55.5  # beyond 3 under the lowest
    line = (times, midi)
    card = picture.voice_card(sung, line, "Velvet Harbour", "A minor · 96 BPM · pop band",
                              picture.COMPUTER_VOICE)
    kept = json.loads(card)
    assert kept["midi"][10:14] == [None] * 4 and kept["midi"][20] is None
    assert kept["midi"][30] is None and len(kept["times_s"]) == len(times)
    drawn = picture.draw(card)
    assert drawn == picture.voice_png(sung, line, "Velvet Harbour",
                                      "A minor · 96 BPM · pop band", picture.COMPUTER_VOICE)
    assert drawn[:8] == PNG and struct.unpack(">II", drawn[16:24]) == picture.CARD_SIZE_PX
    assert drawn != picture.draw(picture.voice_card(sung, line, "Another title"))


def test_a_melodys_and_a_piano_parts_cards_draw_their_piano_rolls() -> None:
    """The worker keeps a melody's and a piano part's card (no picture): drawn, each is the
    PNG the engine draws with them."""
    tune = melody(seed=3, bars=2, formats=("png",), title="Velvet Harbour")
    assert picture.draw(picture.piano_roll_card(tune.melody, "Velvet Harbour")) == (
        tune.files["png"])
    played = piano(wav_bytes(sung_scale(), SR), formats=("png",))
    card = picture.heard_notes_card([(n.pitch, n.start_s, n.end_s, n.velocity)
                                     for n in played.notes], played.duration_s,
                                    played.tempo_bpm)
    assert json.loads(card)["title"].startswith("8 notes heard")
    assert picture.draw(card) == played.files["png"]


@pytest.mark.parametrize("card", [b"", b"not json", b"[]", b'{"kind": "cover"}',
                                  b'{"kind": "voice", "sung": []}', b"\xff\xfe",
                                  b'{"kind": "notes", "title": "", "subtitle": ""}'])
def test_only_a_card_is_drawn(card: bytes) -> None:
    with pytest.raises(ValueError, match="not a card SingSong draws"):
        picture.draw(card)


def test_a_song_drawn_when_asked_is_the_picture_drawn_with_it(short_speech_clip: Path) -> None:
    """The worker's path (no extras: the card only, drawn later) and the CLI's (extras: drawn
    at once) give the same picture, byte for byte, and the same pitch accuracy."""
    data = short_speech_clip.read_bytes()
    now = sing(data, seed=5, title="Drawn now", audio_format="wav")
    later = sing(data, seed=5, title="Drawn now", audio_format="wav", extras=False)
    assert later.picture == b"" and later.stems == {}
    assert later.picture_card == now.picture_card
    assert now.picture[:8] == PNG and picture.draw(later.picture_card) == now.picture
    assert later.summary["pitch_accuracy"] == now.summary["pitch_accuracy"] > 0.8
    assert len(later.picture_card) < 40_000  # bytes: a fraction of the PNG's
    assert "extras" not in later.timings_s


def test_a_worker_never_imports_matplotlib(short_speech_clip: Path, tmp_path: Path) -> None:
    """A worker making songs, lyrics, melodies and piano parts does not load matplotlib (its
    memory), nor draw (its CPU): each keeps its picture's card."""
    scale = tmp_path / "scale.wav"
    scale.write_bytes(wav_bytes(sung_scale(), SR))
    script = ("import sys; from pathlib import Path; from bot.jobs.tasks import run_engine; "
              "made = [run_engine('sing', Path(sys.argv[1]).read_bytes(), {'seed': 2}), "
              "run_engine('lyrics', None, {'seed': 2, 'text': 'la la la sing along'}), "
              "run_engine('melody', None, {'seed': 2}), "
              "run_engine('piano', Path(sys.argv[2]).read_bytes(), {})]; "
              "[m.measure() for m in made if m.measure]; "  # as the worker does next
              "assert all(m.picture is None and m.picture_card for m in made), made; "
              "print(sorted(m for m in sys.modules if m.split('.')[0] == 'matplotlib'))")
    run = subprocess.run([sys.executable, "-c", script, str(short_speech_clip), str(scale)],
                         capture_output=True, text=True, check=True, timeout=180)
    assert run.stdout.strip() == "[]"
