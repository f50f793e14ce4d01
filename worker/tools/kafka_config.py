"""librdkafka settings for the command-line clients (replay, alerts) from CLICKSCORE_* variables.

The worker's Faust app reads the same variables through its own settings object; these small
clients only need the connection part, so they read just that and fail on a bad value at start.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Final

from worker.settings import SettingsError

DEFAULT_BOOTSTRAP: Final = "127.0.0.1:9092"
PROTOCOLS: Final = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
MECHANISMS: Final = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


def bootstrap_servers(option: str | None, env: Mapping[str, str] | None = None) -> str:
    """``--bootstrap`` if given, else CLICKSCORE_KAFKA_BOOTSTRAP, else the local default."""
    env = os.environ if env is None else env
    value = option if option else env.get("CLICKSCORE_KAFKA_BOOTSTRAP", DEFAULT_BOOTSTRAP)
    name = "--bootstrap" if option else "CLICKSCORE_KAFKA_BOOTSTRAP"
    for server in value.split(","):
        host, _, port = server.strip().rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise SettingsError(f"{name}={value!r}: expected comma-separated host:port")
    return value


def client_config(bootstrap: str, env: Mapping[str, str] | None = None) -> dict[str, str]:
    """Connection settings (bootstrap, TLS, SASL) shared by our producers and consumers."""
    env = os.environ if env is None else env
    protocol = env.get("CLICKSCORE_SECURITY_PROTOCOL", "PLAINTEXT") or "PLAINTEXT"
    if protocol not in PROTOCOLS:
        raise SettingsError(
            f"CLICKSCORE_SECURITY_PROTOCOL={protocol!r}: expected one of {PROTOCOLS}"
        )
    config = {"bootstrap.servers": bootstrap, "security.protocol": protocol}
    if protocol.startswith("SASL"):
        mechanism = env.get("CLICKSCORE_SASL_MECHANISM", "SCRAM-SHA-512") or "SCRAM-SHA-512"
        if mechanism not in MECHANISMS:
            raise SettingsError(
                f"CLICKSCORE_SASL_MECHANISM={mechanism!r}: expected one of {MECHANISMS}"
            )
        for name in ("CLICKSCORE_SASL_USERNAME", "CLICKSCORE_SASL_PASSWORD"):
            if not env.get(name):
                raise SettingsError(
                    f"{name} is required with CLICKSCORE_SECURITY_PROTOCOL={protocol}"
                )
        config["sasl.mechanism"] = mechanism
        config["sasl.username"] = env["CLICKSCORE_SASL_USERNAME"]
        config["sasl.password"] = env["CLICKSCORE_SASL_PASSWORD"]
    for name, key in (
        ("CLICKSCORE_SSL_CA_FILE", "ssl.ca.location"),
        ("CLICKSCORE_SSL_CERT_FILE", "ssl.certificate.location"),
        ("CLICKSCORE_SSL_KEY_FILE", "ssl.key.location"),
    ):
        path = env.get(name)
        if path:
            if not os.path.isfile(path):
                raise SettingsError(f"{name}={path!r}: no such file")
            config[key] = path
    return config


def producer_config(bootstrap: str, env: Mapping[str, str] | None = None) -> dict[str, str | int]:
    """Producer settings: murmur2 keys so a user lands where Faust's own producer puts it."""
    config: dict[str, str | int] = dict(client_config(bootstrap, env))
    # librdkafka's default (crc32) disagrees with Java clients and aiokafka; see docs/contracts.md.
    config["partitioner"] = "murmur2_random"
    config["linger.ms"] = 5
    config["enable.idempotence"] = "true"  # a retried batch is not written twice
    return config


def check_reachable(config: dict[str, str], name: str, timeout: float = 10.0) -> None:
    """Fail at start, in one message naming the setting, when no broker answers.

    A throwaway admin client with librdkafka's own logging off does the probe, so an unreachable
    broker gives one clear line instead of a connection-refused line every 50 ms.
    """
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({**config, "log_level": 0})
    try:
        admin.list_topics(timeout=timeout)
    except KafkaException as exc:
        raise SettingsError(
            f"cannot reach Kafka at {config['bootstrap.servers']} ({name}): {exc.args[0].str()}"
        ) from None


def check_topic(topic: str, name: str) -> str:
    """Kafka's topic-name rule, checked at start rather than on the first produce."""
    legal = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")
    if not 0 < len(topic) <= 249 or not set(topic) <= legal or topic in (".", ".."):
        raise SettingsError(
            f"{name}={topic!r}: not a legal Kafka topic name ([a-zA-Z0-9._-], <= 249)"
        )
    return topic
