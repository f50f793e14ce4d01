"""The threshold rule (target reached / fallback) and metrics on edge cases."""

from __future__ import annotations

import numpy as np

from training.evaluate import choose_threshold, expected_calibration_error, metrics


def test_lowest_threshold_reaching_target_precision() -> None:
    y = np.array([0, 1, 0, 1, 1, 1])
    p = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6])
    threshold, rule = choose_threshold(y, p, target_precision=0.75)
    assert rule["reached"] and threshold == 0.2  # at >= 0.2 precision is 4/5
    assert metrics(y, p, threshold, "v")["precision"] == 0.8


def test_unreachable_target_falls_back_to_best_f1() -> None:
    y = np.array([0, 1, 1, 0])  # the top score is a negative: precision never reaches 0.99
    p = np.array([0.9, 0.8, 0.2, 0.1])
    threshold, rule = choose_threshold(y, p, target_precision=0.99)
    assert rule["reached"] is False and "F1" in rule["rule"]
    assert threshold == 0.2  # the top three: P = 2/3, R = 1, F1 = 0.8, the best here


def test_metrics_on_no_rows_and_one_class() -> None:
    empty = metrics(np.array([]), np.array([]), 0.5, "test_unseen_users")
    assert empty["rows"] == 0 and empty["roc_auc"] is None
    one_class = metrics(np.zeros(5), np.full(5, 0.2), 0.5, "test")
    assert one_class["roc_auc"] is None and one_class["brier"] == 0.04


def test_ece_of_a_calibrated_scorer_is_small() -> None:
    rng = np.random.default_rng(0)
    p = rng.uniform(size=20_000)
    y = (rng.uniform(size=p.size) < p).astype(int)
    assert expected_calibration_error(y, p) < 0.02
    assert expected_calibration_error(y, np.clip(p + 0.3, 0, 1)) > 0.2


def test_alert_budget_is_kept_on_user_days_and_a_constant_score_alerts_no_one() -> None:
    from training.thresholds import budget_threshold, operating_point

    rng = np.random.default_rng(3)
    groups = rng.integers(0, 500, 20_000)  # 500 user-days, about 40 rows each
    p = rng.uniform(size=groups.size)
    y = (rng.uniform(size=p.size) < p).astype(int)
    t = budget_threshold(p, groups, 0.05)
    alerted = np.unique(groups[p >= t]).size
    assert 20 <= alerted <= 25  # at most 5 % of 500, and the threshold is not needlessly high
    constant = np.full(p.size, 0.3, np.float32)
    t, rule = operating_point(y, constant, groups, budget=0.05)
    assert t > 0.3 and rule["expected_alert_share"] == 0.0 and rule["reached"] is False
    nearly = constant.copy()
    nearly[:3] = 0.31  # three rows a hair above the rest: only their user-days may alert
    t, rule = operating_point(y, nearly, groups, budget=0.05)
    assert rule["expected_alert_share"] <= 0.05 and isinstance(rule["rule"], str)


def test_precision_floor_raises_the_budget_threshold() -> None:
    from training.thresholds import operating_point

    y = np.array([0, 1, 0, 1, 1, 1])
    p = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6])
    t, rule = operating_point(y, p, np.arange(6), budget=1.0, precision_floor=1.0)
    assert t == 0.4 and rule["expected_precision"] == 1.0 and rule["expected_recall"] == 0.75
