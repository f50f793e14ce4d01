"""What the command-line clients (replay, alerts) add to the one Kafka connection.

The connection itself (bootstrap, TLS, SASL, their checks and defaults) is
:class:`worker.kafka_connection.KafkaConnection`, read by :func:`worker.settings.load_kafka`.
"""

from __future__ import annotations

from worker.kafka_connection import KafkaConnection
from worker.settings import TOPIC_RULE, SettingsError, legal_topic

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
