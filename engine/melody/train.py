"""Train the melody LSTM on POP909 and export the weights the engine ships.

    .venv/bin/python -m engine.melody.train            # about 30 minutes on 2 CPU cores

Songs 001-809 are split into training and validation (every tenth song validates); the
test set 810-909 is never read here. The best epoch by validation loss is exported to
engine/melody/weights/melody_lstm.npz, with a JSON record of how it was made beside it.
"""

from __future__ import annotations

import argparse
import logging
import math
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from engine.melody.model import DEFAULT_WEIGHTS, save_weights
from engine.melody.pop909 import TRAIN_SONGS, Pop909Song, read_songs
from engine.melody.tokens import BAR, BOS_MAJOR, BOS_MINOR, PAD, VOCAB_SIZE, encode

log = logging.getLogger("singsong.train")
DEFAULT_DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "melodies" / (
    "pop909/POP909"
)


@dataclass
class TrainConfig:
    embedding: int = 128
    hidden: int = 384
    layers: int = 2
    dropout: float = 0.25
    window: int = 256
    batch: int = 32
    epochs: int = 16
    lr: float = 3e-3
    weight_decay: float = 1e-5
    seed: int = 909
    max_minutes: float = 45.0
    max_steps: int | None = None  # for tests: stop after this many optimiser steps


class MelodyNet(nn.Module):
    def __init__(self, config: TrainConfig) -> None:
        super().__init__()
        self.embedding = nn.Embedding(VOCAB_SIZE, config.embedding)
        self.lstm = nn.LSTM(
            config.embedding, config.hidden, config.layers, batch_first=True,
            dropout=config.dropout if config.layers > 1 else 0.0,
        )
        self.dropout = nn.Dropout(config.dropout)
        self.out = nn.Linear(config.hidden, VOCAB_SIZE)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        hidden, _ = self.lstm(self.dropout(self.embedding(tokens)))
        logits: torch.Tensor = self.out(self.dropout(hidden))
        return logits

    def export(self) -> dict[str, np.ndarray]:
        """Arrays for engine.melody.model.MelodyLstm (biases of both gates summed)."""
        arrays = {
            "embedding": self.embedding.weight.detach().numpy(),
            "w_out": self.out.weight.detach().numpy(),
            "b_out": self.out.bias.detach().numpy(),
            "n_layers": np.array(self.lstm.num_layers),
        }
        for i in range(self.lstm.num_layers):
            arrays[f"w_ih_{i}"] = getattr(self.lstm, f"weight_ih_l{i}").detach().numpy()
            arrays[f"w_hh_{i}"] = getattr(self.lstm, f"weight_hh_l{i}").detach().numpy()
            arrays[f"b_{i}"] = (
                getattr(self.lstm, f"bias_ih_l{i}") + getattr(self.lstm, f"bias_hh_l{i}")
            ).detach().numpy()
        return arrays


def song_windows(song: Pop909Song, window: int, offset_bars: int) -> list[list[int]]:
    """Cut a song's tokens into windows that each start on a bar with the mode token.

    Each window after the first starts at the last bar that began inside the one before, so
    windows overlap a little.

    Parameters
    ----------
    song : Pop909Song
        The song; the mode token of each window is that of its first bar.
    window : int > 0
        Tokens per window, after the mode token.
    offset_bars : int >= 0
        Bars skipped before the first window (training varies it, 0..3, per epoch).

    Returns
    -------
    windows : list of list of int
        Each the mode token then up to `window` tokens; windows of 8 tokens or fewer are dropped.
    """
    tokens = encode(song.score)[1:]
    bar_at = [i for i, t in enumerate(tokens) if t == BAR]
    windows = []
    bar = offset_bars
    while bar < len(bar_at):
        start = bar_at[bar]
        mode_token = BOS_MINOR if song.bar_modes[bar] == "minor" else BOS_MAJOR
        chunk = [mode_token, *tokens[start:start + window]]
        if len(chunk) > 8:
            windows.append(chunk)
        # Next window starts at the last bar inside this one, so windows overlap a little.
        inside = [b for b in range(bar + 1, len(bar_at)) if bar_at[b] < start + window]
        bar = inside[-1] if len(inside) > 1 else bar + 1
    return windows


