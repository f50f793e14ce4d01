"""The verdict on an artifact: trailing a baseline and fallback thresholds are said plainly."""

from __future__ import annotations

from typing import Any

from training.verdict import head_verdicts, verdict_lines


def _manifest(**rules: dict[str, Any]) -> dict[str, Any]:
    return {
        "metrics": {
            "propensity": {
                "cnn_rnn": {"roc_auc": 0.81, "pr_auc": 0.4, "split": "test"},
                "logreg": {"roc_auc": 0.75},
                "rule": {"roc_auc": 0.6},
                "extra_field": "ignored",
            },
            "churn": {
                "cnn_rnn": {"roc_auc": 0.488},
                "logreg": {"roc_auc": 0.80},
                "hgb": {"roc_auc": 0.79},
            },
        },
        "threshold_rule": {
            "propensity": {"rule": "precision >= target", "reached": True, "threshold": 0.6},
            "churn": {
                "rule": "target precision not reached: best validation F1",
                "target_precision": 0.7,
                "reached": False,
                "threshold": 0.0471,
            },
            "calibration": {"propensity": [1.0, 0.0]},
            **rules,
        },
    }


def test_trailing_head_and_fallback_threshold_are_said() -> None:
    report = {"churn": {"cnn_rnn": {"precision": 0.12, "recall": 0.64}}}
    assert verdict_lines(_manifest(), report) == [
        "churn: the CNN+RNN trails the best baseline: test ROC-AUC 0.488 vs 0.800 (logreg)",
        "churn: threshold 0.047 is a fallback (target precision not reached: best validation F1; "
        "target 0.70); on test it gives precision 0.120, recall 0.640",
    ]


def test_a_leading_model_with_a_reached_target_says_nothing() -> None:
    manifest = _manifest(churn={"rule": "precision >= target", "reached": True, "threshold": 0.5})
    manifest["metrics"]["churn"]["cnn_rnn"]["roc_auc"] = 0.9
    assert verdict_lines(manifest) == []


def test_the_rules_own_figures_win_and_low_recall_is_said() -> None:
    rule = {"rule": "precision >= target", "reached": True, "threshold": 0.9, "test_recall": 0.001}
    manifest = _manifest(propensity={**rule, "test_precision": 0.5})
    report = {"propensity": {"cnn_rnn": {"precision": 0.0, "recall": 0.3}}}
    lines = verdict_lines(manifest, report)
    assert lines[0] == (
        "propensity: threshold 0.900 catches few positives: on test it gives "
        "precision 0.500, recall 0.001"
    )


def test_summary_puts_the_model_beside_the_best_baseline() -> None:
    by_head = {v.head: v for v in head_verdicts(_manifest())}
    assert by_head["propensity"].auc_text() == "test ROC-AUC 0.810 (best baseline logreg 0.750)"
    assert not by_head["propensity"].trails and by_head["churn"].trails
    assert by_head["churn"].fallback and not by_head["propensity"].fallback


def test_missing_pieces_are_tolerated() -> None:
    assert verdict_lines({}) == []
    manifest = {"metrics": {"churn": {"cnn_rnn": {"roc_auc": 0.7}}}}
    assert head_verdicts(manifest)[0].auc_text() == "test ROC-AUC 0.700"
    assert verdict_lines(manifest) == []
