"""``python -m worker export``: the events topic, from an offset or a time range, to an event file.

What the stream saw becomes a training set: ``python -m training train --events FILE`` reads the
file it writes (the generic format of docs/contracts.md: ``.parquet``, ``.csv`` or ``.csv.gz``,
by the name's extension; training/datasets/writer.py). Reads partitions by assignment (no consumer
group, nothing committed), from ``--from-offset`` or the first record at or after ``--since``, up
to the partition's end when the export started (or ``--to-offset`` / ``--until``, exclusive).
Only what the worker scores is written: records that decode as events under their own user id,
each event id once per user (a re-keyed copy or a redelivery appears twice in the topic). The
time range is the records' Kafka timestamps (when they were produced), which seek directly.
"""

from __future__ import annotations

import argparse
import os
import sys
import uuid
from pathlib import Path

from confluent_kafka import Consumer, KafkaError, TopicPartition
from rich.console import Console

from schemas.event import Event, EventError, decode_event, parse_timestamp
from worker.logs import librdkafka_logger
from worker.settings import SettingsError, default, env_name, load_kafka
from worker.tools.console import route_client_logs, say
from worker.tools.kafka_config import BOOTSTRAP_SOURCE, check_reachable, check_topic


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The export subcommand's options."""
    parser.add_argument("out", type=Path, help="output file: .parquet, .csv or .csv.gz")
    parser.add_argument("--topic", default=None, help="events topic (CLICKSCORE_EVENTS_TOPIC)")
    parser.add_argument(
        "--from-offset", type=int, default=None, help="first offset, every partition"
    )
    parser.add_argument("--to-offset", type=int, default=None, help="end offset (exclusive)")
    parser.add_argument(
        "--since", default=None, help="records produced at or after (RFC 3339 or ms)"
    )
    parser.add_argument("--until", default=None, help="records produced before (RFC 3339 or ms)")
    parser.add_argument(
        "--bootstrap", default=None, help="host:port[,...] (CLICKSCORE_KAFKA_BOOTSTRAP)"
    )


def run(args: argparse.Namespace) -> int:
    """Export; 0 on success, 1 when the range holds no event, 2 on a bad option or setting."""
    console = Console(stderr=True)
    route_client_logs(console, "export")
    try:
        topic = args.topic or os.environ.get(env_name("events_topic")) or default("events_topic")
        since, until = _time(args.since, "--since"), _time(args.until, "--until")
        if args.from_offset is not None and since is not None:
            raise SettingsError("--from-offset and --since: give one start, not both")
        events, skipped = read_topic(args, topic, since, until)
    except SettingsError as exc:
        say(console, f"export: {exc}", "red")
        return 2
    detail = ", ".join(f"{n} {why}" for why, n in skipped.items() if n) or "none"
    if not events:
        say(console, f"export: no events in that range of {topic} (skipped: {detail})", "yellow")
        return 1  # nothing written: an empty training set is a mistake, not a result
    try:
        written = _write(events, args.out)
    except (OSError, ValueError) as exc:
        say(console, f"export: {args.out}: {exc}", "red")
        return 2
    say(console, f"export: {written} events from {topic} to {args.out} (skipped: {detail})")
    return 0


def _time(value: str | None, option: str) -> int | None:
    if value is None:
        return None
    try:
        return parse_timestamp(int(value) if value.isdigit() else value)
    except (EventError, ValueError):
        raise SettingsError(f"{option}={value}: not RFC 3339 or epoch milliseconds") from None


def read_topic(
    args: argparse.Namespace, topic: str, since: int | None, until: int | None
) -> tuple[list[Event], dict[str, int]]:
    """The range's events in record-time order, and how many records were left out, by why."""
    connection = load_kafka(args.bootstrap)
    check_reachable(connection, BOOTSTRAP_SOURCE)
    check_topic(topic, "--topic")
    consumer = Consumer({
        **connection.librdkafka(),
        "group.id": f"clickscore-export-{uuid.uuid4().hex[:8]}",  # required by librdkafka only
        "enable.auto.commit": False,
        "enable.partition.eof": True,
        "logger": librdkafka_logger("export"),
    })  # fmt: skip
    try:
        ranges = _ranges(consumer, topic, args.from_offset, args.to_offset, since, until)
        records = _consume(consumer, ranges)
    finally:
        consumer.close()
    return select(records)


