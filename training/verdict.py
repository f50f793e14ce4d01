"""The honest verdict on a trained artifact: where the CNN+RNN trails a baseline, which
thresholds are fallbacks, and what they catch.

Pure: it reads the manifest's ``metrics[head][model]["roc_auc"]`` and ``threshold_rule[head]``
(and, when given, ``report/metrics.json`` for the test precision and recall at the threshold),
tolerates added fields, and returns sentences. ``training train`` and the demo print them, so a
model that loses to logistic regression says so instead of leaving it to the report.

>>> manifest = {
...     "metrics": {"churn": {"cnn_rnn": {"roc_auc": 0.49}, "logreg": {"roc_auc": 0.8}}},
...     "threshold_rule": {"churn": {"rule": "best F1", "reached": False, "threshold": 0.05}},
... }
>>> for line in verdict_lines(manifest, {"churn": {"cnn_rnn": {"precision": 0.1, "recall": 0.9}}}):
...     print(line)
churn: the CNN+RNN trails the best baseline: test ROC-AUC 0.490 vs 0.800 (logreg)
churn: threshold 0.050 is a fallback (best F1); on test it gives precision 0.100, recall 0.900
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MODEL = "cnn_rnn"
LOW_RECALL = 0.05  # a threshold that catches under 5 % of positives is worth a sentence


@dataclass(frozen=True)
class HeadVerdict:
    """One head's standing: the model's test ROC-AUC beside the best baseline's, its threshold."""

    head: str
    roc_auc: float | None
    baseline: str | None
    baseline_roc_auc: float | None
    threshold: float | None
    fallback: bool
    target_precision: float | None
    rule: str
    precision: float | None
    recall: float | None

    @property
    def trails(self) -> bool:
        """True when some baseline has a higher test ROC-AUC than the CNN+RNN."""
        if self.roc_auc is None or self.baseline_roc_auc is None:
            return False
        return self.baseline_roc_auc > self.roc_auc

    def auc_text(self) -> str:
        """``test ROC-AUC 0.412 (best baseline rule 0.557)``."""
        best = (
            f"best baseline {self.baseline} {_num(self.baseline_roc_auc)}" if self.baseline else ""
        )
        return f"test ROC-AUC {_num(self.roc_auc)}" + (f" ({best})" if best else "")


def head_verdicts(
    manifest: Mapping[str, Any], report_metrics: Mapping[str, Any] | None = None
) -> list[HeadVerdict]:
    """A :class:`HeadVerdict` per head of the manifest's metrics (report metrics optional)."""
    out = []
    rules = manifest.get("threshold_rule") or {}
    for head, models in (manifest.get("metrics") or {}).items():
        if not isinstance(models, Mapping) or MODEL not in models:
            continue
        baselines = {
            name: auc
            for name, m in models.items()
            if name != MODEL and isinstance(m, Mapping) and (auc := _float(m.get("roc_auc")))
        }
        best = max(baselines, key=lambda name: baselines[name]) if baselines else None
        found = rules.get(head)
        rule: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
        at_threshold = _at_threshold(rule, (report_metrics or {}).get(head, {}).get(MODEL, {}))
        out.append(
            HeadVerdict(
                head=head,
                roc_auc=_float(models[MODEL].get("roc_auc")),
                baseline=best,
                baseline_roc_auc=baselines.get(best) if best else None,
                threshold=_float(rule.get("threshold")),
                fallback=rule.get("reached") is False,
                target_precision=_float(rule.get("target_precision")),
                rule=str(rule.get("rule", "")),
                precision=at_threshold[0],
                recall=at_threshold[1],
            )
        )
    return out


def verdict_lines(
    manifest: Mapping[str, Any], report_metrics: Mapping[str, Any] | None = None
) -> list[str]:
    """Sentences for what a reader must know before trusting the alerts (empty when none)."""
    lines = []
    for v in head_verdicts(manifest, report_metrics):
        if v.trails:
            lines.append(
                f"{v.head}: the CNN+RNN trails the best baseline: test ROC-AUC "
                f"{_num(v.roc_auc)} vs {_num(v.baseline_roc_auc)} ({v.baseline})"
            )
        caught = _caught(v)
        if v.fallback:
            lines.append(
                f"{v.head}: threshold {_num(v.threshold)} is a fallback ({v.rule}"
                + (f"; target {_num(v.target_precision, 2)}" if v.target_precision else "")
                + ")"
                + (f"; on test it gives {caught}" if caught else "")
            )
        elif v.recall is not None and v.recall < LOW_RECALL:
            lines.append(
                f"{v.head}: threshold {_num(v.threshold)} catches few positives: on test it "
                f"gives {caught}"
            )
    return lines


def load(model_dir: str | Path) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The manifest and, when the artifact has it, ``report/metrics.json``."""
    directory = Path(model_dir)
    manifest = json.loads((directory / "manifest.json").read_text())
    report = directory / "report" / "metrics.json"
    return manifest, json.loads(report.read_text()) if report.is_file() else None


def _at_threshold(rule: Mapping[str, Any], test: Mapping[str, Any]) -> tuple[Any, Any]:
    # The rule's own test figures when the manifest carries them, else the report's test row.
    precision = next((rule[k] for k in ("test_precision", "precision") if k in rule), None)
    recall = next((rule[k] for k in ("test_recall", "recall") if k in rule), None)
    if precision is None and isinstance(test, Mapping):
        precision = test.get("precision")
    if recall is None and isinstance(test, Mapping):
        recall = test.get("recall")
    return _float(precision), _float(recall)


def _caught(v: HeadVerdict) -> str:
    if v.precision is None and v.recall is None:
        return ""
    return f"precision {_num(v.precision)}, recall {_num(v.recall)}"


def _float(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _num(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def main(argv: list[str] | None = None) -> int:
    """``python -m training.verdict [--heads] MODEL_DIR``: the verdict's sentences, one a line.

    ``--heads`` prints ``head<TAB>test ROC-AUC ... (best baseline ...)`` per head instead (the
    demo's summary puts it beside each head's alert counts).
    """
    args = sys.argv[1:] if argv is None else argv
    heads = "--heads" in args
    paths = [a for a in args if a != "--heads"]
    if len(paths) != 1:
        print("usage: python -m training.verdict [--heads] MODEL_DIR", file=sys.stderr)
        return 2
    manifest, report = load(paths[0])
    if heads:
        for v in head_verdicts(manifest, report):
            print(f"{v.head}\t{v.auc_text()}")
    else:
        for line in verdict_lines(manifest, report):
            print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
