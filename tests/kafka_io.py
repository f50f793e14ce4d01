"""Helpers for tests that talk to a real Kafka: kafka.sh, topics, produce, consume.

Imported as ``tests.kafka_io`` (tests/ is a package); the fixtures in tests/conftest.py are
built from these.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic

from worker.kafka_connection import local
from worker.tools.kafka_config import producer_config as tool_producer_config

ROOT = Path(__file__).resolve().parent.parent
KAFKA_SH = ROOT / "deploy" / "local" / "kafka.sh"
# Generous: on a busy 2-core machine a 3-broker cluster takes ~20-40 s to format and start.
KAFKA_SH_TIMEOUT = 300


def kafka_sh(
    *args: str, check: bool = True, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run deploy/local/kafka.sh; on failure the error carries its stderr (the cause)."""
    done = subprocess.run(
        [str(KAFKA_SH), *args],
        capture_output=True,
        text=True,
        timeout=KAFKA_SH_TIMEOUT,
        stdin=subprocess.DEVNULL,
        env={**os.environ, **env} if env else None,
    )
    if check and done.returncode != 0:
        raise RuntimeError(f"kafka.sh {' '.join(args)} failed ({done.returncode}):\n{done.stderr}")
    return done


def bootstrap_of(stdout: str) -> str:
    """The value of the ``KAFKA_BOOTSTRAP=...`` line that kafka.sh prints last."""
    last = stdout.strip().splitlines()[-1]
    key, _, value = last.partition("=")
    if key != "KAFKA_BOOTSTRAP" or not value:
        raise RuntimeError(f"kafka.sh printed no KAFKA_BOOTSTRAP line last: {stdout!r}")
    return value


@dataclass
class LocalKafka:
    """A broker or cluster that kafka.sh runs in ``state_dir``; kill/restart act on one node."""

    state_dir: Path
    bootstrap: str
    brokers: int

    @classmethod
    def start(cls, state_dir: Path, brokers: int = 1) -> LocalKafka:
        """Start (format first) a local Kafka in ``state_dir`` and wait until it serves metadata."""
        _stop_when_gone(os.getpid(), state_dir)
        done = kafka_sh("start", "--brokers", str(brokers), "--dir", str(state_dir))
        return cls(state_dir=state_dir, bootstrap=bootstrap_of(done.stdout), brokers=brokers)

    def stop(self) -> None:
        kafka_sh("stop", "--dir", str(self.state_dir))

    def kill(self, node: int) -> None:
        """SIGKILL one node (brokers are 1..N; node 0 is a cluster's controller)."""
        kafka_sh("kill", "--node", str(node), "--dir", str(self.state_dir))

    def restart(self, node: int) -> None:
        """Start node ``node`` again with its properties and data; returns once it serves."""
        kafka_sh("restart", "--node", str(node), "--dir", str(self.state_dir))

    def status(self) -> subprocess.CompletedProcess[str]:
        return kafka_sh("status", "--dir", str(self.state_dir), check=False)

    def create_topic(self, partitions: int = 1, replication: int = 1, **config: str) -> str:
        """A new uuid-named topic on this broker or cluster."""
        return create_topic(self.bootstrap, partitions, replication, config)


