"""The operating point: an alert threshold chosen on validation rows, by alert budget.

The default rule is a budget: at most ``budget`` of the active users of a day get an alert from a
head that day (a user-day is *active* when it has a scored row; it is *alerted* when any of its
scores reaches the threshold). The threshold is the lowest score that keeps the alerted share of
validation user-days within the budget. Ties are never split: a near-constant score whose mass
sits on one value gets a threshold above that value, so it alerts (almost) no one, never
everyone. An optional precision floor raises the threshold further, to the lowest one whose
validation precision reaches it. The expected precision, recall and alerted share at the
threshold (on validation) go into the manifest.

>>> y = np.array([0, 0, 1, 1, 0, 1]); p = np.array([0.1, 0.2, 0.9, 0.8, 0.3, 0.7])
>>> groups = np.arange(6)  # six user-days, one row each
>>> t, rule = operating_point(y, p, groups, budget=0.34)
>>> t, rule["reached"], rule["expected_precision"], rule["expected_alert_share"]
(0.8, True, 1.0, 0.33333)
>>> operating_point(y, np.full(6, 0.5), groups, budget=0.34)[1]["expected_alert_share"]
0.0
"""

from __future__ import annotations

from typing import Any

import numpy as np

from training.evaluate import choose_threshold

DEFAULT_BUDGET = 0.05  # share of active users alerted per head per day


def budget_threshold(p: np.ndarray, groups: np.ndarray, budget: float) -> float:
    """Lowest threshold with at most ``budget`` of the groups (user-days) holding a score >= it."""
    order = np.argsort(groups, kind="stable")
    g, s = groups[order], p[order]
    starts = np.flatnonzero(np.r_[True, g[1:] != g[:-1]])
    top = np.maximum.reduceat(s, starts)  # (G,) each user-day's highest score
    values = np.unique(top)  # ascending
    # Share of user-days alerted at threshold v = share with top >= v.
    share = 1.0 - np.searchsorted(np.sort(top), values, side="left") / len(top)
    ok = np.flatnonzero(share <= budget)
    if len(ok):
        return float(values[ok[0]])
    # Above every score: nobody alerts (a manifest threshold stays within [0, 1]).
    return min(1.0, float(np.nextafter(np.float32(values[-1]), np.float32(np.inf))))


def operating_point(
    y: np.ndarray,
    p: np.ndarray,
    groups: np.ndarray,
    budget: float = DEFAULT_BUDGET,
    precision_floor: float | None = None,
) -> tuple[float, dict[str, Any]]:
    """Threshold by the module's rule, and a record of it with its expected validation scores."""
    threshold = budget_threshold(p, groups, budget)
    rule: dict[str, Any] = {
        "rule": f"alert budget: at most {budget:.0%} of active users alerted per day "
        "(lowest threshold within it on validation rows)",
        "budget": budget,
    }
    if precision_floor is not None:
        floor, how = choose_threshold(y, p, precision_floor)
        rule["precision_floor"] = precision_floor
        if how["reached"] and floor > threshold:
            threshold = floor
            rule["rule"] += f", raised to reach validation precision {precision_floor}"
    hit = p >= threshold
    alerted = np.unique(groups[hit]).size / max(np.unique(groups).size, 1)
    positives = max(int(y.sum()), 1)
    rule |= {
        "reached": bool(hit.any()),  # False: no validation row would alert at this threshold
        "expected_precision": round(float(y[hit].mean()), 5) if hit.any() else None,
        "expected_recall": round(float(y[hit].sum()) / positives, 5),
        "expected_alert_share": round(float(alerted), 5),
    }
    return threshold, rule
