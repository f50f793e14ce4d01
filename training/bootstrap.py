"""95 % bootstrap confidence intervals over users, for ROC-AUC and for differences of ROC-AUC.

Rows of one user are not independent, so the resampling unit is the user: each replicate draws
users with replacement and weights every row by how often its user was drawn. A difference
between two scorers is resampled *paired* (the same users in both), so its interval says whether
one scorer beats the other on these users, not merely whether their separate intervals overlap.

>>> rng = np.random.default_rng(0)
>>> users = np.repeat(np.arange(200), 5); y = rng.integers(0, 2, 1000)
>>> good, noise = y + rng.normal(0, 0.5, 1000), rng.normal(0, 1, 1000)
>>> lo, hi = auc_interval(y, good, users, reps=100)
>>> 0.8 < lo < hi < 0.95
True
>>> lo, hi = delta_interval(y, good, noise, users, reps=100)
>>> lo > 0.2
True
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_auc_score

REPS = 200


def _weights(users: np.ndarray, reps: int, seed: int) -> list[np.ndarray]:
    """Per replicate, each row's weight: how often its user was drawn."""
    ids, index = np.unique(users, return_inverse=True)
    rng = np.random.default_rng(seed)
    draws = [
        np.bincount(rng.integers(0, len(ids), len(ids)), minlength=len(ids)) for _ in range(reps)
    ]
    return [d[index] for d in draws]


def _auc(y: np.ndarray, p: np.ndarray, w: np.ndarray) -> float:
    keep = w > 0
    if len(np.unique(y[keep])) < 2:
        return float("nan")
    return float(roc_auc_score(y[keep], p[keep], sample_weight=w[keep]))


def auc_interval(
    y: np.ndarray, p: np.ndarray, users: np.ndarray, reps: int = REPS, seed: int = 0
) -> tuple[float, float]:
    """2.5 % and 97.5 % quantiles of ROC-AUC over user-bootstrap replicates."""
    stats = [_auc(y, p, w) for w in _weights(users, reps, seed)]
    lo, hi = np.nanquantile(stats, [0.025, 0.975])
    return round(float(lo), 4), round(float(hi), 4)


def delta_interval(
    y: np.ndarray,
    p_a: np.ndarray,
    p_b: np.ndarray,
    users: np.ndarray,
    reps: int = REPS,
    seed: int = 0,
) -> tuple[float, float]:
    """95 % interval of ROC-AUC(a) - ROC-AUC(b), users resampled paired."""
    stats = [_auc(y, p_a, w) - _auc(y, p_b, w) for w in _weights(users, reps, seed)]
    lo, hi = np.nanquantile(stats, [0.025, 0.975])
    return round(float(lo), 4), round(float(hi), 4)
