import io
import json
import os
import subprocess
import sys
from pathlib import Path

import matplotlib.image
import pretty_midi
import pytest
import soundfile as sf

from bot.cli import main

SINGSONG = Path(sys.executable).parent / "singsong"


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_midi_has_the_melody_track_and_accompaniment(tmp_path: Path, capsys) -> None:
    out = tmp_path / "tune.mid"
    code, stdout, _ = run(capsys, "melody", "-o", str(out), "--seed", "5", "--key", "Am",
                          "--bars", "4", "--tempo", "96", "--json")
    assert code == 0
    made = json.loads(stdout)
    midi = pretty_midi.PrettyMIDI(str(out))
    tracks = {inst.name: inst for inst in midi.instruments}
    assert set(tracks) == {"melody", "chords", "bass"}
    melody = tracks["melody"].notes
    assert [n.pitch for n in melody] == [n["pitch"] for n in made["notes"]]
    assert made["key"] == "A minor" and made["tempo_bpm"] == 96 and made["bars"] == 4
    assert made["duration_s"] == pytest.approx(4 * 4 * 60 / 96)
    assert made["paths"] == [str(out)]
    assert {"load_model", "compose", "midi", "write", "total"} <= set(made["timings_s"])


@pytest.mark.parametrize("ext", ["ogg", "mp3", "wav"])
def test_audio_is_rendered(tmp_path: Path, capsys, ext: str) -> None:
    out = tmp_path / f"tune.{ext}"
    code, stdout, _ = run(capsys, "melody", "-o", str(out), "--seed", "2", "--bars", "4",
                          "--tempo", "120", "--json")
    assert code == 0
    samples, rate = sf.read(io.BytesIO(out.read_bytes()))
    seconds = len(samples) / rate
    assert 8.0 <= seconds <= 10.5  # 4 bars at 120 BPM plus the release tail
    assert abs(samples).max() > 0.1  # not silence
    assert json.loads(stdout)["format"] == ext
    assert {"render", "encode"} <= set(json.loads(stdout)["timings_s"])


def test_piano_roll_png(tmp_path: Path, capsys) -> None:
    out = tmp_path / "roll.png"
    code, _, _ = run(capsys, "melody", "-o", str(out), "--seed", "9")
    assert code == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = matplotlib.image.imread(str(out))
    assert image.shape[0] > 200 and image.shape[1] > 600


def test_same_seed_same_file(tmp_path: Path, capsys) -> None:
    for name in ("a.mid", "b.mid"):
        assert run(capsys, "melody", "-o", str(tmp_path / name), "--seed", "77")[0] == 0
    assert (tmp_path / "a.mid").read_bytes() == (tmp_path / "b.mid").read_bytes()


def test_count_writes_one_midi_per_seed(tmp_path: Path, capsys) -> None:
    folder = tmp_path / "many"
    code, stdout, _ = run(capsys, "melody", "-o", str(folder), "--seed", "40", "--count", "3",
                          "--json")
    assert code == 0
    assert sorted(p.name for p in folder.iterdir()) == ["40.mid", "41.mid", "42.mid"]
    made = json.loads(stdout)
    assert [m["seed"] for m in made["melodies"]] == [40, 41, 42]
    assert all(pretty_midi.PrettyMIDI(p).instruments for p in made["paths"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--key", "H#"], "unknown key"),
        (["--bars", "0"], "bars must be between 1 and 64"),
        (["--tempo", "1000"], "tempo must be between 40 and 240"),
        (["--tempo", "fast"], "tempo must be a number"),
        (["--count", "0"], "count must be between"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(tmp_path: Path, capsys, args, message) -> None:
    code, stdout, stderr = run_expecting_exit(capsys, "melody", "-o", str(tmp_path / "x.mid"),
                                              *args)
    assert code == 2
    assert stdout == ""
    assert stderr.count("\n") == 1 and message in stderr
    assert not (tmp_path / "x.mid").exists()


@pytest.mark.parametrize(
    ("out", "message"),
    [
        ("missing-folder/x.mid", "not an existing folder"),
        ("x.docx", "cannot tell what to write"),
        ("/proc/x.mid", "cannot write"),
    ],
)
def test_unwritable_or_unknown_outputs_exit_2(tmp_path: Path, capsys, out, message) -> None:
    target = out if out.startswith("/") else str(tmp_path / out)
    code, _, stderr = run_expecting_exit(capsys, "melody", "-o", target, "--seed", "1")
    assert code == 2
    assert stderr.count("\n") == 1 and message in stderr and "Traceback" not in stderr


def test_count_into_a_file_exits_2(tmp_path: Path, capsys) -> None:
    file = tmp_path / "f.mid"
    file.write_bytes(b"")
    code, _, stderr = run_expecting_exit(capsys, "melody", "-o", str(file), "--count", "2")
    assert code == 2 and "must be a folder" in stderr


def run_expecting_exit(capsys, *args: str) -> tuple[int, str, str]:
    try:
        code = main(list(args))
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_the_installed_command(tmp_path: Path) -> None:
    out = tmp_path / "m.ogg"
    # With CI set, pyfluidsynth would print on import: stdout must still be only the JSON.
    result = subprocess.run([str(SINGSONG), "melody", "-o", str(out), "--seed", "1", "--json"],
                            capture_output=True, text=True, timeout=60, check=False,
                            env={**os.environ, "CI": "true"})
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["path"] == str(out)
    assert out.stat().st_size > 10_000
    bad = subprocess.run([str(SINGSONG), "melody", "-o", str(out), "--bars", "0"],
                         capture_output=True, text=True, timeout=60, check=False)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1
