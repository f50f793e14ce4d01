"""Corrupt changelog records: a worker restoring them resets the bad parts and keeps scoring.

Each user's state in the changelog decodes but does not fit together (short or long tensors,
odd-length recent scores or id hashes, an alert whose id hash is no hash; under the first state
layout five such cases made ``process_batch`` raise). Before, the worker exited 70 on the first
event of such a user and got the same batch back on every restart: the partition stalled. Now
every event is scored, each reset is counted, and the worker stops cleanly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import pytest

from schemas.event import Event
from tests.e2e.worker_process import WorkerFactory, counter
from tests.kafka_io import create_topic, produce
from tests.worker_artifacts import T0_MS, keyed, make_events, shared_artifact
from worker.core.micro_batch import PipelineConfig, Record, process_batch
from worker.core.model_store import load_model
from worker.core.state import UserState, encode_state

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


def _valid_state(model_dir: Path) -> UserState:
    """A real state with tensors, remembered scores and alerts (thresholds 0 fire at once)."""
    events = make_events(4, users=1, seed=4)
    records = [Record(k, v, "events", 0, i, T0_MS) for i, (k, v) in enumerate(keyed(events))]
    result = process_batch(records, lambda _u, _i: None, load_model(model_dir), PipelineConfig())
    ((state, _),) = result.writes.values()
    assert state.tensors and state.recent_scores and state.recent_alerts
    return state


def _corruptions(state: UserState) -> dict[str, UserState]:
    ids, alert = state.recent_id_hashes, state.recent_alerts[0]
    changes: dict[str, dict[str, Any]] = {
        "short-tensor": {"tensors": state.tensors[:-4]},
        "long-tensor": {"tensors": state.tensors + bytes(4)},
        "odd-scores": {"recent_scores": state.recent_scores[:-4]},
        "odd-id-hashes": {"recent_id_hashes": ids[:-3]},
        "alert-short-hash": {"recent_alerts": (msgspec.structs.replace(alert, id_hash=b"x"),)},
    }
    return {user: msgspec.structs.replace(state, **c) for user, c in changes.items()}


def test_corrupt_changelog_states_are_reset_and_counted(
    kafka_bootstrap: str, worker_factory: WorkerFactory
) -> None:
    model_dir = shared_artifact(propensity=0.0, churn=0.0)
    group, topics = worker_factory.group, worker_factory.topics
    corrupt = _corruptions(_valid_state(model_dir))
    # One partition, so each record lands where Faust's table looks for its key.
    changelog = f"{group}-user-state-changelog"
    create_topic(kafka_bootstrap, 1, 1, {"cleanup.policy": "compact"}, name=changelog)
    produce(kafka_bootstrap, changelog, [(u.encode(), encode_state(s)) for u, s in corrupt.items()])
    events = [
        Event(event_id=f"x-{user}", user_id=user, event_type="view", ts_ms=T0_MS + 60_000)
        for user in corrupt
    ]
    worker = worker_factory.start(model_dir, partitions=1, scores_topic="")
    try:
        produce(kafka_bootstrap, topics["events_topic"], keyed(events))
        m = worker.wait_metric(
            lambda m: counter(m, "clickscore_events_scored_total") >= len(events), timeout=60
        )
    finally:
        code = worker.stop()
    assert code == 0, worker.log_tail()
    assert counter(m, "clickscore_state_resets_total") == len(corrupt)
    assert counter(m, "clickscore_events_dead_lettered_total") == 0
