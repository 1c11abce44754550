from pathlib import Path

import numpy as np
import pytest
import torch

from engine.melody.model import load_model_file, save_weights
from engine.melody.pop909 import read_songs
from engine.melody.tokens import encode
from engine.melody.train import MelodyNet, TrainConfig, batches, song_windows, train


@pytest.fixture(scope="module")
def few_songs(pop909_root: Path):
    return read_songs(pop909_root, range(1, 7))


@pytest.fixture(autouse=True)
def one_thread():
    """Small models train fastest on one thread (and do not fight other test workers)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_a_few_training_steps_lower_the_loss(few_songs) -> None:
    config = TrainConfig(embedding=32, hidden=64, layers=1, window=96, batch=8, epochs=20,
                         lr=1e-2, max_steps=30)
    _model, record = train([*few_songs[:4], few_songs[5]], [few_songs[4]], config)
    history = record["history"]
    assert isinstance(history, list)
    assert record["steps"] == 30
    assert history[-1]["train_loss"] < history[0]["train_loss"] - 1.0
    best, initial = record["best_valid_loss_per_token"], record["initial_valid_loss"]
    assert isinstance(best, float) and isinstance(initial, float)
    assert best < initial - 0.3


def test_numpy_model_matches_torch(few_songs, tmp_path: Path) -> None:
    torch.manual_seed(0)
    net = MelodyNet(TrainConfig(embedding=24, hidden=48, layers=2))
    net.eval()
    tokens = encode(few_songs[0].score)[:200]
    with torch.no_grad():
        log_probs = torch.log_softmax(net(torch.tensor([tokens])), dim=-1)[0]
    expected = np.array([float(log_probs[t, tokens[t + 1]]) for t in range(len(tokens) - 1)])

    path = tmp_path / "m.npz"
    save_weights(path, net.export(), {"note": "test"})
    model = load_model_file(path)
    assert model.meta == {"note": "test"}
    np.testing.assert_allclose(model.sequence_log_probs(tokens), expected, atol=1e-4)


def test_windows_start_on_a_bar_with_the_mode(few_songs) -> None:
    windows = song_windows(few_songs[0], window=64, offset_bars=1)
    assert all(w[0] in (1, 2) and w[1] == 3 for w in windows)
    rows = batches(windows, batch=4, window=64, rng=np.random.default_rng(0))
    assert sum(len(r) for r in rows) == len(windows)
    assert rows[0].shape[1] == 65
