"""The melody model at inference time: a token-level LSTM evaluated with numpy.

The network is trained with torch (engine/melody/train.py) and exported to an .npz file;
running it here keeps torch out of the serving process (import alone costs 1.5 s) and makes
one step a handful of small matrix products.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

WEIGHTS_DIR = Path(__file__).parent / "weights"
DEFAULT_WEIGHTS = WEIGHTS_DIR / "melody_lstm.npz"


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (np.tanh(0.5 * x) + 1.0)


@dataclass
class LstmState:
    """Hidden and cell state, one row per layer."""

    h: np.ndarray
    c: np.ndarray

    def copy(self) -> LstmState:
        return LstmState(self.h.copy(), self.c.copy())


class MelodyLstm:
    """Embedding -> stacked LSTM -> linear over the vocabulary (torch.nn.LSTM gate order)."""

    def __init__(self, arrays: dict[str, np.ndarray], meta: dict[str, object]) -> None:
        self.meta = meta
        self.n_layers = int(arrays["n_layers"])
        self.hidden = hidden = int(arrays["w_hh_0"].shape[1])
        # torch orders the gates i, f, g, o; i, f, o, g lets one sigmoid cover three of them.
        order = np.concatenate([np.arange(0, 2 * hidden), np.arange(3 * hidden, 4 * hidden),
                                np.arange(2 * hidden, 3 * hidden)])
        # The first layer's input projection depends only on the token: precompute it.
        self._input_table = np.ascontiguousarray(
            (arrays["embedding"] @ arrays["w_ih_0"].T + arrays["b_0"])[:, order], np.float32
        )
        self._w_hh0 = np.ascontiguousarray(arrays["w_hh_0"].T[:, order], np.float32)
        # Deeper layers: input and recurrent weights stacked, one product per step.
        self._w_stacked = [
            np.ascontiguousarray(
                np.concatenate([arrays[f"w_ih_{i}"].T, arrays[f"w_hh_{i}"].T])[:, order],
                np.float32,
            )
            for i in range(1, self.n_layers)
        ]
        self._b = [arrays[f"b_{i}"][order].astype(np.float32) for i in range(1, self.n_layers)]
        self._w_out = np.ascontiguousarray(arrays["w_out"].T, np.float32)
        self._b_out = arrays["b_out"].astype(np.float32)
        self.vocab_size = int(self._b_out.shape[0])

    def initial_state(self, batch: int = 1) -> LstmState:
        shape = (self.n_layers, batch, self.hidden)
        return LstmState(np.zeros(shape, np.float32), np.zeros(shape, np.float32))

    def step(self, tokens: np.ndarray, state: LstmState) -> np.ndarray:
        """Advance one token per batch row (in place on state); return logits [batch, vocab]."""
        hidden = self.hidden
        gates = self._input_table[tokens] + state.h[0] @ self._w_hh0
        h_layer = self._cell(gates, state, 0, hidden)
        for layer in range(1, self.n_layers):
            stacked = np.concatenate([h_layer, state.h[layer]], axis=-1)
            gates = stacked @ self._w_stacked[layer - 1] + self._b[layer - 1]
            h_layer = self._cell(gates, state, layer, hidden)
        logits: np.ndarray = h_layer @ self._w_out + self._b_out
        return logits

    @staticmethod
    def _cell(gates: np.ndarray, state: LstmState, layer: int, hidden: int) -> np.ndarray:
        sig = _sigmoid(gates[:, : 3 * hidden])
        c = sig[:, hidden: 2 * hidden] * state.c[layer] + sig[:, :hidden] * np.tanh(
            gates[:, 3 * hidden:]
        )
        h: np.ndarray = sig[:, 2 * hidden:] * np.tanh(c)
        state.c[layer] = c
        state.h[layer] = h
        return h

    def sequence_log_probs(self, tokens: list[int]) -> np.ndarray:
        """Log-probability of each token after the first, teacher-forced: shape [len - 1]."""
        state = self.initial_state()
        out = np.empty(len(tokens) - 1)
        for t in range(len(tokens) - 1):
            logits = self.step(np.array([tokens[t]]), state)[0].astype(np.float64)
            logits -= logits.max()
            out[t] = logits[tokens[t + 1]] - np.log(np.exp(logits).sum())
        return out


def save_weights(path: Path, arrays: dict[str, np.ndarray], meta: dict[str, object]) -> None:
    """Write a model's weights to `path` (float32 .npz) and its metadata beside it (.json).

    Parameters
    ----------
    path : Path
        The .npz file; the metadata goes to the same path with the suffix .json.
    arrays : dict of str -> np.ndarray
        The weights by name; stored as float32.
    meta : dict of str -> object
        JSON-serialisable metadata (sizes, training settings).
    """
    np.savez_compressed(path, allow_pickle=False,
                        **{k: v.astype(np.float32) for k, v in arrays.items()})
    path.with_suffix(".json").write_text(json.dumps(meta, indent=2) + "\n")


def load_model_file(path: Path) -> MelodyLstm:
    """Load a model from an .npz file written by save_weights (not cached).

    Parameters
    ----------
    path : Path
        The .npz weights; metadata is read from the same path with the suffix .json, or is empty
        when that file does not exist.

    Returns
    -------
    model : MelodyLstm

    Raises
    ------
    FileNotFoundError
        When `path` does not exist.
    """
    with np.load(path) as data:
        arrays = {k: data[k] for k in data.files}
    meta_path = path.with_suffix(".json")
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    return MelodyLstm(arrays, meta)


@cache
def load_model(path: Path = DEFAULT_WEIGHTS) -> MelodyLstm:
    """The shipped model, loaded once per process.

    Loading also sets the process's BLAS to one thread: the model's products are small, so
    threads only add hand-offs (and stalls on a busy machine), and jobs run in parallel
    processes, one per core.

    Parameters
    ----------
    path : Path
        The .npz weights (DEFAULT_WEIGHTS, the shipped model); cached per path.

    Returns
    -------
    model : MelodyLstm

    Raises
    ------
    FileNotFoundError
        When `path` does not exist.
    """
    threadpool_limits(limits=1, user_api="blas")
    return load_model_file(path)
