"""Metrics for one scorer on one split, and the validation-chosen threshold rule.

Threshold rule: the lowest threshold whose validation precision reaches the head's target (so
recall is as high as that precision allows); if no threshold reaches it, the threshold with the
best validation F1. Both the CNN+RNN and every baseline get their own threshold by the same rule.

>>> import numpy as np
>>> y = np.array([0, 0, 1, 1]); p = np.array([0.1, 0.6, 0.4, 0.9])
>>> threshold, rule = choose_threshold(y, p, target_precision=0.9)
>>> threshold, rule["reached"]
(0.9, True)
>>> round(expected_calibration_error(y, p, bins=2), 3)
0.25
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.metrics import (
    average_precision_score,
    brier_score_loss,
    f1_score,
    precision_recall_curve,
    precision_score,
    recall_score,
    roc_auc_score,
)

DEFAULT_TARGET_PRECISION = {"propensity": 0.5, "churn": 0.7}


def expected_calibration_error(y: np.ndarray, p: np.ndarray, bins: int = 10) -> float:
    """ECE: |mean score - positive rate| per equal-width score bin, weighted by the bin's share."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(p, edges[1:-1]), 0, bins - 1)  # (N,) bin of each score
    ece = 0.0
    for b in range(bins):
        sel = which == b
        if sel.any():
            ece += sel.mean() * abs(float(p[sel].mean()) - float(y[sel].mean()))
    return float(ece)


def choose_threshold(
    y: np.ndarray, p: np.ndarray, target_precision: float
) -> tuple[float, dict[str, Any]]:
    """Threshold by the rule in this module's docstring, and a record of how it was chosen."""
    if len(np.unique(y)) < 2:
        return 0.5, {"rule": "fallback 0.5: validation has one class only", "reached": False}
    precision, recall, thresholds = precision_recall_curve(y, p)  # thresholds ascending
    ok = np.flatnonzero(precision[:-1] >= target_precision)
    if len(ok):
        rule = {
            "rule": "lowest threshold with validation precision >= target",
            "target_precision": target_precision,
            "reached": True,
        }
        return float(thresholds[ok[0]]), rule
    f1 = 2 * precision[:-1] * recall[:-1] / np.maximum(precision[:-1] + recall[:-1], 1e-12)
    best = int(np.argmax(f1))
    rule = {
        "rule": "target precision not reached on validation: threshold of best validation F1",
        "target_precision": target_precision,
        "reached": False,
    }
    return float(thresholds[best]), rule


def metrics(y: np.ndarray, p: np.ndarray, threshold: float, split: str) -> dict[str, Any]:
    """ROC-AUC, PR-AUC, Brier, ECE and precision/recall/F1 at ``threshold``."""
    y = y.astype(int)
    if len(y) == 0:  # e.g. CDNOW: every customer is seen in training, so no unseen-user rows
        empty = ("positive_rate", "roc_auc", "pr_auc", "brier", "ece", "precision", "recall", "f1")
        return {"split": split, "rows": 0, "threshold": _r(threshold), **dict.fromkeys(empty)}
    both = len(np.unique(y)) == 2
    hit = (p >= threshold).astype(int)
    return {
        "split": split,
        "rows": len(y),
        "positive_rate": round(float(y.mean()), 5) if len(y) else None,
        "roc_auc": _r(roc_auc_score(y, p)) if both else None,
        "pr_auc": _r(average_precision_score(y, p)) if both else None,
        "brier": _r(brier_score_loss(y, p)) if len(y) else None,
        "ece": _r(expected_calibration_error(y, p)) if len(y) else None,
        "threshold": _r(threshold),
        "precision": _r(precision_score(y, hit, zero_division=0)),
        "recall": _r(recall_score(y, hit, zero_division=0)),
        "f1": _r(f1_score(y, hit, zero_division=0)),
    }


def _r(value: float) -> float:
    return round(float(value), 5)
