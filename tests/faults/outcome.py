"""What the worker wrote under faults, read back from Kafka and held against the oracle.

:class:`Outputs` reads the scores, dead-letter and alert topics from the beginning until every
input event is accounted for (scored or dead-lettered), then to each partition's end, so late
duplicates are counted too. :meth:`Outcome.check` asserts the invariants; :meth:`Outcome.line`
is the one line each fault test prints.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from schemas.event import EventError, decode_event
from tests.faults.oracle import Oracle

TOLERANCE = 1e-4  # docs/contracts.md: streamed == offline within 1e-4


@dataclass
class Outcome:
    """Every record the worker wrote, grouped for the checks."""

    events_in: int
    scores: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # event_id -> records
    dead: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # event_id -> dead letters
    alerts: Counter[str] = field(default_factory=Counter)  # alert_id -> records
    recovery_s: float | None = None

    @property
    def duplicate_scores(self) -> int:
        """Score records beyond the first per event (at-least-once redelivery)."""
        return sum(len(v) - 1 for v in self.scores.values())

    @property
    def duplicate_alerts(self) -> int:
        """Alert records beyond the first per alert id."""
        return sum(n - 1 for n in self.alerts.values())

    def accounted(self, event_ids: set[str]) -> bool:
        """True when every event id was scored or dead-lettered."""
        return event_ids <= (self.scores.keys() | self.dead.keys())

    def line(self, name: str) -> str:
        """The summary line each fault test prints."""
        rec = "n/a" if self.recovery_s is None else f"{self.recovery_s:.1f}"
        return (
            f"[{name}] events in {self.events_in}, scored {len(self.scores)}, dead-lettered "
            f"{len(self.dead)}, duplicate alerts {self.duplicate_alerts} (of "
            f"{sum(self.alerts.values())} alert records), duplicate score records "
            f"{self.duplicate_scores}, recovery seconds {rec}"
        )

    def check(self, oracle: Oracle) -> None:
        """Invariant 4: nothing lost, every score (duplicates too) and alert id as if no fault."""
        ids = {e.event_id for e in oracle.events}
        missing = ids - self.scores.keys() - self.dead.keys()
        assert not missing, f"{len(missing)} events neither scored nor dead-lettered: {missing}"
        assert not self.dead, f"valid events dead-lettered: {sorted(self.dead)[:5]}"
        assert self.scores.keys() == ids, f"scores for unknown ids: {self.scores.keys() - ids}"
        wrong = []
        for event_id, records in self.scores.items():
            for i, r in enumerate(records):  # a redelivered event must score the same, too
                diff = max(
                    abs(r["p_purchase"] - oracle.p_purchase[event_id]),
                    abs(r["p_churn"] - oracle.p_churn[event_id]),
                )
                if diff > TOLERANCE:
                    wrong.append(f"{event_id}/{r['user_id']} record {i + 1} of {len(records)}")
        assert not wrong, f"{len(wrong)} score records differ from the reference: {wrong[:10]}"
        got = set(self.alerts)
        assert got == oracle.alert_ids, (
            f"alert ids: {len(got - oracle.alert_ids)} unexpected, "
            f"{len(oracle.alert_ids - got)} missing (of {len(oracle.alert_ids)})"
        )


class Outputs:
    """Readers for the worker's output topics (scores, dead letters, both alert topics)."""

    def __init__(self, bootstrap: str, topics: dict[str, str]) -> None:
        self.bootstrap = bootstrap
        self.topics = topics

    def collect(self, oracle: Oracle, timeout: float = 240.0) -> Outcome:
        """Read until every event is accounted for (or ``timeout``), then to the end."""
        out = Outcome(events_in=len(oracle.events))
        ids = {e.event_id for e in oracle.events}
        names = [self.topics[k] for k in ("scores_topic", "dlq_topic")]
        alert_names = [self.topics[k] for k in ("propensity_topic", "churn_topic")]
        consumer = _consumer(self.bootstrap, [*names, *alert_names])
        deadline = time.monotonic() + timeout
        try:
            while not out.accounted(ids) and time.monotonic() < deadline:
                _take(consumer, out, 0.5, self.topics)
            # Then to each partition's end, so duplicates written late are counted too.
            ends = _ends(consumer)
            while time.monotonic() < deadline and any(
                pos.offset < ends[(pos.topic, pos.partition)]
                for pos in consumer.position(list(consumer.assignment()))
            ):
                _take(consumer, out, 0.5, self.topics)
        finally:
            consumer.close()
        return out


def _consumer(bootstrap: str, topics: list[str]) -> Consumer:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"fault-read-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
        }
    )
    tps = []
    for topic in topics:
        meta = consumer.list_topics(topic, timeout=30).topics[topic]
        tps += [TopicPartition(topic, p, OFFSET_BEGINNING) for p in meta.partitions]
    consumer.assign(tps)
    return consumer


def _ends(consumer: Consumer) -> dict[tuple[str, int], int]:
    # An empty partition (low == high) is at its end already, whatever the position says.
    ends = {}
    for tp in consumer.assignment():
        low, high = consumer.get_watermark_offsets(tp, timeout=30)
        ends[(tp.topic, tp.partition)] = high if high > low else -(2**62)
    return ends


def _take(consumer: Consumer, out: Outcome, timeout: float, topics: dict[str, str]) -> None:
    for msg in consumer.consume(500, timeout):
        err = msg.error()
        if err is not None:
            # Transient client errors (a broker restarting) are retried by librdkafka itself.
            if err.fatal():
                raise AssertionError(f"reading {msg.topic()}: {err}")
            continue
        doc = json.loads(msg.value())
        if msg.topic() == topics["scores_topic"]:
            out.scores.setdefault(doc["event_id"], []).append(doc)
        elif msg.topic() == topics["dlq_topic"]:
            out.dead.setdefault(_dead_event_id(doc), []).append(doc)
        else:
            out.alerts[doc["alert_id"]] += 1


def _dead_event_id(doc: dict[str, Any]) -> str:
    # A dead letter keeps the original bytes; name it by its event id when one can be read.
    raw = base64.b64decode(doc.get("value_b64") or "")
    try:
        return decode_event(raw).event_id
    except EventError:
        src = doc["source"]
        return f"<unreadable {src['topic']}[{src['partition']}]@{src['offset']}>"
