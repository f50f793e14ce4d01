"""An output send the broker refuses stops the commit: the batch comes back once the cause is fixed.

The alerts topic takes records of at most 200 bytes; every alert is larger, so the broker refuses
each one (record too large, as an ACL denial would). Before, the worker logged a warning and
committed the batch's offsets: those alerts were gone. Now it exits (70) before committing; after
the topic is fixed a restarted worker gets the same events again and every alert arrives.
"""

from __future__ import annotations

import json
import time
import uuid

import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource

from tests.e2e.worker_process import WorkerFactory, counter
from tests.kafka_io import consume, create_topic, produce
from tests.worker_artifacts import keyed, make_events, shared_artifact
from worker.kafka_connection import local

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


def _committed(bootstrap: str, group: str, topic: str) -> int:
    consumer = Consumer({**local(bootstrap).librdkafka(), "group.id": group})
    try:
        (tp,) = consumer.committed([TopicPartition(topic, 0)], timeout=10)
        return int(tp.offset)  # negative: nothing committed
    finally:
        consumer.close()


def _set_max_bytes(bootstrap: str, topic: str, limit: int) -> None:
    admin = AdminClient(local(bootstrap).librdkafka())
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic, set_config={
        "max.message.bytes": str(limit)})  # fmt: skip
    admin.alter_configs([resource])[resource].result(timeout=30)


def test_a_refused_alert_send_stops_the_commit_and_nothing_is_lost(
    kafka_bootstrap: str, worker_factory: WorkerFactory
) -> None:
    group, topics = worker_factory.group, worker_factory.topics
    alerts = create_topic(kafka_bootstrap, 1, 1, {"max.message.bytes": "200"})
    model = shared_artifact(propensity=0.0, churn=1.0)
    # Both runs: the same name (so the same data dir), group and topics; no scores topic.
    settings: dict[str, object] = {"partitions": 1, "propensity_topic": alerts, "scores_topic": ""}
    events = make_events(10, users=5, seed=12)
    worker = worker_factory.start(model, name="worker", **settings)
    try:
        produce(kafka_bootstrap, topics["events_topic"], keyed(events))
        worker.proc.wait(timeout=90)  # before the fix it ran on, having committed
    finally:
        code = worker.stop()
    assert code == 70, worker.log_tail()
    assert _committed(kafka_bootstrap, group, topics["events_topic"]) < len(events)
    _set_max_bytes(kafka_bootstrap, alerts, 1_000_000)
    time.sleep(1)  # the broker applies topic configs asynchronously
    again = worker_factory.start(model, name="worker", **settings)
    try:
        m = again.wait_metric(
            lambda m: (
                counter(m, "clickscore_events_scored_total")
                + counter(m, "clickscore_events_duplicate_total")
                >= len(events)
            )
        )
        got = consume(kafka_bootstrap, alerts, f"t-{uuid.uuid4().hex}", 10, timeout=10)
    finally:
        assert again.stop() == 0, again.log_tail()
    users = {e.user_id for e in events}
    assert {json.loads(v)["user_id"] for _, v in got} == users  # every user's alert arrived
    assert counter(m, "clickscore_alerts_emitted_total") >= len(users)
