"""Alert outcomes in a running worker: live precision equals offline precision, across a SIGKILL.

A replay of seeded events through a worker that is SIGKILLed mid-replay and restarted on its data
dir; one late event then moves the sweep's clock past every horizon. Every alert (read from the
alert topics) must have its outcome on the outcomes topic, each copy of it the same record, with
the outcome the events say (computed here from the events, by the labels' definition, not by the
worker's code), so precision per head is the offline precision.
"""

from __future__ import annotations

import json
import uuid
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

import schemas
from schemas.event import Event, parse_timestamp
from tests.e2e.worker_process import WorkerFactory, counter
from tests.kafka_io import consume, produce
from tests.worker_artifacts import keyed, make_artifact, make_events
from training.score import score_events
from worker.core.outcomes import CLOCK_GRACE_MS

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

H_S, D_S = 200.0, 150.0  # horizons; events are 1 s apart over 12 users (one each ~12 s)
COOLDOWN_S = 60  # at most 4 alerts of a head wait per user (H / 60 s < 4): no "unknown"


def _model(tmp: Path, events: list[Event]) -> Path:
    """The seeded test model with its thresholds at the 80th percentile of these events' scores."""
    probe = make_artifact(tmp / "probe", seed=4, horizons=(H_S, D_S))
    offline = score_events(tmp / "probe", events)
    thresholds = {
        "propensity": float(np.quantile(offline.p_purchase, 0.8)),
        "churn": float(np.quantile(offline.p_churn, 0.8)),
    }
    make_artifact(tmp / "model", seed=4, horizons=(H_S, D_S), thresholds=thresholds,
                  model_version=probe["model_version"] + "-outcomes")  # fmt: skip
    return tmp / "model"


def _label(alert: dict, events: list[Event]) -> str:
    """training/labels.py's label for an alert at its event time, from the events alone."""
    t = parse_timestamp(alert["event_time"])
    later = [e for e in events if e.user_id == alert["user_id"] and e.ts_ms > t]
    if alert["alert_type"] == "propensity":
        bought = any(e.event_type == "purchase" and e.ts_ms <= t + H_S * 1000 for e in later)
        return "true" if bought else "false"
    return "false" if any(e.ts_ms <= t + D_S * 1000 for e in later) else "true"


def _read(bootstrap: str, topic: str) -> list[dict]:
    got = consume(bootstrap, topic, f"t-{uuid.uuid4().hex}", 10**6, timeout=6)
    return [json.loads(v) for _, v in got]


def _precision(outcomes: list[str]) -> float:
    return outcomes.count("true") / len(outcomes)


def test_live_precision_equals_offline_precision_across_a_sigkill(
    kafka_bootstrap: str, tmp_path: Path, worker_factory: WorkerFactory
) -> None:
    topics = worker_factory.topics
    events = make_events(900, users=12, seed=11)  # T0 .. T0 + 899 s
    model = _model(tmp_path, events)
    settings = {"partitions": 2, "churn_sweep_interval_seconds": 1, "churn_idle_seconds": 10**6,
                "alert_cooldown_seconds": COOLDOWN_S, "alert_hysteresis": 0.0,
                "scores_topic": ""}  # fmt: skip
    worker = worker_factory.start(model, **settings)
    produce(kafka_bootstrap, topics["events_topic"], keyed(events))
    worker.wait_metric(lambda m: counter(m, "clickscore_events_scored_total") >= 300)
    worker.proc.kill()  # SIGKILL mid-replay: no flush, no commit
    worker.stop()
    worker = worker_factory.start(model, **settings)  # the same data dir
    worker.wait_metric(  # every event applied: both partitions' lag measured and zero
        lambda m: (
            sum(k.startswith("clickscore_consumer_lag{") for k in m) == 2
            and counter(m, "clickscore_consumer_lag") == 0
        )
    )
    # Only now the clock may pass every horizon (plus the grace): one late event of a new user.
    late_ms = events[-1].ts_ms + int(H_S * 1000) + CLOCK_GRACE_MS + 120_000
    late = Event(event_id="late-1", user_id="late-user", event_type="view", ts_ms=late_ms)
    produce(kafka_bootstrap, topics["events_topic"], keyed([late]))
    alerts = {
        a["alert_id"]: a
        for t in ("propensity_topic", "churn_topic")
        for a in _read(kafka_bootstrap, topics[t])
        if a["user_id"] != "late-user"
    }
    assert len(alerts) > 100
    worker.wait_metric(lambda m: counter(m, "clickscore_control_records_total") > 0)
    outcomes: dict[str, list[dict]] = defaultdict(list)
    for _ in range(20):  # the sweep's requests come within a few seconds; read until all are in
        outcomes.clear()
        for doc in _read(kafka_bootstrap, topics["outcomes_topic"]):
            outcomes[doc["alert_id"]].append(doc)
        if set(alerts) <= set(outcomes):
            break
    assert worker.stop() == 0, worker.log_tail()
    assert set(alerts) <= set(outcomes), len(set(alerts) - set(outcomes))
    copies = 0
    for alert_id, docs in outcomes.items():
        schemas.validate("alert_outcome", docs[0])
        assert all(d == docs[0] for d in docs), docs  # a repeat is the same record
        copies += len(docs) - 1
        if alert_id in alerts:
            assert docs[0]["outcome"] == _label(alerts[alert_id], events), alerts[alert_id]
    print(f"{len(alerts)} alerts, {copies} repeated outcome records after the SIGKILL")
    for head in ("propensity", "churn"):
        mine = [a for a in alerts.values() if a["alert_type"] == head]
        live = _precision([outcomes[a["alert_id"]][0]["outcome"] for a in mine])
        offline = _precision([_label(a, events) for a in mine])
        assert live == offline and mine, head
