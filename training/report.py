"""The evaluation report in ``<artifact>/report/``: metrics.json, report.md and ROC/PR/calibration
plots, one figure per head with every scorer on the test rows."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only: no display on servers and CI

import matplotlib.pyplot as plt
import numpy as np
from sklearn.calibration import calibration_curve
from sklearn.metrics import precision_recall_curve, roc_curve

HEADS = ("propensity", "churn")
Curves = dict[str, dict[str, tuple[np.ndarray, np.ndarray]]]  # head -> scorer -> (y, p) on test


def plot_curves(curves: Curves, out_dir: Path) -> list[str]:
    """ROC, PR and calibration plots per head; returns the file names written."""
    written = []
    for head, scorers in curves.items():
        fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
        for name, (y, p) in scorers.items():
            if len(np.unique(y)) < 2:
                continue
            fpr, tpr, _ = roc_curve(y, p)
            axes[0].plot(fpr, tpr, label=name)
            prec, rec, _ = precision_recall_curve(y, p)
            axes[1].plot(rec, prec, label=name)
            frac, mean = calibration_curve(y, p, n_bins=10, strategy="quantile")
            axes[2].plot(mean, frac, marker="o", label=name)
        axes[0].plot([0, 1], [0, 1], "k:", lw=1)
        axes[2].plot([0, 1], [0, 1], "k:", lw=1)
        for ax, (title, xl, yl) in zip(
            axes,
            [
                ("ROC", "false positive rate", "true positive rate"),
                ("precision-recall", "recall", "precision"),
                ("calibration (test, quantile bins)", "mean predicted", "observed rate"),
            ],
            strict=True,
        ):
            ax.set(title=f"{head}: {title}", xlabel=xl, ylabel=yl)
            ax.legend(fontsize=8)
        fig.tight_layout()
        name = f"{head}_curves.png"
        fig.savefig(out_dir / name, dpi=90)
        plt.close(fig)
        written.append(name)
    return written


def _fmt(value: Any) -> str:
    return "–" if value is None else f"{value:.3f}" if isinstance(value, float) else str(value)


def _sweep_line(rule: dict[str, Any]) -> str:
    """The churn rule's sweep figures: what the event-only rule would have sent, and test."""
    old, test = rule["event_only"], rule["test_with_sweep"]
    return (
        f"Counting the churn sweep: {_fmt(rule.get('expected_alerts'))} validation alerts, "
        f"{_fmt(rule.get('expected_sweep_alerts'))} of them from the sweep; the event-only "
        f"rule's threshold {_fmt(old['threshold'])} would alert "
        f"{_fmt(old['alert_share_with_sweep'])} of user-days. On test, event and sweep alerts: "
        f"{_fmt(test.get('alerts'))} alerts, precision {_fmt(test['precision'])}, recall "
        f"{_fmt(test['recall'])}, users alerted per day {_fmt(test['alert_share'])}."
    )


def _ci(m: dict[str, Any]) -> str:
    ci = m.get("roc_auc_ci")
    return "–" if not ci else f"[{ci[0]:.3f}, {ci[1]:.3f}]"


def _table(head_metrics: dict[str, dict[str, Any]], key: str | None) -> list[str]:
    cols = ("pr_auc", "brier", "ece", "threshold", "precision", "recall", "f1")
    lines = [
        "| scorer | rows | positive rate | roc_auc | 95 % CI | " + " | ".join(cols) + " |",
        "|---" * (len(cols) + 5) + "|",
    ]
    for name, entry in head_metrics.items():
        m = entry if key is None else entry.get(key) or {}
        if not m:
            continue
        lines.append(
            f"| {name} | {m.get('rows')} | {_fmt(m.get('positive_rate'))} | "
            f"{_fmt(m.get('roc_auc'))} | {_ci(m)} | "
            + " | ".join(_fmt(m.get(c)) for c in cols)
            + " |"
        )
    return lines


def write_report(
    out_dir: Path,
    metrics: dict[str, dict[str, dict[str, Any]]],
    curves: Curves,
    summary: dict[str, Any],
    rules: dict[str, dict[str, Any]],
    history: list[dict[str, Any]],
    notes: list[str],
) -> list[str]:
    """Write metrics.json, report.md and plots into ``out_dir``; returns the file names."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n", "utf-8")
    plots = plot_curves(curves, out_dir)
    md = ["# clickscore model report", ""]
    md += [f"Source: `{summary.get('source')}` ({summary.get('format')})", ""]
    md += [
        f"Data: {summary['events']} events, {summary['users']} users, "
        f"{summary['span_days']} days; horizons H = {summary['horizons_seconds'][0]:g} s "
        f"(propensity), D = {summary['horizons_seconds'][1]:g} s (churn).",
        "",
        "| split | propensity rows | propensity rate | churn rows | churn rate |",
        "|---|---|---|---|---|",
    ]
    for split in ("train", "validation", "test"):
        s = summary[split]
        md.append(
            f"| {split} | {s['prop_rows']} | {_fmt(s['prop_rate'])} | "
            f"{s['churn_rows']} | {_fmt(s['churn_rate'])} |"
        )
    for head in HEADS:
        md += ["", f"## {head}: test rows", "", *_table(metrics[head], None)]
        md += ["", f"### {head}: test rows of users never seen in training", ""]
        md += _table(metrics[head], "test_unseen_users")
        rule = rules[head]
        md += [
            "",
            f"Operating point ({head}): {rule['rule']}; threshold {rule.get('threshold', 0):.4f}"
            f", expected on validation: precision {_fmt(rule.get('expected_precision'))}, "
            f"recall {_fmt(rule.get('expected_recall'))}, users alerted per day "
            f"{_fmt(rule.get('expected_alert_share'))}.",
        ]
        if isinstance(rule.get("event_only"), dict) and isinstance(
            rule.get("test_with_sweep"), dict
        ):
            md.append(_sweep_line(rule))
        for split, deltas in metrics[head]["cnn_rnn"].get("delta_ci", {}).items():
            md.append(
                f"- ROC-AUC of cnn_rnn minus baseline on {split} (95 % CI, users paired): "
                + ", ".join(f"{b} [{lo:+.3f}, {hi:+.3f}]" for b, (lo, hi) in deltas.items())
            )
    md += ["", "## Training", ""]
    md += [f"- epoch {h['epoch']}: train loss {h['train_loss']}, validation loss {h['val_loss']}"
           if "train_loss" in h else
           f"- start (linear, before training): validation loss {h['val_loss']}"
           for h in history]  # fmt: skip
    md += ["", "## Notes", ""] + [f"- {n}" for n in notes]
    md += ["", "Plots: " + ", ".join(f"`{p}`" for p in plots), ""]
    (out_dir / "report.md").write_text("\n".join(md), "utf-8")
    return ["metrics.json", "report.md", *plots]
