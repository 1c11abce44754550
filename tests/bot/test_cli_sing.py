import json
from pathlib import Path

import pretty_midi
import pytest
import soundfile as sf

from engine.arrange import SAMPLE_RATE
from tests.bot.test_cli import run, run_expecting_exit

SPANISH = "Hola amigos, vamos a cantar esta canción juntos"


def test_sing_writes_the_song_melody_and_stems(tmp_path: Path, capsys, speech_clip) -> None:
    out, melody, stems = tmp_path / "song.ogg", tmp_path / "m.mid", tmp_path / "stems"
    code, stdout, _ = run(capsys, "sing", str(speech_clip), "-o", str(out), "--seed", "4",
                          "--style", "ballad", "--melody-out", str(melody), "--stems",
                          str(stems), "--json")
    assert code == 0
    made = json.loads(stdout)
    assert {"path", "paths", "duration_s", "key", "tempo_bpm", "notes", "timings_s",
            "style", "syllables"} <= set(made)
    assert made["style"] == "ballad"
    assert set(made["paths"]) == {str(out), str(melody), str(stems / "vocal.wav"),
                                  str(stems / "backing.wav"), str(stems / "harmony.wav"),
                                  str(stems / "pitch.png")}  # a full song, by default
    assert out.read_bytes()[:4] == b"OggS"
    midi = pretty_midi.PrettyMIDI(str(melody))
    assert [i.name for i in midi.instruments] == ["melody"]
    assert [n.pitch for n in midi.instruments[0].notes] == [n["pitch"] for n in made["notes"]]
    vocal, rate = sf.read(stems / "vocal.wav")
    backing, _ = sf.read(stems / "backing.wav")
    assert rate == SAMPLE_RATE and len(vocal) == len(backing)
    assert {"decode", "pitch", "retune", "backing", "encode", "write"} <= set(made["timings_s"])


def test_sing_to_a_picture(tmp_path: Path, capsys, speech_clip) -> None:
    out = tmp_path / "voice.png"
    assert run(capsys, "sing", str(speech_clip), "-o", str(out), "--seed", "1")[0] == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_lyrics_command(tmp_path: Path, capsys) -> None:
    out = tmp_path / "l.mp3"
    code, stdout, _ = run(capsys, "lyrics", "We all live in a yellow submarine", "-o",
                          str(out), "--seed", "2", "--json")
    assert code == 0
    assert json.loads(stdout)["lyrics"] == "We all live in a yellow submarine"
    assert out.stat().st_size > 10_000


def test_long_clips_are_cut_and_the_user_told(tmp_path: Path, capsys, speech_clip) -> None:
    long_clip = tmp_path / "long.wav"
    speech, rate = sf.read(speech_clip)
    sf.write(long_clip, list(speech) * 5, rate)  # 70 s
    code, stdout, stderr = run(capsys, "sing", str(long_clip), "-o", str(tmp_path / "x.ogg"),
                               "--seed", "1", "--json")
    assert code == 0
    made = json.loads(stdout)
    assert made["input_truncated"] is True
    assert "first minute" in stderr
    # A minute of speech does not fit a song of 90 s: the user is told how much is sung.
    assert made["duration_s"] <= 90.0 and made["syllables_sung"] < made["syllables"]
    assert f"first {made['input_sung_s']:.0f} s were sung" in stderr


def test_a_full_song_has_its_sections_and_a_harmony_stem(tmp_path: Path, capsys,
                                                         short_speech_clip: Path) -> None:
    stems = tmp_path / "stems"
    code, stdout, _ = run(capsys, "sing", str(short_speech_clip), "-o",
                          str(tmp_path / "full.wav"), "--seed", "3", "--form", "full",
                          "--stems", str(stems), "--json")
    assert code == 0
    made = json.loads(stdout)
    assert made["form"] == "full"
    names = [s["name"] for s in made["sections"]]
    assert names[-1] == "ending" and {"verse", "chorus"} <= set(names)
    starts = [s["start_s"] for s in made["sections"]]
    assert starts == sorted(starts) and starts[-1] < made["duration_s"]
    assert made["harmony_notes"]
    assert str(stems / "harmony.wav") in made["paths"]
    harmony, rate = sf.read(stems / "harmony.wav")
    vocal, _ = sf.read(stems / "vocal.wav")
    assert rate == SAMPLE_RATE and len(harmony) == len(vocal) and abs(harmony).max() > 0.01

    short_stems = tmp_path / "short-stems"
    code, stdout, _ = run(capsys, "sing", str(short_speech_clip), "-o",
                          str(tmp_path / "short.wav"), "--seed", "3", "--form", "short",
                          "--stems", str(short_stems), "--json")
    assert code == 0
    short = json.loads(stdout)
    assert short["form"] == "short" and short["duration_s"] < made["duration_s"]
    assert not (short_stems / "harmony.wav").exists()
    assert sorted(p.name for p in short_stems.iterdir()) == ["backing.wav", "pitch.png",
                                                              "vocal.wav"]


def test_lyrics_are_sung_in_the_language_of_their_words_or_the_one_asked_for(
        tmp_path: Path, capsys) -> None:
    code, stdout, _ = run(capsys, "lyrics", SPANISH, "-o", str(tmp_path / "es.ogg"),
                          "--seed", "2", "--form", "short", "--json")
    assert code == 0
    assert json.loads(stdout)["language"] == {"code": "es", "name": "Spanish",
                                              "chosen_by": "text"}
    code, stdout, _ = run(capsys, "lyrics", "la la la la", "-o", str(tmp_path / "de.ogg"),
                          "--seed", "2", "--form", "short", "--lang", "de", "--json")
    assert code == 0
    language = json.loads(stdout)["language"]
    assert (language["code"], language["chosen_by"]) == ("de", "setting")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["sing", "missing.ogg", "-o", "x.ogg"], "no such file"),
        (["sing", "{text}", "-o", "x.ogg"], "not audio"),
        (["sing", "{clip}", "-o", "x.mid"], "cannot tell what to write"),
        (["sing", "{clip}", "-o", "x.ogg", "--style", "polka"], "invalid choice"),
        (["lyrics", "la " * 200, "-o", "x.ogg"], "the limit is 300"),
        (["lyrics", "   ", "-o", "x.ogg"], "no words"),
        (["sing", "{clip}", "-o", "x.ogg", "--form", "medium"], "invalid choice"),
        (["lyrics", "hello there my friend", "-o", "x.ogg", "--lang", "xx"], "xx"),
    ],
    ids=["missing", "not-audio", "bad-extension", "bad-style", "long-lyrics", "no-lyrics",
         "bad-form", "bad-lang"],
)
def test_mistakes_exit_2_with_one_line(tmp_path: Path, capsys, speech_clip, args, message):
    text = tmp_path / "notes.txt"
    text.write_text("this is not a voice note\n" * 100)
    filled = [a.format(text=text, clip=speech_clip) for a in args]
    filled = [str(tmp_path / a) if a.startswith(("x.", "missing")) else a for a in filled]
    code, stdout, stderr = run_expecting_exit(capsys, *filled)
    assert code == 2 and stdout == ""
    assert stderr.count("\n") == 1 and message in stderr and "Traceback" not in stderr
