"""Invariant 3's comparison: scores streamed by the worker against ``python -m training score``."""

from __future__ import annotations

import csv
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tests.e2e.worker_process import ROOT


def offline_scores(
    model: Path, events: Path, out: Path, fmt: str = "generic"
) -> dict[str, dict[str, str]]:
    """``python -m training score`` on ``events``: its rows keyed by event id."""
    cmd = [sys.executable, "-m", "training", "score", "--model", str(model)]
    cmd += ["--events", str(events), "--format", fmt, "--out", str(out)]
    subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, timeout=600)
    with out.open() as f:
        return {row["event_id"]: row for row in csv.DictReader(f)}


def worst_difference(
    offline: Mapping[str, Mapping[str, str]], streamed: Mapping[str, Mapping[str, Any]]
) -> float:
    """Largest |streamed - offline| over both scores; user and time must match exactly."""
    worst = 0.0
    for event_id, row in offline.items():
        s = streamed[event_id]
        assert s["user_id"] == row["user_id"] and s["timestamp"] == int(row["timestamp"])
        worst = max(worst, abs(s["p_purchase"] - float(row["p_purchase"])))
        worst = max(worst, abs(s["p_churn"] - float(row["p_churn"])))
    return worst
