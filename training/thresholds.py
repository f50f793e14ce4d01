"""The operating point: an alert threshold chosen on validation rows, by alert budget.

The default rule is a budget: at most ``budget`` of the active users of a day get an alert from a
head that day (a user-day is *active* when it has a scored row; it is *alerted* when any of its
scores reaches the threshold). The threshold is the lowest score that keeps the alerted share of
validation user-days within the budget. Ties are never split: a near-constant score whose mass
sits on one value gets a threshold above that value, so it alerts (almost) no one, never
everyone. An optional precision floor raises the threshold further, to the lowest one whose
validation precision reaches it. The expected precision, recall and alerted share at the
threshold (on validation) go into the manifest.

The churn head has a second way to alert: the worker's sweep re-scores a silent user at the
checkpoints of training/sweep_rule.py and sends at most one alert per silence.
:func:`sweep_operating_point` counts those alerts in the budget: a row (an event) alerts when its
own score or its score at any checkpoint the silence after it reaches reaches the threshold. A
sweep alert belongs to the user-day of the event that began the silence (the alert names that
event). The worker's arm and cooldown can only remove alerts, so the count is an upper bound.

>>> y = np.array([0, 0, 1, 1, 0, 1]); p = np.array([0.1, 0.2, 0.9, 0.8, 0.3, 0.7])
>>> groups = np.arange(6)  # six user-days, one row each
>>> t, rule = operating_point(y, p, groups, budget=0.34)
>>> t, rule["reached"], rule["expected_precision"], rule["expected_alert_share"]
(0.8, True, 1.0, 0.33333)
>>> operating_point(y, np.full(6, 0.5), groups, budget=0.34)[1]["expected_alert_share"]
0.0
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from training.evaluate import choose_threshold

DEFAULT_BUDGET = 0.05  # share of active users alerted per head per day


@dataclass(frozen=True)
class SweepRows:
    """Per row, the churn sweep over the silence after it, at K checkpoints."""

    p: np.ndarray  # (N, K) churn score at each checkpoint
    reach: np.ndarray  # (N, K) bool: still silent there (no event yet), so the worker scores it


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
        "expected_alerts": int(hit.sum()),  # validation rows alerted: what the precision rests on
        "expected_precision": round(float(y[hit].mean()), 5) if hit.any() else None,
        "expected_recall": round(float(y[hit].sum()) / positives, 5),
        "expected_alert_share": round(float(alerted), 5),
    }
    return threshold, rule


def sweep_operating_point(
    y: np.ndarray,
    p_event: np.ndarray,
    sweep: SweepRows,
    groups: np.ndarray,
    budget: float = DEFAULT_BUDGET,
    precision_floor: float | None = None,
) -> tuple[float, dict[str, Any]]:
    """The churn threshold by the budget over event *and* sweep alerts, with its record.

    >>> y, p = np.array([0, 1, 0, 1]), np.array([0.1, 0.2, 0.3, 0.4])
    >>> late = SweepRows(np.array([[0.2], [0.9], [0.8], [0.5]]), np.ones((4, 1), bool))
    >>> t, rule = sweep_operating_point(y, p, late, np.arange(4), budget=0.25)
    >>> t, rule["expected_precision"], rule["event_only"]["alert_share_with_sweep"]
    (0.9, 1.0, 0.75)
    """
    row_top = np.maximum(p_event, np.where(sweep.reach, sweep.p, -np.inf).max(axis=1))  # (N,)
    threshold = budget_threshold(row_top, groups, budget)  # a row alerts iff row_top >= it
    old = budget_threshold(p_event, groups, budget)  # the event-only rule's choice
    rule: dict[str, Any] = {
        "rule": f"alert budget: at most {budget:.0%} of active users alerted per day, counting "
        "the churn sweep's alerts (lowest threshold within it on validation rows)",
        "budget": budget,
    }
    if precision_floor is not None:  # judged on event rows only, as without the sweep
        floor, how = choose_threshold(y, p_event, precision_floor)
        rule["precision_floor"] = precision_floor
        if how["reached"] and floor > threshold:
            threshold = floor
            rule["rule"] += f", raised to reach validation precision {precision_floor}"
    rule |= {
        f"expected_{k}": v for k, v in sweep_alerts(y, p_event, sweep, groups, threshold).items()
    }
    rule["reached"] = rule.pop("expected_reached")
    old_share = sweep_alerts(y, p_event, sweep, groups, old)["alert_share"]
    rule["event_only"] = {"threshold": old, "alert_share_with_sweep": old_share}
    return threshold, rule


def sweep_alerts(
    y: np.ndarray, p_event: np.ndarray, sweep: SweepRows, groups: np.ndarray, threshold: float
) -> dict[str, Any]:
    """What event and sweep alerts together give at ``threshold``: precision, recall, share.

    An alert, at the event or in the silence after it, is right when the user's churn label at
    that event holds (no event within the horizon D); every checkpoint is under D, so a sweep
    alert is a forecast, judged like an event alert.
    """
    event = p_event >= threshold
    swept = ~event & (sweep.reach & (sweep.p >= threshold)).any(axis=1)  # one per silence
    hit = event | swept  # an event alert disarms the worker's sweep for that silence
    share = np.unique(groups[hit]).size / max(np.unique(groups).size, 1)
    return {
        "reached": bool(hit.any()),  # False: no row would alert at this threshold
        "alerts": int(hit.sum()),  # rows alerted: what the precision below rests on
        "precision": round(float(y[hit].mean()), 5) if hit.any() else None,
        "recall": round(float(y[hit].sum()) / max(int(y.sum()), 1), 5),
        "alert_share": round(float(share), 5),
        "sweep_alerts": round(float(swept.sum()) / max(int(hit.sum()), 1), 5),
    }
