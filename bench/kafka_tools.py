"""Kafka plumbing for the pipeline benchmark: a broker, synthetic events, paced producing, and
consumers that measure (the raw ceiling; latency of score records)."""

from __future__ import annotations

import contextlib
import queue
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import msgspec
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from schemas.event import Event, decode_event, encode_event
from worker.kafka_connection import local
from worker.tools.kafka_config import producer_config
from worker.tools.replay import TokenBucket

ROOT = Path(__file__).resolve().parent.parent
KAFKA_SH = ROOT / "deploy" / "local" / "kafka.sh"
Record = tuple[str, bytes, bytes]  # (event_id, key, value)


@contextlib.contextmanager
def broker(bootstrap: str | None, state_dir: Path) -> Iterator[str]:
    """``bootstrap`` as given, or a broker of our own (deploy/local/kafka.sh) stopped afterwards."""
    if bootstrap:
        yield bootstrap
        return
    started = subprocess.run(
        [str(KAFKA_SH), "start", "--dir", str(state_dir)], capture_output=True, text=True
    )
    if started.returncode != 0:
        raise RuntimeError(f"kafka.sh start failed: {started.stderr[-2000:]}")
    try:
        yield started.stdout.strip().splitlines()[-1].removeprefix("KAFKA_BOOTSTRAP=")
    finally:
        subprocess.run([str(KAFKA_SH), "stop", "--dir", str(state_dir)], capture_output=True)


def create_topic(bootstrap: str, partitions: int) -> str:
    """A fresh topic with ``partitions`` partitions (replication 1)."""
    name = f"bench-{uuid.uuid4().hex[:10]}"
    admin = AdminClient(local(bootstrap).librdkafka())
    for future in admin.create_topics([NewTopic(name, partitions, 1)]).values():
        future.result(30)
    return name


def events(n: int, users: int, start: int = 0) -> list[Record]:
    """``n`` events spread over ``users`` users, ids and times continuing from ``start``."""
    kinds = ("view", "click", "view", "add_to_cart", "view", "search", "purchase")
    out: list[Record] = []
    for seq in range(start, start + n):
        user = f"u{seq % users:06d}"
        event = Event(
            event_id=f"bench-{seq}",
            user_id=user,
            event_type=kinds[seq % len(kinds)],
            ts_ms=1_767_571_353_381 + 1_000 * seq,
            session_id=f"{user}-s{seq // (users * 10)}",
            item_id=f"i{seq % 5000}",
            category_id=f"c{seq % 20}",
            price=19.99,
        )
        out.append((event.event_id, user.encode(), encode_event(event)))
    return out


def produce(
    bootstrap: str, topic: str, records: list[Record], rate: float | None = None
) -> dict[str, float]:
    """Produce ``records`` (paced at ``rate``/s when given); return event id -> send time (s)."""
    producer = Producer(producer_config(local(bootstrap)))
    bucket = TokenBucket(rate) if rate else None
    sent: dict[str, float] = {}
    failed: list[str] = []

    def delivered(err: KafkaError | None, _msg: object) -> None:
        if err is not None:
            failed.append(str(err))

    for event_id, key, value in records:
        if bucket is not None and (wait := bucket.delay(time.monotonic())) > 0:
            time.sleep(wait)
        while True:
            try:
                producer.produce(topic, value=value, key=key, on_delivery=delivered)
                break
            except BufferError:
                producer.poll(0.05)
        sent[event_id] = time.time()  # = the record's CreateTime, taken by librdkafka now
        producer.poll(0)
    left = producer.flush(60)
    if left or failed:
        raise RuntimeError(f"bench produce: {left} undelivered, errors {failed[:3]}")
    return sent


def raw_ceiling(bootstrap: str, topic: str, n: int) -> float:
    """Seconds for a plain confluent-kafka consumer to read and decode ``n`` events."""
    consumer = Consumer(
        {
            **local(bootstrap).librdkafka(),
            "group.id": f"bench-raw-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    seen, first = 0, 0.0
    deadline = time.monotonic() + 300
    try:
        while seen < n and time.monotonic() < deadline:
            for msg in consumer.consume(num_messages=1000, timeout=0.5):
                if msg.error() is not None:
                    continue
                if seen == 0:
                    first = time.perf_counter()
                decode_event(msg.value() or b"")
                seen += 1
    finally:
        consumer.close()
    if seen < n:
        raise RuntimeError(f"raw consumer saw {seen} of {n} events in 300 s")
    return time.perf_counter() - first


class ScoreLatency:
    """Consumes the scores topic from its current end in a thread; latency per known event id."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self._consumer = Consumer(
            {**local(bootstrap).librdkafka(), "group.id": f"bench-lat-{uuid.uuid4().hex[:8]}"}
        )
        partitions = self._consumer.list_topics(topic, timeout=10).topics[topic].partitions
        # Explicit end offsets, read now: records produced after this call are all seen.
        assignment = []
        for p in partitions:
            _, high = self._consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            assignment.append(TopicPartition(topic, p, high))
        self._consumer.assign(assignment)
        self._stop = threading.Event()
        self._pending: queue.SimpleQueue[tuple[str, float]] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        decoder = msgspec.json.Decoder(dict[str, object])
        while not self._stop.is_set():
            # poll(), not consume(500, timeout): consume waits for 500 records or the timeout, so
            # at a few hundred records/s each record was stamped up to 0.2 s late (this alone
            # was most of the p50 of ~160 ms the bench used to report).
            msg = self._consumer.poll(0.1)
            if msg is not None and msg.error() is None:
                now = time.time()
                event_id = str(decoder.decode(msg.value() or b"{}").get("event_id"))
                self._pending.put((event_id, now))

    def collect(self, sent: dict[str, float], timeout: float) -> tuple[list[float], int]:
        """Wait for a score of every event in ``sent``; return latencies (s) and how many came."""
        deadline = time.monotonic() + timeout
        got: dict[str, float] = {}
        while len(got) < len(sent) and time.monotonic() < deadline:
            try:
                event_id, received = self._pending.get(timeout=0.2)
            except queue.Empty:
                continue
            if event_id in sent and event_id not in got:
                got[event_id] = received - sent[event_id]
        return list(got.values()), len(got)

    def close(self) -> None:
        """Stop the thread and the consumer."""
        self._stop.set()
        self._thread.join(5)
        self._consumer.close()
