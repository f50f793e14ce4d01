"""``python -m training.suite``: the evaluation tables of docs/evaluation.md, reproduced.

Each case trains the CNN+RNN and its baselines with ``training.pipeline.run_training`` (the
``train`` command's path) on one data set and collects test ROC-AUC with 95 % user-bootstrap
intervals; ablation cases retrain the network with parts switched off. Artifacts and reports go
under ``--out``; the tables are printed and written to ``<out>/tables.md``. Real data is read
from ``../shared/data`` beside the repository; simulated data is generated into ``--out``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
# An ablation overrides TrainConfig or ModelConfig fields (training.pipeline.train_config).
ABLATIONS: dict[str, dict[str, Any]] = {
    "full": {},
    "linear start only (no epoch trained)": {"epochs": 0},
    "no linear start": {"linear_start": False},
    "no linear start, raw inputs (the previous model)": {
        "linear_start": False, "standardise": False, "max_pos_weight": 10.0,
    },
}  # fmt: skip


@dataclass(frozen=True)
class Case:
    """One data set and how to train on it."""

    name: str
    events: str  # a path, or "sim:USERS:DAYS:SEED"
    fmt: str = "generic"
    preset: str = "default"
    ablations: tuple[str, ...] = ("full",)
    extra: dict[str, Any] = field(default_factory=dict)


CASES = (
    Case("taobao-9d", str(DATA / "taobao-userbehavior" / "UserBehavior_9days_500users.csv"),
         "taobao", ablations=tuple(ABLATIONS)),
    Case("cdnow", str(DATA / "cdnow" / "CDNOW_master.txt"), "cdnow"),
    Case("simulator", "sim:2000:21:7",
         ablations=("full", "linear start only (no epoch trained)",
                    "no linear start, raw inputs (the previous model)")),
    Case("quick-demo", "sim:600:7:7", preset="quick"),
)  # fmt: skip


def _events(case: Case, out: Path) -> list[Any]:
    from training.datasets import read_events, write_events
    from training.simulate import SimConfig, simulate

    if not case.events.startswith("sim:"):
        return read_events(case.events, case.fmt).events
    users, days, seed = (int(v) for v in case.events.split(":")[1:])
    path = out / f"sim-{users}x{days}-seed{seed}.csv.gz"
    if not path.exists():
        write_events(simulate(SimConfig(users=users, days=days, seed=seed)), path)
    return read_events(path, "generic").events


def run_case(case: Case, out: Path, progress: bool) -> list[dict[str, Any]]:
    """Train every ablation of ``case``; one result row per (ablation, head, scorer)."""
    import numpy as np

    from training.labels import default_horizons, robust_range
    from training.pipeline import run_training

    events = _events(case, out)
    start, end = robust_range(np.fromiter((e.ts_ms for e in events), np.int64))
    h, d = default_horizons(case.fmt, (end - start) / 1000.0)
    rows = []
    for ablation in case.ablations:
        began = time.monotonic()
        where = out / case.name / _slug(ablation)
        manifest = run_training(
            events, where, propensity_seconds=h,
            churn_seconds=d, preset=case.preset, source=case.events, fmt=case.fmt,
            progress=progress, overrides=ABLATIONS[ablation],
        )  # fmt: skip
        seconds = time.monotonic() - began
        metrics = json.loads((where / "report" / "metrics.json").read_text())
        for head, scorers in metrics.items():
            for scorer, m in scorers.items():
                if ablation != "full" and scorer != "cnn_rnn":
                    continue  # baselines do not change with the network's ablations
                rows.append({"case": case.name, "ablation": ablation, "head": head,
                             "scorer": scorer, "seconds": round(seconds),
                             "test": _pick(m), "unseen": _pick(m["test_unseen_users"]),
                             "delta": m.get("delta_ci", {}),
                             "operating_point": m.get("operating_point"),
                             "version": manifest["model_version"]})  # fmt: skip
    return rows


def _slug(ablation: str) -> str:
    """'no aggregates' -> 'no-aggregates', 'no linear start, raw inputs (...)' ->
    'no-linear-start-raw-inputs'."""
    return ablation.split(" (")[0].replace(",", "").replace(" ", "-")


def _pick(m: dict[str, Any]) -> dict[str, Any]:
    keys = ("rows", "roc_auc", "roc_auc_ci", "pr_auc", "ece", "precision", "recall")
    return {k: m.get(k) for k in keys}


def _auc(m: dict[str, Any]) -> str:
    if m.get("roc_auc") is None:
        return "–"
    lo, hi = m["roc_auc_ci"]
    return f"{m['roc_auc']:.3f} [{lo:.3f}, {hi:.3f}]"


def tables(rows: list[dict[str, Any]]) -> str:
    """Markdown: one table per case (ROC-AUC with 95 % CI on both test splits, ECE)."""
    lines: list[str] = []
    for case in dict.fromkeys(r["case"] for r in rows):
        mine = [r for r in rows if r["case"] == case]
        lines += [f"### {case} ({mine[0]['seconds']} s per run)", "",
                  "| head | model | test rows | test ROC-AUC [95 % CI] | ECE | "
                  "unseen-user rows | unseen-user ROC-AUC [95 % CI] |",
                  "|---|---|---:|---|---:|---:|---|"]  # fmt: skip
        for r in mine:
            name = r["scorer"] if r["ablation"] == "full" else f"cnn_rnn, {r['ablation']}"
            ece = "–" if r["test"]["ece"] is None else f"{r['test']['ece']:.3f}"
            lines.append(f"| {r['head']} | {name} | {r['test']['rows']} | {_auc(r['test'])} | "
                         f"{ece} | {r['unseen']['rows']} | {_auc(r['unseen'])} |")  # fmt: skip
        lines.append("")
        for r in mine:
            if r["scorer"] == "cnn_rnn" and r["delta"]:
                for split, d in r["delta"].items():
                    text = ", ".join(f"{b} [{lo:+.3f}, {hi:+.3f}]" for b, (lo, hi) in d.items())
                    lines.append(f"- {r['head']}, {r['ablation']}, {split}: cnn_rnn minus {text}")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the chosen cases (all by default) and write ``tables.md`` and ``rows.json``."""
    parser = argparse.ArgumentParser(prog="python -m training.suite", description=__doc__)
    parser.add_argument("--out", type=Path, default=ROOT / "var" / "eval")
    parser.add_argument("--cases", nargs="+", choices=[c.name for c in CASES],
                        default=[c.name for c in CASES])  # fmt: skip
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    for case in CASES:
        if case.name in args.cases:
            began = time.monotonic()
            rows += run_case(case, args.out, not args.no_progress)
            print(f"{case.name}: {time.monotonic() - began:.0f} s", file=sys.stderr)
            (args.out / "rows.json").write_text(json.dumps(rows, indent=1) + "\n")
    text = tables(rows)
    (args.out / "tables.md").write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
