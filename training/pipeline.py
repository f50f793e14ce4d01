"""The whole ``train`` path: events -> labels -> CNN+RNN and baselines -> evaluation -> artifact."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from schemas.event import Event
from training import baselines as bl
from training.evaluate import DEFAULT_TARGET_PRECISION, choose_threshold, metrics
from training.export import file_digest, write_artifact
from training.labels import TEST, TRAIN, VALID, LabelledData, build_labels
from training.report import HEADS, write_report
from training.train import PRESETS, fit, fold_calibration, platt, predict_logits

_KEY = {"propensity": "prop", "churn": "churn"}


def _flat(data: LabelledData, name: str) -> np.ndarray:
    return np.concatenate([getattr(u, name) for u in data.users])


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def run_training(
    events: Sequence[Event],
    out_dir: str | Path,
    *,
    propensity_seconds: float,
    churn_seconds: float,
    preset: str = "default",
    seed: int = 0,
    max_users: int | None = None,
    source: str = "",
    fmt: str = "generic",
    progress: bool = True,
) -> dict[str, Any]:
    """Train, evaluate against baselines, export; returns the manifest written to ``out_dir``."""
    started = time.monotonic()
    cfg = dataclasses.replace(PRESETS[preset], seed=seed)
    if max_users is not None:
        cfg = dataclasses.replace(cfg, max_users=max_users)
    data = build_labels(
        events, propensity_seconds, churn_seconds, max_users=cfg.max_users, seed=seed
    )
    model, history = fit(data, cfg, progress=progress)

    split = _flat(data, "split")
    held = np.concatenate([np.full(len(u.ts), u.held_out) for u in data.users])
    logits = predict_logits(model, data.users)
    feats = bl.all_features(data.users)  # (N, K) past-only features for the baselines
    metrics_out: dict[str, dict[str, dict[str, Any]]] = {}
    curves: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]] = {}
    rules: dict[str, dict[str, Any]] = {}
    calib: dict[str, tuple[float, float]] = {}
    for hi, head in enumerate(HEADS):
        y, m = _flat(data, f"y_{_KEY[head]}"), _flat(data, f"m_{_KEY[head]}")
        rows = {s: m & (split == s) for s in (TRAIN, VALID, TEST)}
        logit = np.concatenate([lg[hi] for lg in logits])
        calib[head] = platt(logit[rows[VALID]], y[rows[VALID]])
        a, b = calib[head]
        scorers: dict[str, Any] = {"cnn_rnn": lambda idx, z=a * logit + b: _sigmoid(z[idx])}
        learned = bl.fit_learned(
            feats[rows[TRAIN]],
            y[rows[TRAIN]],
            feats[rows[VALID]],
            y[rows[VALID]],
            seed,
            cfg.baseline_grid,
        )
        rule_fn, rule_info = bl.fit_rule(feats[rows[VALID]], y[rows[VALID]], head)
        params = {name: info for name, (_, info) in learned.items()} | {"rule": rule_info}
        for name, (fn, _) in [*learned.items(), ("rule", (rule_fn, rule_info))]:
            scorers[name] = lambda idx, fn=fn: fn(feats[idx])
        metrics_out[head], curves[head] = {}, {}
        target = DEFAULT_TARGET_PRECISION[head]
        for name, score in scorers.items():
            p_val = score(rows[VALID])
            threshold, rule = choose_threshold(y[rows[VALID]], p_val, target)
            if name == "cnn_rnn":
                rules[head] = {**rule, "threshold": threshold}
            test_rows, unseen_rows = rows[TEST] & ~held, rows[TEST] & held
            p_test = score(test_rows)
            entry = metrics(y[test_rows], p_test, threshold, "test")
            # No held-out users at all (a tiny data set, or holdout_users = 0).
            p_unseen = score(unseen_rows) if unseen_rows.any() else np.empty(0)
            entry["test_unseen_users"] = metrics(
                y[unseen_rows], p_unseen, threshold, "test_unseen_users"
            )
            entry["validation"] = metrics(y[rows[VALID]], p_val, threshold, "validation")
            if name in params:
                entry["tuning"] = params[name]
            metrics_out[head][name] = entry
            curves[head][name] = (y[test_rows], p_test)

    fold_calibration(model, calib["propensity"], calib["churn"])
    out = Path(out_dir)
    summary: dict[str, Any] = {
        **data.summary(),
        "source": source,
        "format": fmt,
        "preset": preset,
        "seed": seed,
    }
    notes = [
        f"preset `{preset}`: {len(data.users)} of {data.users_in_data} users used "
        f"(seeded subsample when the preset caps users); elapsed-time augmentation for churn.",
        f"{data.out_of_range} events outside the robust time range (1 %..99 % time quantiles "
        "widened by 10 %) dropped. Split by user: "
        f"{summary['held_out_users']} held-out users, every labelled event of theirs a test "
        "row (`test_unseen_users`); the other users split by time at the 70 %/85 % event-count "
        "quantiles of labellable events (`test` = their future). Rows whose label window passes "
        "the data end are censored; late training rows' label windows may reach into later "
        "windows (outcomes only, never inputs).",
        "CNN+RNN probabilities are Platt-scaled on validation, folded into the exported heads; "
        "rule baselines are mapped to probabilities by isotonic regression on validation.",
        f"Baselines fit on at most {bl.MAX_FIT_ROWS} training rows (seeded sample).",
        f"Wall time to evaluation: {time.monotonic() - started:.1f} s.",
    ]
    report_files = write_report(out / "report", metrics_out, curves, summary, rules, history, notes)
    headline = {
        head: {
            name: {k: entry[k] for k in ("roc_auc", "pr_auc", "brier", "split")}
            for name, entry in metrics_out[head].items()
        }
        for head in HEADS
    }
    manifest = write_artifact(
        model,
        out,
        propensity_seconds=propensity_seconds,
        churn_seconds=churn_seconds,
        thresholds={head: rules[head]["threshold"] for head in HEADS},
        threshold_rule={**rules, "calibration": {h: list(calib[h]) for h in HEADS}},
        metrics=headline,
        training_data={**summary, "history": history, "config": _config(cfg)},
        report_files={f"report/{f}": file_digest(out / "report" / f) for f in report_files},
    )
    return manifest


def _config(cfg: Any) -> dict[str, Any]:
    return dataclasses.asdict(cfg)