def _ranges(
    consumer: Consumer,
    topic: str,
    first: int | None,
    end: int | None,
    since: int | None,
    until: int | None,
) -> dict[int, tuple[int, int]]:
    """Per partition: [start, end) offsets, within what the partition holds now."""
    partitions = sorted(consumer.list_topics(topic, timeout=10).topics[topic].partitions)
    ranges = {}
    for p in partitions:
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
        start, stop = max(low, first or 0), high if end is None else min(high, end)
        for ts, is_start in ((since, True), (until, False)):
            if ts is not None:
                (found,) = consumer.offsets_for_times([TopicPartition(topic, p, ts)], timeout=10)
                at = high if found.offset < 0 else found.offset  # none at/after ts: the end
                start, stop = (max(start, at), stop) if is_start else (start, min(stop, at))
        if start < stop:
            ranges[p] = (start, stop)
    consumer.assign([TopicPartition(topic, p, start) for p, (start, _) in ranges.items()])
    return ranges


def _consume(
    consumer: Consumer, ranges: dict[int, tuple[int, int]]
) -> list[tuple[int, int, int, bytes | None, bytes | None]]:
    """(timestamp, partition, offset, key, value) of every record in ``ranges``."""
    records = []
    pending = dict(ranges)
    while pending:
        msg = consumer.poll(10.0)
        if msg is None:
            raise SettingsError(f"no record for 10 s with partitions {sorted(pending)} unfinished")
        p, offset = int(msg.partition() or 0), int(msg.offset() or 0)
        error = msg.error()
        if error is not None:
            if error.code() != KafkaError._PARTITION_EOF:
                raise SettingsError(f"reading the topic failed: {error}")
            if p in pending and offset >= pending[p][1]:
                del pending[p]  # the range ends on offsets no record holds (compaction, markers)
            continue
        if p not in pending or offset >= pending[p][1]:
            continue
        records.append((msg.timestamp()[1], p, offset, msg.key(), msg.value()))
        if offset + 1 >= pending[p][1]:
            del pending[p]
    return records


def select(
    records: list[tuple[int, int, int, bytes | None, bytes | None]],
) -> tuple[list[Event], dict[str, int]]:
    """The events the worker would score, in (record time, partition, offset) order.

    >>> ev = b'{"event_id":"e1","user_id":"u","event_type":"view","timestamp":1}'
    >>> events, skipped = select([(1, 0, 0, b"u", ev), (2, 0, 1, b"u", ev), (3, 0, 2, b"x", ev)])
    >>> [e.event_id for e in events], skipped
    (['e1'], {'not_an_event': 0, 'mis_keyed': 1, 'duplicate': 1})
    """
    skipped = {"not_an_event": 0, "mis_keyed": 0, "duplicate": 0}
    seen: set[tuple[str, str]] = set()
    events = []
    for _ts, _p, _offset, key, value in sorted(records, key=lambda r: r[:3]):
        try:
            event = decode_event(value or b"")
        except EventError:
            skipped["not_an_event"] += 1
            continue
        if key != event.user_id.encode("utf-8"):
            skipped["mis_keyed"] += 1  # the worker re-sends it keyed by user id: that copy counts
            continue
        if (event.user_id, event.event_id) in seen:
            skipped["duplicate"] += 1
            continue
        seen.add((event.user_id, event.event_id))
        events.append(event)
    return events, skipped


def _write(events: list[Event], out: Path) -> int:
    from training.datasets import DatasetError, write_events  # no torch, no pyarrow at import

    try:
        return write_events(events, out)
    except DatasetError as exc:
        raise ValueError(str(exc)) from None
    except ImportError:
        raise ValueError(
            "writing Parquet needs pyarrow (the training extra): use .csv.gz"
        ) from None


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry point (the worker CLI wires the same two functions)."""
    parser = argparse.ArgumentParser(prog="python -m worker.tools.export", description=__doc__)
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
