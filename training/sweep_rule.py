"""Which elapsed times the churn sweep scores: one rule for the worker and for training.

A silent user is scored at fixed *checkpoints* of its silence: the idle time, doubling while it
stays under the churn horizon D. At each sweep the worker scores a silence at the largest
checkpoint it has reached (never at the raw elapsed time), and it sends at most one sweep alert per
silence. Training uses the same checkpoints to count the sweep's alerts when it sets the churn
threshold (training/churn_sweep.py), so the alert budget covers what the worker sends, live or on a
replay, whatever the sweep's cadence. Every checkpoint is under D, so a sweep alert is still a
forecast ("this silence will reach D") and not a report of a churn already complete; past the last
checkpoint the score stays at that checkpoint's.

Pure numpy: the worker's core imports it (training never imports the worker).

>>> checkpoints(900, 7200).tolist()
[900.0, 1800.0, 3600.0]
>>> checkpoints(900, 600).tolist()  # a horizon within the idle time: the idle time alone
[900.0]
>>> scored_elapsed(np.array([100.0, 900.0, 2000.0, 99999.0]), checkpoints(900, 7200)).tolist()
[nan, 900.0, 1800.0, 3600.0]
"""

from __future__ import annotations

import numpy as np

SWEEP_IDLE_SECONDS = 900.0  # the worker's CHURN_IDLE_SECONDS default; training assumes it


def checkpoints(idle_s: float, horizon_s: float) -> np.ndarray:
    """Elapsed seconds ``(K,)`` ascending at which a silence is scored: idle * 2^k while < D."""
    if idle_s <= 0:
        raise ValueError(f"idle time {idle_s} s: must be > 0")
    points = [float(idle_s)]
    while points[-1] * 2.0 < horizon_s:
        points.append(points[-1] * 2.0)
    return np.array(points, np.float64)


def scored_elapsed(elapsed_s: np.ndarray, points: np.ndarray) -> np.ndarray:
    """The checkpoint each silence is scored at ``(B,)``: the largest reached; NaN if none yet."""
    i = np.searchsorted(points, elapsed_s, side="right") - 1  # (B,) last point <= elapsed
    return np.where(i >= 0, points[np.maximum(i, 0)], np.nan)
