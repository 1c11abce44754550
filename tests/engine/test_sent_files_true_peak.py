"""Every file SingSong sends decodes at -1 dBTP or under (4x oversampled): melodies and
piano versions here; songs in test_pipeline_sing.py, albums in album/test_export.py."""

from pathlib import Path

import pytest

from engine import pipeline
from engine.audio import DELIVERED_CEILING_DBTP, decoded_true_peak_dbtp


@pytest.mark.parametrize("seed", [0, 2])
def test_melody_files_decode_under_the_ceiling(seed: int) -> None:
    # Seeds 0 and 2 decoded at -0.21 and -0.69 dBTP before the rule.
    piece = pipeline.melody(seed=seed, formats=("ogg", "mp3"), style="pop")
    for fmt in ("ogg", "mp3"):
        assert decoded_true_peak_dbtp(piece.files[fmt]) <= DELIVERED_CEILING_DBTP, fmt


def test_a_piano_version_decodes_under_the_ceiling(shared_data: Path) -> None:
    sung = (shared_data / "singing" / "vocadito" / "vocadito_1.wav").read_bytes()
    piano = pipeline.piano(sung, formats=("ogg", "mp3"))
    for fmt in ("ogg", "mp3"):
        assert decoded_true_peak_dbtp(piano.files[fmt]) <= DELIVERED_CEILING_DBTP, fmt