def batches(windows: list[list[int]], batch: int, window: int,
            rng: np.random.Generator) -> list[torch.Tensor]:
    """Windows in a random order, padded with PAD into batches of rows.

    Parameters
    ----------
    windows : list of list of int
        Token windows (song_windows); each is cut to `window` + 1 tokens.
    batch : int > 0
        Rows per batch (the last batch may have fewer).
    window : int > 0
        Tokens per window; rows are `window` + 1 long (inputs and the next-token targets).
    rng : np.random.Generator
        Chooses the order.

    Returns
    -------
    batches : list of torch.Tensor [shape=(<= batch, window + 1)], int64
    """
    order = rng.permutation(len(windows))
    out = []
    for i in range(0, len(order), batch):
        rows = np.full((min(batch, len(order) - i), window + 1), PAD, dtype=np.int64)
        for r, w in enumerate(order[i:i + batch]):
            seq = windows[w][: window + 1]
            rows[r, : len(seq)] = seq
        out.append(torch.from_numpy(rows))
    return out


def batch_loss(model: MelodyNet, rows: torch.Tensor) -> torch.Tensor:
    """Mean next-token cross-entropy (nats per token) of a batch, PAD targets ignored.

    Parameters
    ----------
    model : MelodyNet
    rows : torch.Tensor [shape=(b, window + 1)], int64
        A batch from batches: each row's first `window` tokens predict its last `window`.

    Returns
    -------
    loss : torch.Tensor, scalar, float >= 0
    """
    logits = model(rows[:, :-1])
    return nn.functional.cross_entropy(
        logits.reshape(-1, VOCAB_SIZE), rows[:, 1:].reshape(-1), ignore_index=PAD
    )


def evaluate(model: MelodyNet, data: list[torch.Tensor]) -> float:
    """Cross-entropy per token (nats) over all non-PAD targets of `data`, without training.

    Parameters
    ----------
    model : MelodyNet
        Put in eval mode for the pass and back in train mode after.
    data : list of torch.Tensor
        Batches from batches.

    Returns
    -------
    loss : float >= 0
        0.0 when `data` has no targets.
    """
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for rows in data:
            n = int((rows[:, 1:] != PAD).sum())
            total += batch_loss(model, rows).item() * n
            count += n
    model.train()
    return total / max(count, 1)


def train(train_songs: list[Pop909Song], valid_songs: list[Pop909Song],
          config: TrainConfig) -> tuple[MelodyNet, dict[str, object]]:
    """Fit the network; return the best model by validation loss and the training record.

    AdamW with a one-cycle learning rate, gradients clipped to norm 1. Stops after
    config.epochs epochs, config.max_steps steps (when set), or when the next epoch is expected
    to end past config.max_minutes.

    Parameters
    ----------
    train_songs : list of Pop909Song
        Songs to fit; windows start 0..3 bars in, chosen at random per song and epoch.
    valid_songs : list of Pop909Song
        Songs to validate on after each epoch.
    config : TrainConfig
        Sizes, optimiser settings, limits and the seed.

    Returns
    -------
    model : MelodyNet
        With the weights of the epoch of lowest validation loss.
    record : dict of str -> object
        The configuration, song numbers, losses per epoch (nats per token), steps, times (s),
        parameter count and torch version.
    """
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    model = MelodyNet(config)
    optimiser = torch.optim.AdamW(model.parameters(), lr=config.lr,
                                  weight_decay=config.weight_decay)
    valid_windows = [w for s in valid_songs for w in song_windows(s, config.window, 0)]
    valid_data = batches(valid_windows, config.batch, config.window, rng)
    steps_per_epoch = math.ceil(
        sum(len(song_windows(s, config.window, 0)) for s in train_songs) / config.batch
    )
    total_steps = config.max_steps or steps_per_epoch * config.epochs
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimiser, max_lr=config.lr, total_steps=total_steps + steps_per_epoch, pct_start=0.05
    )
    history: list[dict[str, float]] = []
    best_loss, best_state, step = math.inf, None, 0
    started = time.monotonic()
    initial_valid = evaluate(model, valid_data)
    for epoch in range(config.epochs):
        train_windows = [w for s in train_songs
                         for w in song_windows(s, config.window, int(rng.integers(0, 4)))]
        losses = []
        for rows in batches(train_windows, config.batch, config.window, rng):
            loss = batch_loss(model, rows)
            optimiser.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimiser.step()
            scheduler.step()
            losses.append(loss.item())
            step += 1
            if config.max_steps and step >= config.max_steps:
                break
        valid_loss = evaluate(model, valid_data)
        elapsed = time.monotonic() - started
        history.append({"epoch": epoch + 1, "train_loss": float(np.mean(losses)),
                        "valid_loss": valid_loss, "elapsed_s": round(elapsed, 1)})
        log.info("epoch %d train %.4f valid %.4f (%.0f s)", epoch + 1, np.mean(losses),
                 valid_loss, elapsed)
        if valid_loss < best_loss:
            best_loss = valid_loss
            best_state = {k: v.clone() for k, v in model.state_dict().items()}
        out_of_time = elapsed / 60 * (epoch + 2) / (epoch + 1) > config.max_minutes
        if (config.max_steps and step >= config.max_steps) or out_of_time:
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    record: dict[str, object] = {
        "config": asdict(config),
        "train_songs": [s.number for s in train_songs],
        "valid_songs": [s.number for s in valid_songs],
        "test_songs": "810-909, never read by training",
        "initial_valid_loss": initial_valid,
        "best_valid_loss_per_token": best_loss,
        "epochs_run": len(history),
        "steps": step,
        "history": history,
        "train_time_s": round(time.monotonic() - started, 1),
        "parameters": sum(p.numel() for p in model.parameters()),
        "torch": torch.__version__,
    }
    return model, record


