"""What the command-line clients (replay, alerts) add to the one Kafka connection.

The connection itself (bootstrap, TLS, SASL, their checks and defaults) is
:class:`worker.kafka_connection.KafkaConnection`, read by :func:`worker.settings.load_kafka`.
"""

from __future__ import annotations

import os

from worker.kafka_connection import KafkaConnection
from worker.settings import TOPIC_RULE, SettingsError, default, env_name, legal_topic

#: Where a tool's bootstrap comes from, for messages.
BOOTSTRAP_SOURCE = "--bootstrap / CLICKSCORE_KAFKA_BOOTSTRAP"


def producer_config(connection: KafkaConnection) -> dict[str, str | int]:
    """Producer settings: murmur2 keys so a user lands where Faust's own producer puts it."""
    config: dict[str, str | int] = dict(connection.librdkafka())
    # librdkafka's default (crc32) disagrees with Java clients and aiokafka; see docs/contracts.md.
    config["partitioner"] = "murmur2_random"
    config["linger.ms"] = 5
    config["enable.idempotence"] = "true"  # a retried batch is not written twice
    return config


def check_reachable(connection: KafkaConnection, name: str, timeout: float = 10.0) -> None:
    """Fail at start, in one message naming the setting, when no broker answers.

    A throwaway admin client with librdkafka's own logging off does the probe, so an unreachable
    broker gives one clear line instead of a connection-refused line every 50 ms.
    """
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({**connection.librdkafka(), "log_level": 0})
    try:
        admin.list_topics(timeout=timeout)
    except KafkaException as exc:
        raise SettingsError(
            f"cannot reach Kafka at {connection.kafka_bootstrap} ({name}): {exc.args[0].str()}"
        ) from None


def check_topic(topic: str, name: str) -> str:
    """The worker's topic-name rule (:func:`worker.settings.legal_topic`) for a tool's topic."""
    if not legal_topic(topic):
        raise SettingsError(f"{name}={topic!r}: not a legal Kafka topic name ({TOPIC_RULE})")
    return topic


def ensure_topic(connection: KafkaConnection, topic: str) -> None:
    """Create a missing topic with the worker's partition count (CLICKSCORE_PARTITIONS).

    Otherwise the broker creates it on the first produce with one partition, and a worker
    started alongside (as the README does) then refuses it: its state changelog must have as
    many partitions as the events topic.
    """
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient, NewTopic

    counts = []
    for setting in ("partitions", "replication_factor"):
        name = env_name(setting)
        value = os.environ.get(name) or str(default(setting))
        if not value.isdigit() or int(value) < 1:
            raise SettingsError(f"{name}={value}: must be a whole number >= 1")
        counts.append(int(value))
    admin = AdminClient({**connection.librdkafka(), "log_level": 0})
    if topic in admin.list_topics(timeout=10).topics:
        return
    future = admin.create_topics([NewTopic(topic, counts[0], counts[1])])[topic]
    try:
        future.result(timeout=30)
    except KafkaException as exc:
        if "TOPIC_ALREADY_EXISTS" not in str(exc):  # the worker created it meanwhile: fine
            raise SettingsError(f"cannot create topic {topic}: {exc}") from None
