"""The worker end to end: events in, alerts/scores/dead letters out, /metrics agreeing, SIGTERM.

One worker process for the whole module. The model's thresholds are 0, so every user fires exactly
one propensity and one churn alert (at its first event; the score never drops below
``0 - hysteresis`` to re-arm), which makes the expected alert count exact.

Accounting (docs/contracts.md): consumed = scored + duplicates + dead-lettered + re-keyed, where
the re-keyed record's copy is consumed and scored once more.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import schemas
from schemas.event import Event, encode_event
from tests.e2e.score_parity import offline_scores, worst_difference
from tests.e2e.worker_process import WorkerFactory, WorkerProcess, counter
from tests.kafka_io import consume, produce
from tests.worker_artifacts import keyed, make_events, shared_artifact
from training.datasets import write_events
from training.feature_groups import GROUP_COLUMNS
from training.featurizer import FEATURIZER_VERSION, FeatureContext, featurize
from worker.core.model_store import load_model

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

N_GOOD, N_USERS = 1500, 50
REKEYED = Event(event_id="rk-1", user_id="rekeyed-user", event_type="view", ts_ms=1_767_300_000_000)


def _ev(extra: str, event_type: str = "view", ts: str = "1") -> bytes:
    base = f'"event_id":"m","user_id":"u1","event_type":"{event_type}","timestamp":{ts}'
    return ("{" + base + extra + "}").encode()


BAD: list[tuple[bytes | None, bytes, str]] = [
    (b"u1", b"this is not json", "not_json"),
    (b"u1", b'["an", "array"]', "not_object"),
    (b"u1", b'{"event_id": "m1", "event_type": "view", "timestamp": 1}', "schema"),
    (b"u1", _ev("", ts='"tuesday"'), "bad_timestamp"),
    (b"u1", _ev("", event_type="levitate"), "unknown_event_type"),
    (b"u1", _ev(',"quantity":"2"'), "schema"),
    (b"u1", _ev(',"price":-3.5'), "schema"),
    (b"u1", _ev(',"pad":"' + "x" * 999_000 + '"'), "too_large"),  # ~1 MB
    (None, _ev(',"n":7'), "empty_key"),
    (b"", _ev(',"n":8'), "empty_key"),
    (b"u1", b"\xc3\x28 invalid utf-8", "not_utf8"),
]


class Run:
    """The module's worker, its topics, and what was sent."""

    def __init__(self, worker: WorkerProcess, topics: dict[str, str], good: list[Event]) -> None:
        self.worker = worker
        self.topics = topics
        self.good = good


