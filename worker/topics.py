"""Start-up check of the Kafka side: the broker answers and the worker's topics exist and fit.

Faust subscribes to the events topic but does not create it, and a table's changelog must have
as many partitions as its source topic, so the worker creates missing topics with PARTITIONS
partitions and refuses to start when the events topic has another count.
"""

from __future__ import annotations

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from worker.settings import Settings


class TopicError(RuntimeError):
    """The broker cannot be reached or a topic does not fit the settings (one-line message)."""


def admin_config(settings: Settings) -> dict[str, str | int | float | bool]:
    """librdkafka settings for the admin client, from the worker's settings."""
    config: dict[str, str | int | float | bool] = {
        "bootstrap.servers": settings.kafka_bootstrap,
        "security.protocol": settings.security_protocol,
    }
    if settings.security_protocol.startswith("SASL"):
        config["sasl.mechanism"] = settings.sasl_mechanism
        config["sasl.username"] = settings.sasl_username or ""
        pw = settings.sasl_password
        config["sasl.password"] = pw.get_secret_value() if pw else ""
    for value, key in (
        (settings.ssl_ca_file, "ssl.ca.location"),
        (settings.ssl_cert_file, "ssl.certificate.location"),
        (settings.ssl_key_file, "ssl.key.location"),
    ):
        if value is not None:
            config[key] = str(value)
    return config


def ensure_topics(settings: Settings, timeout_s: float = 30.0) -> list[str]:
    """Create missing topics; check the events topic's partitions. Returns the names created."""
    admin = AdminClient(admin_config(settings))
    try:
        metadata = admin.list_topics(timeout=timeout_s)
    except KafkaException as exc:
        raise TopicError(
            f"CLICKSCORE_KAFKA_BOOTSTRAP={settings.kafka_bootstrap}: broker not reachable ({exc})"
        ) from None
    wanted = [
        settings.events_topic,
        settings.dlq_topic,
        settings.propensity_topic,
        settings.churn_topic,
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
    futures = admin.create_topics(
        [NewTopic(t, settings.partitions, settings.replication_factor) for t in missing],
        operation_timeout=timeout_s,
    )
    for topic, future in futures.items():
        try:
            future.result(timeout=timeout_s)
        except KafkaException as exc:
            if "TOPIC_ALREADY_EXISTS" not in str(exc):  # another worker won the race: fine
                raise TopicError(f"cannot create topic {topic}: {exc}") from None
    return missing
