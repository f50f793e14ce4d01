"""The local broker works for both client stacks we use: confluent-kafka and Faust (aiokafka)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient

from tests.kafka_io import consume, produce

pytestmark = pytest.mark.kafka

HERE = Path(__file__).resolve().parent


def test_confluent_round_trip(
    kafka_bootstrap: str, topic_factory: Callable[..., str], group_id: str
) -> None:
    topic = topic_factory(partitions=3)
    sent = [(f"user-{i % 4}".encode(), f'{{"n":{i}}}'.encode()) for i in range(20)]
    produce(kafka_bootstrap, topic, sent)
    got = consume(kafka_bootstrap, topic, group_id, len(sent))
    assert sorted(got) == sorted(sent)
    # murmur2_random keeps one key in one partition, as the worker's own producer does.
    by_key: dict[bytes, set[int]] = {}
    for key, partition in _partitions_seen(kafka_bootstrap, topic, len(sent)):
        by_key.setdefault(key, set()).add(partition)
    assert all(len(parts) == 1 for parts in by_key.values()), by_key


def test_faust_agent_forwards(
    kafka_bootstrap: str, topic_factory: Callable[..., str], group_id: str, tmp_path: Path
) -> None:
    source, sink = topic_factory(), topic_factory()
    env = {
        **os.environ,
        "FORWARD_APP_ID": f"forward-{uuid.uuid4().hex[:8]}",
        "FORWARD_BOOTSTRAP": kafka_bootstrap,
        "FORWARD_SOURCE": source,
        "FORWARD_SINK": sink,
        "PYTHONPATH": str(HERE),
    }
    log = tmp_path / "faust.log"
    with log.open("wb") as out:
        worker = subprocess.Popen(
            [sys.executable, "-m", "faust", "-A", "faust_forward_app", "worker", "-l", "warn"],
            cwd=tmp_path,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    try:
        # Produced before the agent has its partition: a new group starts at the earliest offset.
        sent = [(b"u1", b'{"event":"forward me"}'), (b"u2", b"second")]
        produce(kafka_bootstrap, source, sent)
        got = consume(kafka_bootstrap, sink, group_id, len(sent), timeout=120.0, alive=worker)
        assert sorted(got) == sorted(sent), log.read_text(errors="replace")[-3000:]
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()


def _partitions_seen(bootstrap: str, topic: str, count: int) -> list[tuple[bytes, int]]:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"g-{uuid.uuid4().hex[:12]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    seen: list[tuple[bytes, int]] = []
    deadline = time.monotonic() + 60
    try:
        while len(seen) < count and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is not None and msg.error() is None:
                seen.append((msg.key() or b"", msg.partition() or 0))
    finally:
        consumer.close()
    return seen


def test_metadata_lists_one_broker(kafka_bootstrap: str) -> None:
    meta = AdminClient({"bootstrap.servers": kafka_bootstrap}).list_topics(timeout=10)
    assert len(meta.brokers) >= 1
    assert meta.cluster_id


def test_producer_reports_unknown_broker_as_an_error() -> None:
    """The delivery path really fails when nothing listens: the round trip above is not vacuous."""
    producer = Producer(
        {"bootstrap.servers": "127.0.0.1:1", "message.timeout.ms": 1500, "log_level": 0}
    )
    errors: list[object] = []
    producer.produce("nowhere", b"x", on_delivery=lambda err, _msg: errors.append(err))
    producer.flush(10)
    assert errors and errors[0] is not None
