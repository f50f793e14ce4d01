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