def split_songs(songs: list[Pop909Song]) -> tuple[list[Pop909Song], list[Pop909Song]]:
    """Every tenth song (by number) validates; the rest train.

    Parameters
    ----------
    songs : list of Pop909Song

    Returns
    -------
    train_songs, valid_songs : list of Pop909Song
        Numbers not divisible by 10, and those that are.
    """
    return [s for s in songs if s.number % 10], [s for s in songs if s.number % 10 == 0]


def _git_commit() -> str | None:
    """The commit of the code that trained the weights, when run from a git checkout."""
    try:
        result = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                                cwd=Path(__file__).parent, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip()


def main(argv: list[str] | None = None) -> None:
    """Train the melody model on POP909 and write its weights and record (the command line).

    Parameters
    ----------
    argv : list of str or None
        Command-line arguments (--data, --out, --epochs, --max-minutes, --hidden, --seed);
        None reads sys.argv.
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="POP909 folder")
    parser.add_argument("--out", type=Path, default=DEFAULT_WEIGHTS, help="weights .npz")
    parser.add_argument("--epochs", type=int, default=TrainConfig.epochs)
    parser.add_argument("--max-minutes", type=float, default=TrainConfig.max_minutes)
    parser.add_argument("--hidden", type=int, default=TrainConfig.hidden)
    parser.add_argument("--seed", type=int, default=TrainConfig.seed)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.set_num_threads(max(1, torch.get_num_threads()))
    started = time.monotonic()
    commit = _git_commit()  # now, before the tree can change under a long run
    songs = read_songs(args.data, TRAIN_SONGS)
    train_songs, valid_songs = split_songs(songs)
    log.info("read %d songs (%d train, %d valid) in %.0f s", len(songs), len(train_songs),
             len(valid_songs), time.monotonic() - started)
    config = TrainConfig(epochs=args.epochs, max_minutes=args.max_minutes, hidden=args.hidden,
                         seed=args.seed)
    model, record = train(train_songs, valid_songs, config)
    record["skipped_songs_not_4_4"] = sorted(set(TRAIN_SONGS) - {s.number for s in songs})
    record["command"] = "python -m engine.melody.train " + " ".join(
        argv if argv is not None else sys.argv[1:])
    record["code_commit"] = commit
    record["total_time_s"] = round(time.monotonic() - started, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_weights(args.out, model.export(), record)
    log.info("wrote %s", args.out)


if __name__ == "__main__":
    main()
