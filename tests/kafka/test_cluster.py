"""The 3-broker cluster: every broker registered; a replicated topic survives a broker crash."""

from __future__ import annotations

import pytest
from confluent_kafka.admin import AdminClient

from tests.kafka_io import LocalKafka, consume, produce

pytestmark = [pytest.mark.kafka, pytest.mark.cluster, pytest.mark.slow]


def test_metadata_lists_three_brokers(kafka_cluster: LocalKafka) -> None:
    meta = AdminClient({"bootstrap.servers": kafka_cluster.bootstrap}).list_topics(timeout=10)
    assert sorted(meta.brokers) == [1, 2, 3]


def test_replicated_topic_serves_after_a_broker_is_killed(
    kafka_cluster: LocalKafka, group_id: str
) -> None:
    topic = kafka_cluster.create_topic(partitions=3, replication=3)
    admin = AdminClient({"bootstrap.servers": kafka_cluster.bootstrap})
    replicas = admin.list_topics(topic=topic, timeout=10).topics[topic].partitions
    assert all(sorted(p.replicas) == [1, 2, 3] for p in replicas.values())

    before = [(f"u{i}".encode(), f"before-{i}".encode()) for i in range(30)]
    produce(kafka_cluster.bootstrap, topic, before, acks="all")
    kafka_cluster.kill(2)
    try:
        status = kafka_cluster.status()
        assert "node 2 (broker) stopped" in status.stdout
        # acks=all with min.insync.replicas=2: two live replicas are enough to keep writing.
        after = [(f"u{i}".encode(), f"after-{i}".encode()) for i in range(30)]
        produce(kafka_cluster.bootstrap, topic, after, acks="all")
        got = consume(kafka_cluster.bootstrap, topic, group_id, len(before) + len(after))
        assert sorted(got) == sorted(before + after)
        leaders = admin.list_topics(topic=topic, timeout=10).topics[topic].partitions
        assert all(p.leader in (1, 3) for p in leaders.values())
    finally:
        # Whole again for any later test that shares the session's cluster.
        kafka_cluster.restart(2)
    meta = admin.list_topics(timeout=10)
    assert sorted(meta.brokers) == [1, 2, 3]
