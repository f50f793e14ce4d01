"""Fit the CNN+RNN on labelled users: multi-task BCE, AdamW, early stopping, then calibration.

Training starts from a logistic regression (training.warm_start): inputs standardised on training
rows, each head's wide path fitted as the linear model, the deep part's last layer at zero; its
validation loss is the first to beat, so early stopping keeps the linear start unless training
improves on it. Both heads use plain BCE by default (``max_pos_weight`` 1): a positive-class
weight would pull the network away from the unweighted linear start in its first updates (on
nine-day Taobao validation loss rose from the start with the weight and fell without it). After
training each head is Platt-scaled on validation rows and the scaling is folded into its last
linear layer -- the exported graphs then emit calibrated probabilities with no extra op.
"""

from __future__ import annotations

import copy
import math
import random
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from torch import nn
from tqdm import tqdm

from training.labels import TRAIN, VALID, LabelError, LabelledData, UserRows
from training.model import ClickModel, ModelConfig
from training.sequences import Batch, Window, augment, full_batches, make_batch, windows_for
from training.warm_start import fit_standardisation, start_from_linear


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of one run; a preset is one of these."""

    model: ModelConfig = field(default_factory=ModelConfig)
    epochs: int = 12
    batch_size: int = 64
    lr: float = 2e-3
    max_len: int = 256
    burn_in: int = 32
    patience: int = 2
    seed: int = 0
    max_users: int | None = None  # subsample users (seeded) before training: quick presets
    # Cap of the positive-class weight sqrt(neg/pos); 1 = unweighted BCE, like the linear start.
    max_pos_weight: float = 1.0
    threads: int = 2
    # Small data sets give few windows: an epoch repeats them (fresh shuffles) until it has at
    # least this many updates, so a 500-user file is not stopped after a hundred steps.
    min_steps_per_epoch: int = 100
    baseline_grid: bool = True  # tune baselines on a small grid (off in the test preset)
    alert_budget: float = 0.05  # operating point: share of active users alerted per head per day
    precision_floor: float | None = None  # optionally raise the threshold to this precision
    # Start each head's wide path as a logistic regression on the standardised side inputs (C
    # chosen on validation from ``linear_grid``), the deep part's last layer at zero.
    linear_start: bool = True
    linear_grid: tuple[float, ...] = (0.01, 0.1, 1.0)
    freeze_wide_epochs: int = 0  # the wide path is not trained for this many first epochs
    weight_decay: float = 0.0  # AdamW, on the deep part only (the wide path is not pulled to 0)


PRESETS: dict[str, TrainConfig] = {
    "default": TrainConfig(),
    # The demo model: at most 3000 users, a smaller net, 4 epochs (about a minute here).
    "quick": TrainConfig(
        model=ModelConfig(conv_channels=16, hidden_size=32), epochs=4, max_users=3000, max_len=128
    ),
    # For tests: seconds.
    "tiny": TrainConfig(
        model=ModelConfig(conv_channels=8, hidden_size=8, churn_hidden=8),
        epochs=2,
        max_users=150,
        batch_size=32,
        max_len=64,
        burn_in=8,
        patience=1,
        baseline_grid=False,
        linear_grid=(0.1,),
        min_steps_per_epoch=0,
    ),
}


def _pos_weight(users: Sequence[UserRows], head: str, cap: float) -> float:
    y = np.concatenate(
        [getattr(u, f"y_{head}")[getattr(u, f"m_{head}") & (u.split == TRAIN)] for u in users]
    )
    pos = float(y.sum())
    if pos == 0 or pos == len(y):
        return 1.0
    return float(min(cap, max(1.0, math.sqrt((len(y) - pos) / pos))))


def _masked_bce(logit: torch.Tensor, y: torch.Tensor, m: torch.Tensor, pw: float) -> torch.Tensor:
    if not m.any():
        return logit.sum() * 0.0  # keeps the graph connected when a batch has no rows of a head
    return nn.functional.binary_cross_entropy_with_logits(
        logit[m], y[m], pos_weight=torch.tensor(pw)
    )


def _loss(model: ClickModel, batch: Batch, pw: tuple[float, float]) -> torch.Tensor:
    lp, lc = model.logits(batch.x, batch.elapsed)  # (B, T) each
    return _masked_bce(lp, batch.y_prop, batch.m_prop, pw[0]) + _masked_bce(
        lc, batch.y_churn, batch.m_churn, pw[1]
    )


def _batches(
    windows: list[Window], size: int, rng: random.Random, min_steps: int = 0
) -> list[list[Window]]:
    """Shuffled batches of similar lengths (less padding): sort inside pools of 50 batches;
    further shuffled passes over ``windows`` until there are at least ``min_steps`` batches."""
    out = _one_pass(windows, size, rng)
    while len(out) < min_steps:
        out += _one_pass(windows, size, rng)
    return out


def _one_pass(windows: list[Window], size: int, rng: random.Random) -> list[list[Window]]:
    shuffled = windows[:]
    rng.shuffle(shuffled)
    pool = size * 50
    out = []
    for i in range(0, len(shuffled), pool):
        chunk = sorted(shuffled[i : i + pool], key=lambda w: w.stop - w.start)
        out += [chunk[j : j + size] for j in range(0, len(chunk), size)]
    rng.shuffle(out)
    return out


@torch.no_grad()
def validation_loss(model: ClickModel, data: LabelledData, windows: list[Window]) -> float:
    """Unweighted log loss (both heads summed) on validation rows at elapsed 0."""
    model.eval()
    total, rows = 0.0, 0
    for i in range(0, len(windows), 256):
        batch = make_batch(data.users, windows[i : i + 256], VALID)
        n = int(batch.m_prop.sum() + batch.m_churn.sum())
        total += float(_loss(model, batch, (1.0, 1.0))) * max(n, 1)
        rows += n
    return total / max(rows, 1)


def fit(
    data: LabelledData, cfg: TrainConfig, progress: bool = True
) -> tuple[ClickModel, list[dict]]:
    """Train on TRAIN rows, early-stop on validation loss; return the best model and history."""
    torch.manual_seed(cfg.seed)
    np_rng, py_rng = np.random.default_rng(cfg.seed), random.Random(cfg.seed)
    torch.set_num_threads(cfg.threads)
    users = data.users
    train_w = windows_for(users, TRAIN, cfg.max_len, cfg.burn_in)
    val_w = windows_for(users, VALID, cfg.max_len, cfg.burn_in)
    if not train_w or not val_w:
        raise LabelError("no labelled training or validation rows: data too small for the split")
    pw = (
        _pos_weight(users, "prop", cfg.max_pos_weight),
        _pos_weight(users, "churn", cfg.max_pos_weight),
    )
    model = ClickModel(cfg.model)
    fit_standardisation(model, users, augment(users, data.churn_ms, data.split.end_ms, np_rng))
    history: list[dict] = []
    best, best_loss, bad_epochs = copy.deepcopy(model.state_dict()), math.inf, 0
    if cfg.linear_start:
        chosen_c = start_from_linear(
            model, users, cfg.seed, data.churn_ms, data.split.end_ms, cfg.linear_grid
        )
        best_loss = validation_loss(model, data, val_w)  # the linear start is the one to beat
        best = copy.deepcopy(model.state_dict())
        history.append({"epoch": 0, "val_loss": round(best_loss, 5), "linear_start": chosen_c})
        tqdm.write(f"linear start: validation loss {best_loss:.4f} ({chosen_c})", sys.stderr)
    wide = [p for n, p in model.named_parameters() if ".wide." in n]
    deep = [p for n, p in model.named_parameters() if ".wide." not in n]
    opt = torch.optim.AdamW(
        [{"params": deep, "weight_decay": cfg.weight_decay}, {"params": wide, "weight_decay": 0.0}],
        lr=cfg.lr,
    )
    for epoch in range(1, cfg.epochs + 1):
        model.train()
        for p in wide:
            p.requires_grad_(epoch > cfg.freeze_wide_epochs)
        churn_rows = augment(users, data.churn_ms, data.split.end_ms, np_rng)
        bar = tqdm(_batches(train_w, cfg.batch_size, py_rng, cfg.min_steps_per_epoch),
                   desc=f"epoch {epoch}",
                   disable=not progress, leave=False)  # fmt: skip
        running = 0.0
        for step, chosen in enumerate(bar, 1):
            loss = _loss(model, make_batch(users, chosen, TRAIN, churn_rows), pw)
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)  # GRUs spike on long sequences
            opt.step()
            running += (loss.item() - running) / min(step, 50)  # ~50-step moving average
            bar.set_postfix(loss=f"{running:.4f}")
        val = validation_loss(model, data, val_w)
        history.append({"epoch": epoch, "train_loss": round(running, 5), "val_loss": round(val, 5)})
        # Always one line per epoch: a long run without bars still shows it is alive.
        tqdm.write(
            f"epoch {epoch}: train loss {running:.4f}  validation loss {val:.4f}", sys.stderr
        )
        if val < best_loss - 1e-4:
            best, best_loss, bad_epochs = copy.deepcopy(model.state_dict()), val, 0
        else:
            bad_epochs += 1
            if bad_epochs > cfg.patience:
                break
    model.load_state_dict(best)
    return model.eval(), history


@torch.no_grad()
def predict_logits(
    model: ClickModel, users: Sequence[UserRows]
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per user, logits ``(T,)`` of both heads over its full history at elapsed 0."""
    model.eval()
    out: list[tuple[np.ndarray, np.ndarray]] = [(np.empty(0), np.empty(0))] * len(users)
    for chosen, x in full_batches(users):
        lp, lc = model.logits(x, torch.zeros(x.shape[:2]))  # (B, T) each
        for k, ui in enumerate(chosen):
            n = len(users[ui].ts)
            out[ui] = (lp[k, :n].numpy().copy(), lc[k, :n].numpy().copy())
    return out


def platt(logits: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Scale and shift of the logit that best fit ``y`` (Platt scaling); identity if unfittable."""
    if len(np.unique(y)) < 2:
        return 1.0, 0.0
    lr = LogisticRegression(C=1e6, max_iter=1000).fit(logits.reshape(-1, 1), y)
    a, b = float(lr.coef_[0, 0]), float(lr.intercept_[0])
    return (a, b) if a > 0 else (1.0, 0.0)  # a <= 0 would invert the ranking: keep the raw head


@torch.no_grad()
def fold_calibration(
    model: ClickModel, prop: tuple[float, float], churn: tuple[float, float]
) -> None:
    """Fold ``sigmoid(a * logit + b)`` into each head's last linear layer, in place."""
    model.propensity_head.fold_affine(*prop)
    model.churn_mlp.fold_affine(*churn)
