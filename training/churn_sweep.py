"""The worker's churn sweep, replayed offline: each row's churn score over the silence after it.

For every event row, the churn head is scored at each checkpoint of training/sweep_rule.py (the
points the worker's sweep uses), with the sequence form (== the step graph the worker runs,
invariant 1) and the validation calibration that will be folded into the exported head; a
checkpoint counts where the user is still silent there.
:func:`training.thresholds.sweep_operating_point` turns these into the threshold.
"""

from __future__ import annotations

import numpy as np
import torch

from training.labels import LabelledData, next_later_ts
from training.model import ClickModel
from training.sequences import full_batches
from training.sweep_rule import SWEEP_IDLE_SECONDS, checkpoints
from training.thresholds import SweepRows


@torch.no_grad()
def sweep_logits(model: ClickModel, data: LabelledData, points: np.ndarray) -> np.ndarray:
    """Raw churn logits ``(N, K)`` of every row (user order, then time) at each checkpoint."""
    model.eval()
    per_user: list[np.ndarray] = [np.empty((0, len(points)))] * len(data.users)
    for chosen, x in full_batches(data.users):
        cols = []
        for e in points:  # one pass per checkpoint: K is ~10 (doubling up to the horizon)
            _, lc = model.logits(x, torch.full(x.shape[:2], float(e)))  # (B, T)
            cols.append(lc.numpy())
        stacked = np.stack(cols, axis=-1)  # (B, T, K)
        for k, ui in enumerate(chosen):
            per_user[ui] = stacked[k, : len(data.users[ui].ts)].astype(np.float64)
    return np.concatenate(per_user)


def sweep_rows(
    model: ClickModel,
    data: LabelledData,
    calibration: tuple[float, float],
    idle_seconds: float = SWEEP_IDLE_SECONDS,
) -> tuple[np.ndarray, SweepRows]:
    """The checkpoints ``(K,)`` and every row's sweep, calibrated like the exported head."""
    points = checkpoints(idle_seconds, data.churn_ms / 1000.0)
    a, b = calibration
    p = 1.0 / (1.0 + np.exp(-(a * sweep_logits(model, data, points) + b)))  # (N, K)
    gap = np.concatenate([next_later_ts(u.ts) - u.ts for u in data.users])  # (N,) ms of silence
    reach = gap[:, None] > (points * 1000).astype(np.int64)  # (N, K) still silent there
    return points, SweepRows(p=p, reach=reach)


def select(rows: SweepRows, mask: np.ndarray) -> SweepRows:
    """The rows where ``mask`` holds."""
    return SweepRows(rows.p[mask], rows.reach[mask])
