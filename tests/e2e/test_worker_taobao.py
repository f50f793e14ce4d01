"""Invariant 3 on real traffic: the Taobao slice replayed through Kafka == offline scoring.

The whole real file (64,095 events by 40,897 users, ../shared/data) goes through the real
``python -m worker replay --format taobao`` into a worker with the scores topic on; every streamed
score must equal ``python -m training score --format taobao`` on the same file (≤ 1e-4), with the
same deterministic event ids (``<file stem>:<row>``), and nothing may be dead-lettered. The
worker is stopped with SIGINT (Ctrl-C in a terminal), which must be as clean as SIGTERM.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from kafka_io import consume
from score_parity import offline_scores, worst_difference
from worker_artifacts import shared_artifact
from worker_process import ROOT, WorkerProcess, counter, worker_env

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

TAOBAO = ROOT / ".." / "shared" / "data" / "taobao-userbehavior" / "UserBehavior_first80min.csv"
ROWS = 64_095


def _run(*args: str) -> None:
    subprocess.run([sys.executable, *args], cwd=ROOT, check=True, capture_output=True, timeout=600)


def test_taobao_streamed_scores_equal_offline_scores(kafka_bootstrap: str, tmp_path: Path) -> None:
    assert TAOBAO.is_file(), f"{TAOBAO} is missing: the shared data directory must be present"
    tag = uuid.uuid4().hex[:8]
    topics = {"events_topic": f"ev-{tag}", "scores_topic": f"scores-{tag}"}
    topics |= {"dlq_topic": f"dlq-{tag}", "propensity_topic": f"p-{tag}", "churn_topic": f"c-{tag}"}
    model = shared_artifact()
    env = worker_env(kafka_bootstrap, model, tmp_path / "data", group_id=f"cs-{tag}", **topics)
    worker = WorkerProcess(env, tmp_path / "worker.log")
    try:
        worker.wait_ready()
        replay = ["-m", "worker", "replay", str(TAOBAO), "--format", "taobao", "--quiet"]
        _run(*replay, "--topic", topics["events_topic"], "--bootstrap", kafka_bootstrap)
        m = worker.wait_metric(
            lambda m: counter(m, "clickscore_events_consumed_total") >= ROWS, timeout=600
        )
        assert counter(m, "clickscore_events_scored_total") == ROWS, worker.log_tail()
        assert counter(m, "clickscore_events_dead_lettered_total") == 0
    finally:
        assert worker.stop(signal.SIGINT) == 0, worker.log_tail()
    assert "Traceback" not in worker.log_tail(10**7)

    offline = offline_scores(model, TAOBAO, tmp_path / "offline.csv", fmt="taobao")
    got = consume(kafka_bootstrap, topics["scores_topic"], f"t-{tag}", ROWS, timeout=120)
    streamed = {d["event_id"]: d for d in (json.loads(v) for _, v in got)}
    assert len(offline) == ROWS and streamed.keys() == offline.keys()
    worst = worst_difference(offline, streamed)
    assert worst <= 1e-4
