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
        # tiny trains in seconds; DEMO_TEST_PRESET=quick runs the real demo's model (minutes),
        # whose churn head rises with silence: the case the sweep-aware threshold is for.
        "DEMO_PRESET": os.environ.get("DEMO_TEST_PRESET", "tiny"),
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
    # Every replayed event was consumed, and scored or dead-lettered: nothing lost on the way. The
    # events topic also carries the sweep's control records (outcomes decided by its clock).
    control = _metric(out, "clickscore_control_records_total") if "control_records" in out else 0
    assert _metric(out, "clickscore_events_consumed_total") == n + control
    scored = _metric(out, "clickscore_events_scored_total")
    dead = _metric(out, "clickscore_events_dead_lettered_total") if "dead_lettered" in out else 0
    assert scored + dead == n
    assert "metrics: http://127.0.0.1:" in out
    _assert_quiet_and_honest(out, (tmp_path / "demo" / "worker.log").read_text())
    # The closing summary: per head, alerts and users alerted beside the model's standing.
    users = int(_metric(out, "clickscore_users_in_state"))
    summary = (
        r"^{}: (\d+) alerts to (\d+) of (\d+) users \([0-9.]+ %\), (\d+) on a user's first event; "
        r"([0-9.]+) % of (\d+) active user-days \(validation: ([0-9.]+) % expected, precision "
        r"(?:[0-9.]+|n/a)(?: of \d+ alerts)?\); test ROC-AUC [0-9.]+ "
    )
    for head in ("propensity", "churn"):
        line = re.search(summary.format(head) + r"\(best baseline \w+ [0-9.]+\)$", out, re.M)
        assert line, out[-3000:]
        sent, alerted = int(line.group(1)), int(line.group(2))
        # Few alerts: the replay's alerted share of user-days (event and sweep alerts) stays near
        # what the manifest's rule expects on validation; the event-only churn threshold, blind
        # to the sweep, alerted several times that (most users, by the sweep).
        day_share, expected = float(line.group(5)), float(line.group(7))
        assert day_share <= 2 * expected + 2.0, line.group(0)
        emitted = re.findall(rf'^clickscore_alerts_emitted_total{{alert_type="{head}",.*}} (\S+)$',
                             out, re.M)  # fmt: skip
        assert sent == sum(float(v) for v in emitted)
        assert alerted <= min(sent, users) and int(line.group(3)) == users
        assert int(line.group(4)) <= alerted  # a user has one first event
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


def _assert_quiet_and_honest(out: str, worker_log: str) -> None:
    """No ERROR line and no raw librdkafka line on a normal run; no escape codes; final paths."""
    for name, text in (("demo output", out), ("worker log", worker_log)):
        errors = [line for line in text.splitlines() if re.search(r"\bERROR\b", line)]
        assert not errors, f"{name}: {errors[:5]}"
        raw = [line for line in text.splitlines() if re.search(r"%\d\|", line)]
        assert not raw, f"{name}: raw librdkafka lines {raw[:5]}"
        assert "\x1b[" not in text, f"{name}: escape codes in output that is not a terminal"
    assert ".tmp" not in out, [line for line in out.splitlines() if ".tmp" in line]
    simulated = re.search(r"wrote \d+ events of (\d+) users", out)
    assert simulated, out[:3000]
    assert int(simulated.group(1)) == _metric(out, "clickscore_users_in_state")
