"""Placeholder demo step: one record through the local broker and back, with confluent-kafka.

Usage: python deploy/local/demo_roundtrip.py --bootstrap 127.0.0.1:PORT  (``make demo`` runs it).
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic


def round_trip(bootstrap: str, timeout: float = 30.0) -> float:
    """Produce one record to a fresh topic and read it back; the seconds it took."""
    topic = f"demo.roundtrip.{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})  # kept alive until the topic exists
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(timeout=timeout)
    value = f"hello {uuid.uuid4().hex}".encode()
    started = time.monotonic()
    producer = Producer({"bootstrap.servers": bootstrap, "partitioner": "murmur2_random"})
    producer.produce(topic, key=b"demo", value=value)
    if producer.flush(timeout):
        raise RuntimeError(f"the record to {topic} was not acknowledged in {timeout} s")
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": topic, "auto.offset.reset": "earliest"}
    )
    consumer.subscribe([topic])
    try:
        while time.monotonic() - started < timeout:
            msg = consumer.poll(0.5)
            if msg is not None and msg.error() is None and msg.value() == value:
                return time.monotonic() - started
    finally:
        consumer.close()
    raise RuntimeError(f"the record did not come back from {topic} within {timeout} s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", required=True, help="host:port[,host:port...]")
    args = parser.parse_args()
    try:
        seconds = round_trip(args.bootstrap)
    except Exception as exc:  # one line for the person at the terminal, non-zero exit
        print(f"demo: {exc}", file=sys.stderr)
        return 1
    print(f"demo: round trip through {args.bootstrap} in {seconds * 1000:.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
