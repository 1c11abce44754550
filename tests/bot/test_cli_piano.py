import json
from pathlib import Path

import pretty_midi
import pytest
import soundfile as sf

from engine.audio import wav_bytes
from tests.bot.test_cli import run, run_expecting_exit
from tests.engine.test_piano import SCALE, SR, sung_scale


@pytest.fixture()
def scale_wav(tmp_path: Path) -> Path:
    path = tmp_path / "scale.wav"
    path.write_bytes(wav_bytes(sung_scale(), SR))
    return path


def test_piano_to_midi_with_json(tmp_path: Path, capsys, scale_wav: Path) -> None:
    out = tmp_path / "scale.mid"
    code, stdout, _ = run(capsys, "piano", str(scale_wav), "-o", str(out), "--json")
    assert code == 0
    made = json.loads(stdout)
    assert [n["pitch"] for n in made["notes"]] == SCALE
    assert {"path", "duration_s", "tuning_cents", "tuning_drift_cents", "notes",
            "timings_s"} <= set(made)
    assert made["tempo_bpm"] is None
    midi = pretty_midi.PrettyMIDI(str(out))
    assert [n.pitch for n in midi.instruments[0].notes] == SCALE


@pytest.mark.parametrize("ext", ["ogg", "wav", "mp3", "png"])
def test_piano_to_audio_and_picture(tmp_path: Path, capsys, scale_wav: Path, ext: str) -> None:
    out = tmp_path / f"scale.{ext}"
    assert run(capsys, "piano", str(scale_wav), "-o", str(out))[0] == 0
    if ext == "png":
        assert out.read_bytes()[:4] == b"\x89PNG"
    else:
        samples, rate = sf.read(out)
        assert len(samples) / rate == pytest.approx(len(sung_scale()) / SR, abs=0.1)


def test_piano_quantize(tmp_path: Path, capsys, scale_wav: Path) -> None:
    code, stdout, _ = run(capsys, "piano", str(scale_wav), "-o", str(tmp_path / "q.mid"),
                          "--quantize", "--json")
    assert code == 0 and json.loads(stdout)["tempo_bpm"] is not None


def test_piano_mistakes(tmp_path: Path, capsys, scale_wav: Path) -> None:
    silence = tmp_path / "silence.wav"
    silence.write_bytes(wav_bytes(sung_scale() * 0, SR))
    for args, message in (([str(silence), "-o", str(tmp_path / "x.mid")], "no notes heard"),
                          ([str(scale_wav), "-o", str(tmp_path / "x.txt")], "cannot tell"),
                          ([str(tmp_path / "none.wav"), "-o", str(tmp_path / "x.mid")],
                           "no such file")):
        code, stdout, stderr = run_expecting_exit(capsys, "piano", *args)
        assert code == 2 and stdout == "" and stderr.count("\n") == 1 and message in stderr
