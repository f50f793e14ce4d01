"""``make demo`` end to end in a small configuration: broker, simulate, train, worker, replay,
live alerts, summary, and everything it started stopped again.

It runs the real script (deploy/local/demo.sh) with tiny knobs; about a minute on two cores.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]


def _metric(out: str, name: str) -> float:
    found = re.findall(rf"^{name}(?:\{{[^}}]*\}})? ([0-9.e+]+)$", out, flags=re.M)
    assert found, f"{name} missing from the demo's summary"
    return sum(float(v) for v in found)


def test_demo_runs_the_whole_loop_and_stops_everything(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "DEMO_VAR": str(tmp_path / "demo"),
        "DEMO_USERS": "100",
        "DEMO_DAYS": "8",
        "DEMO_SECONDS": "10",
        "DEMO_PRESET": "tiny",
    }
    env = {k: v for k, v in env.items() if not k.startswith("CLICKSCORE_")}
    done = subprocess.run(
        ["deploy/local/demo.sh"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-4000:]
    replayed = re.search(r"replay: read (\d+), produced (\d+), delivered (\d+), failed 0", out)
    assert replayed, out[-4000:]
    n = int(replayed.group(1))
    assert n > 0 and replayed.group(2) == replayed.group(3) == str(n)
    # Every replayed event was consumed, and scored or dead-lettered: nothing lost on the way.
    assert _metric(out, "clickscore_events_consumed_total") == n
    scored = _metric(out, "clickscore_events_scored_total")
    dead = _metric(out, "clickscore_events_dead_lettered_total") if "dead_lettered" in out else 0
    assert scored + dead == n
    assert "metrics: http://127.0.0.1:" in out
    # Stopped: the worker's pid is gone and the broker reports itself down.
    pid = int(re.search(r"worker ready \(pid (\d+)", out).group(1))  # type: ignore[union-attr]
    assert not Path(f"/proc/{pid}").exists()
    status = subprocess.run(
        ["deploy/local/kafka.sh", "status", "--dir", str(tmp_path / "demo" / "kafka")],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert status.returncode == 1, status.stdout + status.stderr
