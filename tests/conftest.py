"""Shared fixtures: a real Kafka broker (deploy/local/kafka.sh) per test session, topics and groups.

The broker starts once per session in a pytest tmp dir (or the one named by ``KAFKA_BOOTSTRAP``
is reused) and stops at session end. A test that needs Kafka asks for ``kafka_bootstrap``; it never
skips when no broker is around, it starts one. The 3-broker cluster starts only when a test
asks for it.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator

import pytest

from tests.kafka_io import LocalKafka, create_topic

pytest_plugins = ["tests.worker_fixtures"]


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Bootstrap servers of a real single-node Kafka: ``$KAFKA_BOOTSTRAP`` or one started here."""
    given = os.environ.get("KAFKA_BOOTSTRAP")
    if given:
        yield given
        return
    kafka = LocalKafka.start(tmp_path_factory.mktemp("kafka"), brokers=1)
    try:
        yield kafka.bootstrap
    finally:
        kafka.stop()


@pytest.fixture(scope="session")
def kafka_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalKafka]:
    """A controller + 3 brokers (replication 3, min ISR 2), started only for tests that ask."""
    kafka = LocalKafka.start(tmp_path_factory.mktemp("kafka-cluster"), brokers=3)
    try:
        yield kafka
    finally:
        kafka.stop()


@pytest.fixture
def topic_factory(kafka_bootstrap: str) -> Callable[..., str]:
    """``topic_factory(partitions=1, replication=1, **config) -> name`` on the session broker."""

    def create(partitions: int = 1, replication: int = 1, **config: str) -> str:
        return create_topic(kafka_bootstrap, partitions, replication, config)

    return create


@pytest.fixture
def group_id() -> str:
    """A consumer group of its own per test, so committed offsets never leak between tests."""
    return f"g-{uuid.uuid4().hex[:16]}"
