"""The churn sweep in a running worker: idle users re-scored by the churn head, alerted once.

The model's churn head reads only the silence (tests/worker_artifacts.py ``churn_from_silence``),
so no churn alert fires on events and every user silent for > CHURN_IDLE_SECONDS fires on the
sweep. The sweep's clock is the newest event time plus wall time since (worker/core/sweep.py), so
old timestamps work: one late event an hour after the rest makes everybody else idle.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import pytest

import schemas
from schemas.event import Event
from tests.e2e.worker_process import WorkerFactory, WorkerProcess, counter
from tests.kafka_io import consume, produce, produce_at
from tests.worker_artifacts import T0_MS, keyed, make_artifact, make_events
from worker.core.alerts import alert_id

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


def _sweeping_worker(tmp_path: Path, worker_factory: WorkerFactory) -> WorkerProcess:
    """A worker whose churn head reads only silence, sweeping every second, idle after 10 min."""
    model = tmp_path / "model"
    make_artifact(model, seed=3, thresholds={"propensity": 1.0, "churn": 0.5},
                  model_version="sweepy", churn_from_silence=True)  # fmt: skip
    return worker_factory.start(
        model, partitions=2, churn_sweep_interval_seconds=1, churn_idle_seconds=600, scores_topic=""
    )


def test_sweep_alerts_idle_users_once(
    kafka_bootstrap: str, tmp_path: Path, worker_factory: WorkerFactory
) -> None:
    topics = worker_factory.topics
    events = make_events(200, users=12, seed=8)  # T0 .. T0 + 199 s
    late = Event(event_id="late-1", user_id="late-user", event_type="view", ts_ms=T0_MS + 3_600_000)
    worker = _sweeping_worker(tmp_path, worker_factory)
    try:
        produce(kafka_bootstrap, topics["events_topic"], keyed(events))
        # The late event only once every other one is applied: sent together, it may be applied
        # first (another partition), move the clock an hour on, and let the sweep alert users
        # whose later events are still on their way (correct, but not the count tested here).
        worker.wait_metric(lambda m: counter(m, "clickscore_events_scored_total") >= len(events))
        produce(kafka_bootstrap, topics["events_topic"], keyed([late]))
        idle_users = {e.user_id for e in events}
        worker.wait_metric(
            lambda m: (
                m.get("clickscore_alerts_emitted_total{alert_type=churn,trigger=sweep}", 0)
                >= len(idle_users)
            )
        )
        got = consume(kafka_bootstrap, topics["churn_topic"], f"t-{uuid.uuid4().hex}",
                      len(idle_users) + 1, timeout=8)  # fmt: skip
        m = worker.metrics()
    finally:
        assert worker.stop() == 0, worker.log_tail()
    docs = [json.loads(v) for _, v in got]
    assert len(docs) == len(idle_users)  # once each: the sweep remembers (user, last event)
    assert m["clickscore_alerts_emitted_total{alert_type=churn,trigger=sweep}"] == len(idle_users)
    assert "clickscore_alerts_emitted_total{alert_type=churn,trigger=event}" not in m
    last = {e.user_id: e for e in events}  # each user's last event
    for doc in docs:
        schemas.validate("alert", doc)
        user = doc["user_id"]
        assert doc["trigger"] == "sweep" and doc["model_version"] == "sweepy"
        assert doc["event_id"] == last[user].event_id
        assert doc["alert_id"] == alert_id("churn", user, "sweep", last[user].event_id)
        assert doc["idle_seconds"] >= 3_600 - 200
        # The churn head reads only the silence: it is the one reason, worth all but p(elapsed 0).
        assert [r["group"] for r in doc["reasons"]] == ["silence"]
        assert doc["reasons"][0]["text"].startswith("no activity for")
    assert {d["user_id"] for d in docs} == idle_users


def test_a_producer_clock_hours_fast_floods_no_churn_alerts(
    kafka_bootstrap: str, tmp_path: Path, worker_factory: WorkerFactory
) -> None:
    """The skewed event passes the 24 h check but must not move the sweep's clock past the wall."""
    topics = worker_factory.topics
    now_ms = int(time.time() * 1000)
    events = [  # users active right now, by the wall clock
        Event(event_id=f"n{i}", user_id=f"u{i % 12}", event_type="view", ts_ms=now_ms - 1000 + i)
        for i in range(60)
    ]
    # A producer whose clock runs two hours ahead. The broker refuses a CreateTime over an hour
    # ahead (log.message.timestamp.after.max.ms), so its record timestamp is 50 minutes ahead;
    # the event time is within the 24 h the worker allows past the record timestamp.
    fast_ms = now_ms + 2 * 3_600_000
    created_ms = now_ms + 50 * 60_000
    skewed = Event(event_id="fast-1", user_id="fast-user", event_type="view", ts_ms=fast_ms)
    worker = _sweeping_worker(tmp_path, worker_factory)
    try:
        produce(kafka_bootstrap, topics["events_topic"], keyed(events))
        produce_at(kafka_bootstrap, topics["events_topic"], keyed([skewed]), created_ms)
        m = worker.wait_metric(
            lambda m: counter(m, "clickscore_events_scored_total") >= len(events) + 1
        )
        sweeps = m["clickscore_churn_sweep_duration_seconds_count"]
        m = worker.wait_metric(
            lambda m: m["clickscore_churn_sweep_duration_seconds_count"] >= sweeps + 3
        )
    finally:
        assert worker.stop() == 0, worker.log_tail()
    assert counter(m, "clickscore_events_dead_lettered_total") == 0  # it was a valid event
    assert counter(m, "clickscore_alerts_emitted_total") == 0  # before the fix: 12, all sweep
