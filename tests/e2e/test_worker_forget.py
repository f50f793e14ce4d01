"""Deleting a user's state in a running worker: the retention's expiry and ``worker forget``.

Both end as a changelog tombstone for the user's key (what the partition's next owner restores)
and the key gone from the worker's RocksDB. The sweep's clock is the newest event time plus wall
time since (worker/core/sweep.py): one event two hours after the rest makes those users idle.
"""

from __future__ import annotations

import subprocess
import sys
import uuid

import pytest

from schemas.event import Event
from tests.e2e.worker_process import ROOT, WorkerFactory, counter
from tests.kafka_io import consume, produce, topic_size
from tests.worker_artifacts import T0_MS, keyed, shared_artifact
from worker.core.state import decode_state
from worker.runtime.app import TABLE_NAME

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

EXPIRE = "clickscore_state_deleted_total{action=expire}"
FORGET = "clickscore_state_deleted_total{action=forget}"


def _latest(bootstrap: str, changelog: str) -> dict[str, bool]:
    """User -> whether the changelog's last record of it is a state (False: a tombstone)."""
    size = topic_size(bootstrap, changelog)
    got = consume(bootstrap, changelog, f"t-{uuid.uuid4().hex}", size, timeout=30)
    assert len(got) == size
    return {(k or b"").decode(): decode_state(v) is not None for k, v in got}


def test_idle_users_expire_and_forget_deletes_a_user(
    kafka_bootstrap: str, worker_factory: WorkerFactory
) -> None:
    topics = worker_factory.topics
    changelog = f"{worker_factory.group}-{TABLE_NAME}-changelog"
    worker = worker_factory.start(
        shared_artifact(),
        partitions=2,
        churn_sweep_interval_seconds=1,
        churn_idle_seconds=60,
        state_retention_hours=1,
    )
    old = [Event(event_id=f"o{i}", user_id=f"old{i}", event_type="view", ts_ms=T0_MS + i)
           for i in range(3)]  # fmt: skip
    recent = [Event(event_id=f"r{i}", user_id=f"new{i}", event_type="view",
                    ts_ms=T0_MS + 2 * 3_600_000 + i) for i in range(2)]  # fmt: skip
    produce(kafka_bootstrap, topics["events_topic"], keyed(old))
    worker.wait_metric(lambda m: counter(m, "clickscore_events_scored_total") >= len(old))
    produce(kafka_bootstrap, topics["events_topic"], keyed(recent))
    # The old users are idle 2 h > 1 h of retention on the sweep's clock: expired.
    m = worker.wait_metric(lambda m: m.get(EXPIRE, 0) >= len(old))
    assert m.get(EXPIRE) == len(old) and m.get("clickscore_users_in_state") == len(recent)

    forget = subprocess.run(
        [sys.executable, "-m", "worker", "forget", "new0",
         "--bootstrap", kafka_bootstrap, "--topic", topics["events_topic"]],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert forget.returncode == 0, forget.stderr
    m = worker.wait_metric(lambda m: m.get(FORGET, 0) >= 1)
    assert worker.stop() == 0, worker.log_tail()
    assert counter(m, "clickscore_control_records_total") == len(old) + 1
    assert m.get(EXPIRE) == len(old) and m.get(FORGET) == 1
    assert _latest(kafka_bootstrap, changelog) == {
        "old0": False, "old1": False, "old2": False, "new0": False, "new1": True,
    }  # fmt: skip
