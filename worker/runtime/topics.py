"""Start-up check of the Kafka side: the broker answers and the worker's topics exist and fit.

Faust subscribes to the events topic but does not create it, and a table's changelog must have
as many partitions as its source topic, so the worker creates missing topics with PARTITIONS
partitions and refuses to start when the events topic has another count.
"""

from __future__ import annotations

import re
import time
from typing import Any

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, ClusterMetadata, NewTopic

from worker.settings import Settings


class TopicError(RuntimeError):
    """The broker cannot be reached or a topic does not fit the settings (one-line message)."""


def _list_topics(settings: Settings, timeout_s: float) -> tuple[AdminClient, ClusterMetadata]:
    """The cluster's metadata, or a one-line :class:`TopicError` naming the setting at fault.

    librdkafka retries refused credentials and untrusted certificates until the metadata call
    times out, reporting only "broker transport failure", and logs one line per retry to stderr.
    So its log is off, its error callback collects the real cause, and the call is made in short
    slices so a refusal ends the start within seconds, in one line that names the setting.
    """
    errors: list[KafkaError] = []
    config: dict[str, Any] = {
        **settings.kafka.librdkafka(),
        "log_level": 0,
        "error_cb": errors.append,
    }
    admin = AdminClient(config)
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return admin, admin.list_topics(timeout=min(2.0, max(0.1, deadline - time.monotonic())))
        except KafkaException as exc:
            admin.poll(0)  # serves the error callback
            cause = _refusal(settings, errors)
            if cause:
                raise TopicError(cause) from None
            if time.monotonic() >= deadline:
                raise TopicError(
                    f"CLICKSCORE_KAFKA_BOOTSTRAP={settings.kafka_bootstrap}: broker not reachable "
                    f"({exc})"
                ) from None


def _refusal(settings: Settings, errors: list[KafkaError]) -> str | None:
    # The broker answered but refused us: name the credentials or the CA file (never the password).
    for err in errors:
        if err.code() == KafkaError._AUTHENTICATION:
            return (
                f"CLICKSCORE_SASL_USERNAME={settings.sasl_username} / CLICKSCORE_SASL_PASSWORD: "
                f"Kafka refused the credentials ({_last_part(err.str())})"
            )
        if err.code() == KafkaError._SSL:
            return (
                f"CLICKSCORE_SSL_CA_FILE={settings.ssl_ca_file or '(system CAs)'}: the broker's "
                f"certificate is not trusted or TLS failed ({_last_part(err.str())})"
            )
    return None


def _last_part(message: str) -> str:
    # "sasl_ssl://host:port/bootstrap: SASL authentication error: ... (after 3ms in state X)"
    # -> "SASL authentication error: ..."
    return re.sub(r"^\S+://\S+: ", "", message).split(" (after ", 1)[0]


def ensure_topics(settings: Settings, timeout_s: float = 30.0) -> list[str]:
    """Create missing topics; check the events topic's partitions. Returns the names created."""
    admin, metadata = _list_topics(settings, timeout_s)
    wanted = [
        settings.events_topic,
        settings.dlq_topic,
        settings.propensity_topic,
        settings.churn_topic,
        settings.outcomes_topic,
        *([settings.scores_topic] if settings.scores_topic else []),
    ]
    events = metadata.topics.get(settings.events_topic)
    if events is not None and len(events.partitions) != settings.partitions:
        raise TopicError(
            f"CLICKSCORE_PARTITIONS={settings.partitions}: topic {settings.events_topic} has "
            f"{len(events.partitions)} partitions (they must match: the state changelog is "
            "partitioned like the events topic)"
        )
    missing = [t for t in dict.fromkeys(wanted) if t not in metadata.topics]
    if not missing:
        return []
    # Dead letters hold raw records (user ids included): they expire, they are not an archive.
    configs = {settings.dlq_topic: {"retention.ms": str(settings.dlq_retention_ms)}}
    futures = admin.create_topics(
        [
            NewTopic(t, settings.partitions, settings.replication_factor, config=configs.get(t, {}))
            for t in missing
        ],
        operation_timeout=timeout_s,
    )
    for topic, future in futures.items():
        try:
            future.result(timeout=timeout_s)
        except KafkaException as exc:
            if "TOPIC_ALREADY_EXISTS" not in str(exc):  # another worker won the race: fine
                raise TopicError(f"cannot create topic {topic}: {exc}") from None
    return missing
