"""A paced producer in a background thread, so events keep flowing while a test injects faults.

The test opens a gate (:meth:`PacedProducer.release`) a slice at a time: events up to the gate go
out at ``rate`` per second, then the producer waits. That makes "events flow during the change"
hold on a slow machine too: the test starts the change, then releases the next slice.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

from confluent_kafka import KafkaError, Producer

from tests.kafka_io import producer_config


class PacedProducer:
    """Produce ``records`` to ``topic`` in order, at most ``rate`` per second, up to the gate."""

    def __init__(
        self, bootstrap: str, topic: str, records: Sequence[tuple[bytes, bytes]], rate: float
    ) -> None:
        self.topic = topic
        self.records = records
        self.rate = rate
        # acks=all + idempotence: a broker restart mid-stream must not lose or duplicate input.
        self._producer = Producer(producer_config(bootstrap, acks="all"))
        self._gate = 0
        self._sent = 0
        self._failures: list[KafkaError] = []
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="paced-producer", daemon=True)
        self._thread.start()

    @property
    def sent(self) -> int:
        """Records handed to the client so far."""
        with self._cond:
            return self._sent

    def release(self, upto: int) -> None:
        """Let records ``[0, upto)`` go out (at the pace)."""
        with self._cond:
            self._gate = max(self._gate, min(upto, len(self.records)))
            self._cond.notify_all()

    def wait_sent(self, count: int, timeout: float = 120.0) -> None:
        """Block until ``count`` records were handed to the client."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._sent >= count, timeout):
                raise AssertionError(f"producer sent {self._sent} of {count} in {timeout} s")

    def finish(self, timeout: float = 180.0) -> None:
        """Release everything, wait until every record is acknowledged; raise on any failure."""
        self.release(len(self.records))
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise AssertionError(f"producer still sending after {timeout} s ({self.sent} sent)")
        left = self._producer.flush(timeout)
        if left or self._failures:
            raise AssertionError(f"{left} records undelivered; failures: {self._failures[:3]}")

    def _delivered(self, err: KafkaError | None, _msg: object) -> None:
        if err is not None:
            self._failures.append(err)

    def _run(self) -> None:
        started = time.monotonic()
        for i, (key, value) in enumerate(self.records):
            with self._cond:
                self._cond.wait_for(lambda i=i: i < self._gate)
            # Pace against the clock since the start of this slice, not per record (sleep jitter).
            ahead = started + i / self.rate - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)
            else:
                started = time.monotonic() - i / self.rate  # after a wait at the gate: no burst
            self._producer.produce(self.topic, value=value, key=key, on_delivery=self._delivered)
            self._producer.poll(0)
            with self._cond:
                self._sent = i + 1
                self._cond.notify_all()
        while len(self._producer) > 0:
            self._producer.poll(0.1)
