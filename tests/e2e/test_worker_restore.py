"""State written in micro-batches lands in the right changelog partition and survives a restart.

The Faust pitfall (worker/runtime/app.py): table writes pick their changelog partition from the
*current event*, which in a ``take_events`` batch is the batch's last event. With 4 partitions and
many users per batch, a missing fix puts most users' state in a wrong partition. Proof here:

1. every changelog record sits in the partition of its user's events;
2. a worker restarted with an EMPTY data dir (state only from the changelog) continues every
   user exactly where the first left off: all scores equal offline scoring of the whole stream,
   whether the changelog was read by our preload (worker/runtime/preload.py, the default) or by
   Faust.
"""

from __future__ import annotations

import json
import re
import signal
import uuid

import numpy as np
import pytest
from confluent_kafka import Consumer, KafkaError

from tests.e2e.worker_process import WorkerFactory, WorkerProcess, counter
from tests.kafka_io import consume, produce, topic_size
from tests.worker_artifacts import keyed, make_events, shared_artifact
from training.score import score_events
from worker.runtime.app import TABLE_NAME

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

PARTITIONS = 4


def _partitions_by_key(bootstrap: str, topic: str) -> dict[bytes, set[int]]:
    """Every key of ``topic`` and the partitions it was seen in (read to the end)."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"t-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.partition.eof": True,
        }
    )
    consumer.subscribe([topic])
    seen: dict[bytes, set[int]] = {}
    eof: set[int] = set()
    idle = 0
    try:
        while len(eof) < PARTITIONS and idle < 40:
            msg = consumer.poll(0.5)
            if msg is None:
                idle += 1
                continue
            if msg.error() is not None:
                if msg.error().code() == KafkaError._PARTITION_EOF:
                    eof.add(msg.partition())
                    continue
                raise RuntimeError(str(msg.error()))
            seen.setdefault(msg.key(), set()).add(msg.partition())
    finally:
        consumer.close()
    return seen


@pytest.mark.parametrize("preload", [True, False], ids=["preload", "faust-recovery"])
def test_changelog_partitions_and_restore_from_changelog(
    kafka_bootstrap: str, preload: bool, worker_factory: WorkerFactory
) -> None:
    group, topics = worker_factory.group, worker_factory.topics
    model = shared_artifact()
    events = make_events(900, users=40, seed=21)
    first, second = events[:600], events[600:]

    def start(name: str) -> WorkerProcess:
        return worker_factory.start(
            model, name, partitions=PARTITIONS, batch_size=128, batch_max_wait_ms=200,
            changelog_preload=preload,
        )  # fmt: skip

    worker = start("a")
    try:
        produce(kafka_bootstrap, topics["events_topic"], keyed(first))
        m = worker.wait_metric(lambda m: counter(m, "clickscore_events_scored_total") >= 600)
        assert max(m.get("clickscore_scoring_batch_size_sum", 0), 0) >= 600
    finally:
        assert worker.stop(signal.SIGTERM) == 0, worker.log_tail()

    changelog = f"{group}-{TABLE_NAME}-changelog"
    by_user = _partitions_by_key(kafka_bootstrap, topics["events_topic"])
    in_changelog = _partitions_by_key(kafka_bootstrap, changelog)
    assert set(in_changelog) == set(by_user) and len(by_user) == 40
    wrong = {k: (p, by_user[k]) for k, p in in_changelog.items() if p != by_user[k]}
    assert not wrong, f"state in the wrong changelog partition: {wrong}"
    records = topic_size(kafka_bootstrap, changelog)

    # A fresh data dir: the new worker can only know the users from the changelog.
    worker = start("b")
    try:
        produce(kafka_bootstrap, topics["events_topic"], keyed(second))
        worker.wait_metric(lambda m: counter(m, "clickscore_events_scored_total") >= 300)
        m = worker.metrics()
        assert counter(m, "clickscore_events_duplicate_total") == 0
    finally:
        assert worker.stop() == 0, worker.log_tail()
    preloaded = re.findall(r"changelog preload: (\d+) records", worker.log_tail(10**7))
    # With the preload on, it read every record before Faust's recovery looked; off, none.
    assert [int(n) for n in preloaded] == ([records] if preload else []), worker.log_tail()

    got = consume(kafka_bootstrap, topics["scores_topic"], f"t-{uuid.uuid4().hex}", 900)
    streamed = {d["event_id"]: d for d in (json.loads(v) for _, v in got)}
    assert len(streamed) == 900
    offline = score_events(model, events)
    p_buy = np.array([streamed[e]["p_purchase"] for e in offline.event_id])
    p_churn = np.array([streamed[e]["p_churn"] for e in offline.event_id])
    assert float(np.abs(p_buy - offline.p_purchase).max()) <= 1e-4
    assert float(np.abs(p_churn - offline.p_churn).max()) <= 1e-4
