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

from tests.e2e.score_parity import offline_scores, worst_difference
from tests.e2e.worker_process import ROOT, WorkerFactory, counter
from tests.kafka_io import consume
from tests.worker_artifacts import shared_artifact

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

TAOBAO = ROOT / ".." / "shared" / "data" / "taobao-userbehavior" / "UserBehavior_first80min.csv"
ROWS = 64_095


def _run(*args: str) -> None:
    subprocess.run([sys.executable, *args], cwd=ROOT, check=True, capture_output=True, timeout=600)


def test_taobao_streamed_scores_equal_offline_scores(
    kafka_bootstrap: str, tmp_path: Path, worker_factory: WorkerFactory
) -> None:
    assert TAOBAO.is_file(), f"{TAOBAO} is missing: the shared data directory must be present"
    topics = worker_factory.topics
    model = shared_artifact()
    worker = worker_factory.start(model)
    try:
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
    got = consume(
        kafka_bootstrap, topics["scores_topic"], f"t-{uuid.uuid4().hex}", ROWS, timeout=120
    )
    streamed = {d["event_id"]: d for d in (json.loads(v) for _, v in got)}
    assert len(offline) == ROWS and streamed.keys() == offline.keys()
    worst = worst_difference(offline, streamed)
    assert worst <= 1e-4