def _stop_when_gone(pid: int, state_dir: Path) -> None:
    """Stop the broker in ``state_dir`` once process ``pid`` is gone, however it ended.

    A session fixture's teardown does not run when pytest is killed (a CI timeout, SIGKILL); on a
    shared machine the JVMs would then run on. A detached shell polls the pid and stops them.
    """
    stop = shlex.join([str(KAFKA_SH), "stop", "--dir", str(state_dir)])
    watch = f"while kill -0 {pid}; do sleep 2; done; exec {stop}"
    subprocess.Popen(
        ["bash", "-c", watch],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def create_topic(
    bootstrap: str,
    partitions: int = 1,
    replication: int = 1,
    config: dict[str, str] | None = None,
    *,
    name: str | None = None,
) -> str:
    """Create a topic (uuid-named unless ``name``) and wait until every partition has a leader."""
    name = name or f"t-{uuid.uuid4().hex[:16]}"
    admin = AdminClient(local(bootstrap).librdkafka())
    topic = NewTopic(
        name, num_partitions=partitions, replication_factor=replication, config=config or {}
    )
    admin.create_topics([topic])[name].result(timeout=30)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        meta = admin.list_topics(topic=name, timeout=10).topics.get(name)
        if (
            meta is not None
            and meta.error is None
            and len(meta.partitions) == partitions
            and all(p.leader >= 0 for p in meta.partitions.values())
        ):
            return name
        time.sleep(0.1)
    raise RuntimeError(f"topic {name} has no leader for every partition after 30 s")


def producer_config(bootstrap: str, **extra: object) -> dict[str, object]:
    """The tools' producer settings (murmur2_random, idempotent) plus ``extra``."""
    return {**tool_producer_config(local(bootstrap)), **extra}


def produce(
    bootstrap: str, topic: str, records: Iterable[tuple[bytes | None, bytes]], **extra: object
) -> None:
    """Produce ``(key, value)`` records, wait until all are acknowledged; raise on any failure."""
    producer = Producer(producer_config(bootstrap, **extra))
    failures: list[KafkaError] = []

    def delivered(err: KafkaError | None, _msg: object) -> None:
        if err is not None:
            failures.append(err)

    count = 0
    for key, value in records:
        producer.produce(topic, value=value, key=key, on_delivery=delivered)
        producer.poll(0)
        count += 1
    left = producer.flush(120)
    if left or failures:
        raise RuntimeError(f"{left} of {count} records undelivered, failures: {failures[:3]}")


def produce_at(
    bootstrap: str, topic: str, records: Iterable[tuple[bytes | None, bytes]], timestamp_ms: int
) -> None:
    """Produce with a given record timestamp (CreateTime): a producer whose clock is off."""
    producer = Producer(producer_config(bootstrap))
    failures: list[KafkaError] = []

    def delivered(err: KafkaError | None, _msg: object) -> None:
        if err is not None:
            failures.append(err)

    for key, value in records:
        producer.produce(topic, value=value, key=key, timestamp=timestamp_ms, on_delivery=delivered)
    if producer.flush(60) or failures:
        raise RuntimeError(f"records at {timestamp_ms} undelivered, failures: {failures[:3]}")


def consume(
    bootstrap: str,
    topic: str,
    group_id: str,
    count: int,
    *,
    timeout: float = 60.0,
    alive: subprocess.Popen[bytes] | None = None,
) -> list[tuple[bytes | None, bytes]]:
    """Read ``count`` records from the earliest offset (fewer if ``timeout`` runs out first).

    With ``alive``, stop early when that process (the producer-side program under test) exits.
    """
    consumer = Consumer(
        {
            **local(bootstrap).librdkafka(),
            "group.id": group_id,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    got: list[tuple[bytes | None, bytes]] = []
    deadline = time.monotonic() + timeout
    try:
        while len(got) < count and time.monotonic() < deadline:
            if alive is not None and alive.poll() is not None:
                break
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            error = msg.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    continue
                raise RuntimeError(f"consume {topic}: {error}")
            got.append((msg.key(), msg.value() or b""))
    finally:
        consumer.close()
    return got


def topic_size(bootstrap: str, topic: str) -> int:
    """Records in ``topic`` now (high minus low watermark, summed): proves "and no more" at once."""
    consumer = Consumer({**local(bootstrap).librdkafka(), "group.id": f"t-{uuid.uuid4().hex}"})
    try:
        meta = consumer.list_topics(topic, timeout=10).topics[topic]
        ends = [
            consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            for p in meta.partitions
        ]
    finally:
        consumer.close()
    return sum(high - low for low, high in ends)


def topic_config(bootstrap: str, topic: str) -> dict[str, str]:
    """A topic's effective configuration as the broker reports it."""
    admin = AdminClient(local(bootstrap).librdkafka())
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic)
    entries = admin.describe_configs([resource])[resource].result(timeout=30)
    return {name: str(entry.value) for name, entry in entries.items()}
