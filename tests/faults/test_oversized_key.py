"""A ~1 MB key with a bad value: dead-lettered with its key cut, and the worker goes on.

The dead-letter send reused the raw key at full size; key plus dead-letter document went over the
producer's 1 MB request limit, aiokafka raised inside Faust's send buffer, and the worker hung or
crash-looped. Events after it must still be scored, and the worker must stop cleanly.
"""

from __future__ import annotations

import base64
import json
import uuid

import pytest

import schemas
from tests.e2e.worker_process import WorkerFactory, counter
from tests.kafka_io import consume, produce, topic_config
from tests.worker_artifacts import keyed, make_events, shared_artifact
from worker.core.deadletter import MAX_KEY_BYTES

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

BIG_KEY = b"k" * 1_000_000


def test_a_1_mb_key_is_dead_lettered_cut_and_the_stream_goes_on(
    kafka_bootstrap: str, worker_factory: WorkerFactory
) -> None:
    topics = worker_factory.topics
    after = make_events(20, users=3, seed=6)
    worker = worker_factory.start(shared_artifact(), partitions=1, scores_topic="")
    try:
        produce(kafka_bootstrap, topics["events_topic"], [(BIG_KEY, b"not json")],
                **{"message.max.bytes": 1_048_000})  # fmt: skip
        produce(kafka_bootstrap, topics["events_topic"], keyed(after))
        m = worker.wait_metric(
            lambda m: counter(m, "clickscore_events_scored_total") >= len(after), timeout=60
        )
        dead = consume(kafka_bootstrap, topics["dlq_topic"], f"t-{uuid.uuid4().hex}", 2, timeout=10)
    finally:
        code = worker.stop()
    assert code == 0, worker.log_tail()
    assert m["clickscore_events_dead_lettered_total{reason=not_json}"] == 1
    ((key, value),) = dead
    doc = json.loads(value)
    schemas.validate("dead_letter", doc)
    assert key == BIG_KEY[:MAX_KEY_BYTES]
    assert doc["key_truncated"] is True
    assert base64.b64decode(doc["key_b64"]) == BIG_KEY[:MAX_KEY_BYTES]
    # The dead-letter topic the worker created expires its raw records (two weeks by default).
    dlq_config = topic_config(kafka_bootstrap, topics["dlq_topic"])
    assert dlq_config["retention.ms"] == str(14 * 86_400_000)