@pytest.fixture(scope="module")
def run(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    factory = WorkerFactory(kafka_bootstrap, tmp_path_factory.mktemp("worker-e2e"))
    topics = factory.topics
    worker = factory.start(
        shared_artifact(propensity=0.0, churn=0.0),
        partitions=4,
        batch_size=64,
        churn_idle_seconds=10**9,  # no sweep alerts here: the counts below are exact
        churn_sweep_interval_seconds=1,  # ... but the sweep runs (and is timed) every second
    )
    try:
        good = make_events(N_GOOD, users=N_USERS, seed=11)
        records: list[tuple[bytes | None, bytes]] = []
        pairs = keyed(good)
        step = len(pairs) // len(BAD)
        for i, (key, value, _) in enumerate(BAD):  # bad records spread among good ones
            records += pairs[i * step : (i + 1) * step]
            records.append((key, value))
        records += pairs[len(BAD) * step :]
        records.append((b"someone-else", encode_event(REKEYED)))
        produce(kafka_bootstrap, topics["events_topic"], records)
        yield Run(worker, topics, good)
    finally:
        worker.stop()


def _sent(run: Run) -> int:
    return N_GOOD + len(BAD) + 1


def test_every_record_is_accounted_for(run: Run) -> None:
    want_consumed = _sent(run) + 1  # + the re-keyed copy
    m = run.worker.wait_metric(
        lambda m: (
            counter(m, "clickscore_events_consumed_total") >= want_consumed
            and counter(m, "clickscore_events_scored_total") >= N_GOOD + 1
        )
    )
    scored = counter(m, "clickscore_events_scored_total")
    dead = counter(m, "clickscore_events_dead_lettered_total")
    dup = counter(m, "clickscore_events_duplicate_total")
    rekeyed = counter(m, "clickscore_events_rekeyed_total")
    consumed = counter(m, "clickscore_events_consumed_total")
    assert (consumed, scored, dead, dup, rekeyed) == (want_consumed, N_GOOD + 1, len(BAD), 0, 1)
    assert consumed == scored + dup + dead + rekeyed
    assert run.worker.proc.poll() is None  # bad input never stopped it
    want = Counter(reason for _, _, reason in BAD)
    for reason, count in want.items():
        assert m[f"clickscore_events_dead_lettered_total{{reason={reason}}}"] == count


def test_dead_letters_keep_the_original_bytes_and_say_why(run: Run, kafka_bootstrap: str) -> None:
    got = consume(kafka_bootstrap, run.topics["dlq_topic"], f"t-{uuid.uuid4().hex}", len(BAD))
    assert len(got) == len(BAD)
    docs = [json.loads(value) for _, value in got]
    for doc in docs:
        schemas.validate("dead_letter", doc)
        assert doc["source"]["topic"] == run.topics["events_topic"]
    by_value = {base64.b64decode(d["value_b64"]): d for d in docs}
    for _key, value, reason in BAD:
        kept = value[: 64 * 1024]
        assert by_value[kept]["reason"] == reason
        assert by_value[kept]["value_truncated"] == (len(value) > 64 * 1024)
        assert len(by_value[kept]["detail"]) > 0


def test_alerts_on_both_topics_validate_and_agree_with_metrics(
    run: Run, kafka_bootstrap: str
) -> None:
    users = {e.user_id for e in run.good} | {REKEYED.user_id}
    version = json.loads((shared_artifact(propensity=0.0, churn=0.0) / "manifest.json").read_text())
    for kind in ("propensity", "churn"):
        topic = run.topics[f"{kind}_topic"]
        label = f"clickscore_alerts_emitted_total{{alert_type={kind},trigger=event}}"
        run.worker.wait_metric(lambda m, label=label: m.get(label, 0) >= len(users))
        # Ask for one more than expected: a short wait that would catch a duplicate alert.
        got = consume(kafka_bootstrap, topic, f"t-{uuid.uuid4().hex}", len(users) + 1, timeout=8)
        docs = [json.loads(v) for _, v in got]
        assert len(docs) == len(users)  # exactly one per user (threshold 0, never re-armed)
        for (key, _), doc in zip(got, docs, strict=True):
            schemas.validate("alert", doc)
            assert key == doc["user_id"].encode()
            assert doc["alert_type"] == kind and doc["trigger"] == "event"
            assert doc["model_version"] == version["model_version"]
        assert {d["user_id"] for d in docs} == users
        _check_reasons(docs, [*run.good, REKEYED])
        m = run.worker.metrics()
        assert m[f"clickscore_alerts_emitted_total{{alert_type={kind},trigger=event}}"] == len(
            users
        )


def _check_reasons(docs: list[dict], events: list[Event]) -> None:
    """Switching a reason's inputs off lowers the score by the contribution the alert reports.

    Each alert fired on its user's first event, so the state before it is all zeros.
    """
    model = load_model(shared_artifact(propensity=0.0, churn=0.0))
    first = {}
    for event in events:
        first.setdefault(event.user_id, event)
    zeros = {n: np.zeros((1, *shape), np.float32) for n, shape in model.state_spec.items()}
    checked = 0
    for doc in docs:
        event = first[doc["user_id"]]
        assert doc["event_id"] == event.event_id
        row, _ = featurize(event, FeatureContext())
        for reason in doc["reasons"]:
            x = row.copy()
            x[list(GROUP_COLUMNS[reason["group"]])] = 0.0
            out = model.scorer.step(x[None], np.zeros(1, np.float32), zeros)
            occluded = out.p_purchase if doc["alert_type"] == "propensity" else out.p_churn
            assert doc["score"] - float(occluded[0]) == pytest.approx(
                reason["contribution"], abs=1e-5
            )
            checked += 1
    assert checked >= len(docs)  # most alerts carry reasons; at least one each on average


def test_streamed_scores_equal_offline_training_score(
    run: Run, kafka_bootstrap: str, tmp_path: Path
) -> None:
    """Invariant 3: the worker's scores topic == ``python -m training score`` on the same file."""
    model_dir = shared_artifact(propensity=0.0, churn=0.0)
    events_file = tmp_path / "events.csv"
    write_events([*run.good, REKEYED], events_file)
    offline = offline_scores(model_dir, events_file, tmp_path / "offline.csv")
    got = consume(kafka_bootstrap, run.topics["scores_topic"], f"t-{uuid.uuid4().hex}", N_GOOD + 1)
    streamed = {json.loads(v)["event_id"]: json.loads(v) for _, v in got}
    assert len(streamed) == len(offline) == N_GOOD + 1
    worst = worst_difference(offline, streamed)
    assert worst <= 1e-4


def test_health_endpoints_and_metric_names(run: Run) -> None:
    assert run.worker.get("/healthz")[0] == 200
    status, body = run.worker.get("/readyz")
    assert status == 200 and json.loads(body)["ready"] is True
    m = run.worker.metrics()
    assert m["clickscore_ready"] == 1
    info = [k for k in m if k.startswith("clickscore_model_info{")]
    assert len(info) == 1 and f"featurizer_version={FEATURIZER_VERSION}" in info[0]
    assert m["clickscore_model_loads_total{result=ok}"] == 1
    assert any(k.startswith("clickscore_consumer_lag{partition=") for k in m)
    m = run.worker.wait_metric(lambda m: m["clickscore_churn_sweep_duration_seconds_count"] > 0)
    assert m["clickscore_users_in_state"] == N_USERS + 1  # counted by the sweep over the table
    for name in (
        "clickscore_scoring_batch_size_count",
        "clickscore_scoring_latency_seconds_count",
        "clickscore_end_to_end_latency_seconds_count",
        "clickscore_users_in_state",
        "clickscore_state_resets_total",
    ):
        assert name in m


def test_sigterm_finishes_and_exits_zero(run: Run) -> None:
    assert run.worker.stop() == 0, run.worker.log_tail()
    assert "Traceback" not in run.worker.log_tail(200_000)
