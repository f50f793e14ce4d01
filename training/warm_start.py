"""Where the network starts: standardised inputs and each head's wide path fitted as a logistic
regression, so training begins at a tuned linear model and the deep part learns the residual.

On small real data (hundreds of users) a logistic regression with strong regularisation is hard
to beat; a network started from random weights has to rediscover it through noisy updates and
often stops early short of it. Starting from it instead (wide path = the fitted logistic
regression, the MLP's last layer zero) means the network's first validation loss is the linear
model's, and early stopping only keeps a move away from it that lowers validation loss.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss

from training.labels import TRAIN, VALID, UserRows, augmented_churn
from training.model import ClickModel, elapsed_transform

MAX_ROWS = 200_000  # a seeded sample beyond this keeps the fit to seconds


@dataclass(frozen=True)
class HeadRows:
    """One head's design matrix on the network's (standardised) side inputs."""

    x_train: np.ndarray  # (N, S)
    y_train: np.ndarray  # (N,)
    x_valid: np.ndarray  # (M, S)
    y_valid: np.ndarray  # (M,)


def _stack(users: Sequence[UserRows], split_id: int, what: str) -> np.ndarray:
    return np.concatenate([getattr(u, what)[u.split == split_id] for u in users])


def _log_elapsed(seconds: np.ndarray) -> np.ndarray:
    return elapsed_transform(torch.from_numpy(seconds.astype(np.float32))).numpy()


def fit_standardisation(
    model: ClickModel,
    users: Sequence[UserRows],
    churn_rows: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]],
) -> None:
    """Set the model's input mean/std from training rows: every feature column, and the churn
    head's log elapsed time over the (augmented) training churn rows."""
    x = _stack(users, TRAIN, "x")  # (N, F)
    e = np.concatenate(
        [c[0][(u.split == TRAIN) & c[2]] for u, c in zip(users, churn_rows, strict=True)]
    )
    le = _log_elapsed(e) if len(e) else np.zeros(1, np.float32)
    mean = np.append(x.mean(axis=0), le.mean()).astype(np.float32)
    std = np.append(x.std(axis=0), le.std()).astype(np.float32)
    model.set_standardisation(torch.from_numpy(mean), torch.from_numpy(std))


def head_rows(
    model: ClickModel, users: Sequence[UserRows], head: str, seed: int, churn_ms: int, end_ms: int
) -> HeadRows:
    """One head's rows as its wide path sees them: training rows (churn: one draw of the
    elapsed-time augmentation) and validation rows (elapsed 0, as the validation loss has them)."""
    rng = np.random.default_rng(seed)
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("x", "y", "e", "xv", "yv")}
    for u in users:
        tr, va = u.split == TRAIN, u.split == VALID
        if head == "prop":
            y, m, e = u.y_prop, u.m_prop, np.zeros(len(u.ts), np.float32)
        else:
            e, y, m = augmented_churn(u.ts, churn_ms, end_ms, rng)
        parts["x"].append(u.x[m & tr])
        parts["y"].append(y[m & tr])
        parts["e"].append(e[m & tr])
        m_valid = getattr(u, f"m_{head}") & va
        parts["xv"].append(u.x[m_valid])
        parts["yv"].append(getattr(u, f"y_{head}")[m_valid])
    x, y, e, xv, yv = (np.concatenate(parts[k]) for k in ("x", "y", "e", "xv", "yv"))
    if len(y) > MAX_ROWS:
        keep = np.sort(rng.choice(len(y), MAX_ROWS, replace=False))
        x, y, e = x[keep], y[keep], e[keep]
    return HeadRows(
        _side(model, head, x, e), y, _side(model, head, xv, np.zeros(len(yv), np.float32)), yv
    )


@torch.no_grad()
def _side(model: ClickModel, head: str, x: np.ndarray, elapsed: np.ndarray) -> np.ndarray:
    """A head's side input for raw rows ``(N, F)``, exactly as the network computes it."""
    seen = model.seen_rows(torch.from_numpy(x))  # (N, F)
    if head == "prop":
        return seen.numpy()
    return model.churn_side(seen, torch.from_numpy(elapsed)).numpy()


def fit_linear(rows: HeadRows, grid: Sequence[float]) -> tuple[np.ndarray, float, dict]:
    """The logistic regression on the side inputs, C chosen by validation log loss."""
    best: tuple[float, LogisticRegression, float] | None = None
    for c in grid:
        lr = LogisticRegression(C=c, max_iter=1000).fit(rows.x_train, rows.y_train)
        p = lr.predict_proba(rows.x_valid)[:, 1]
        loss = float(log_loss(rows.y_valid, p, labels=[0, 1]))
        if best is None or loss < best[0]:
            best = (loss, lr, c)
    assert best is not None
    loss, lr, c = best
    info = {"C": c, "validation_log_loss": round(loss, 5)}
    return lr.coef_[0].astype(np.float32), float(lr.intercept_[0]), info


@torch.no_grad()
def start_from_linear(
    model: ClickModel,
    users: Sequence[UserRows],
    seed: int,
    churn_ms: int,
    end_ms: int,
    grid: Sequence[float],
) -> dict[str, dict]:
    """Fit each head's wide path as a logistic regression and zero the MLP's last layer, so the
    network's logits start as the linear model's. Returns the chosen C per head."""
    out = {}
    for key, head in (("prop", model.propensity_head), ("churn", model.churn_mlp)):
        if head.wide is None:  # no side inputs: nothing linear to start from
            continue
        rows = head_rows(model, users, key, seed, churn_ms, end_ms)
        if len(np.unique(rows.y_train)) < 2 or len(np.unique(rows.y_valid)) < 2:
            continue
        coef, bias, info = fit_linear(rows, grid)
        head.wide.weight.copy_(torch.from_numpy(coef).unsqueeze(0))
        head.wide.bias.fill_(bias)
        last = head.mlp[-1]
        assert isinstance(last, torch.nn.Linear)
        last.weight.zero_()
        last.bias.zero_()
        out[key] = info
    return out
