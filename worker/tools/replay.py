"""``python -m worker replay FILE``: produce an event file to the events topic, paced.

Reads the file with the training readers (same event ids as ``training score``), sends each event
as JSON keyed by user id, paced by a token bucket (``--rate``) or by the events' own timestamps
(``--speedup``), and exits non-zero when any delivery failed, so a script can trust exit 0.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Iterable, Iterator, Sized
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from confluent_kafka import KafkaException, Producer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from schemas.event import Event, encode_event
from training.datasets import FORMATS, read_events  # import-light by design: no torch
from worker.logs import librdkafka_logger
from worker.settings import SettingsError, default, load_kafka
from worker.tools.console import route_client_logs, say
from worker.tools.kafka_config import (
    BOOTSTRAP_SOURCE,
    check_reachable,
    check_topic,
    ensure_topic,
    producer_config,
)

FLUSH_TIMEOUT_S: Final = 60.0


class TokenBucket:
    """Allows ``rate`` events per second on average, with bursts of at most ``burst`` events."""

    def __init__(self, rate: float, burst: float | None = None) -> None:
        self.rate = rate
        self.burst = burst if burst is not None else max(1.0, rate / 20)  # ~50 ms of traffic
        self._tokens = self.burst
        self._last = time.monotonic()

    def delay(self, now: float) -> float:
        """Take one token; return how long to sleep first (0 when a token was there)."""
        self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
        self._last = now
        self._tokens -= 1.0
        return 0.0 if self._tokens >= 0 else -self._tokens / self.rate


class EventTimePacer:
    """Paces by event time: an event ``d`` ms after the first goes ``d / speedup`` ms later."""

    def __init__(self, speedup: float) -> None:
        self.speedup = speedup
        self._origin: tuple[int, float] | None = None

    def delay(self, ts_ms: int, now: float) -> float:
        """Seconds to wait before sending an event stamped ``ts_ms`` (0 when late or reordered)."""
        if self._origin is None:
            self._origin = (ts_ms, now)
            return 0.0
        first_ts, start = self._origin
        due = start + (ts_ms - first_ts) / 1000.0 / self.speedup
        return max(0.0, due - now)


@dataclass
class Counts:
    """What happened to the events of one replay."""

    read: int = 0
    produced: int = 0
    delivered: int = 0
    failed: int = 0
    skipped_rows: int = 0
    errors: dict[str, int] = field(default_factory=dict)

    def on_delivery(self, err: object, _msg: object) -> None:
        """Delivery report callback: count, and keep the error kinds for the summary."""
        if err is None:
            self.delivered += 1
        else:
            self.failed += 1
            key = str(err)[:120]
            self.errors[key] = self.errors.get(key, 0) + 1


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The replay subcommand's options."""
    parser.add_argument(
        "file", type=Path, help="event file (CSV/Parquet, or a public data set's file)"
    )
    parser.add_argument("--format", choices=FORMATS, default="generic", help="file format")
    pace = parser.add_mutually_exclusive_group()
    pace.add_argument("--rate", type=float, help="events per second (token bucket)")
    pace.add_argument("--speedup", type=float, help="pace by event timestamps, X times faster")
    parser.add_argument(
        "--topic", default=None, help="events topic (default CLICKSCORE_EVENTS_TOPIC)"
    )
    parser.add_argument(
        "--bootstrap", default=None, help="host:port[,...] (CLICKSCORE_KAFKA_BOOTSTRAP)"
    )
    parser.add_argument("--limit", type=int, default=None, help="send at most N events")
    parser.add_argument(
        "--max-bad-fraction",
        type=float,
        default=0.01,
        help="refuse the file when more of its rows than this are bad (default 0.01)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    """Replay the file: 0 all delivered, 1 delivery errors, 2 bad input, 130 interrupted."""
    console = Console(stderr=True)
    route_client_logs(console, "replay")
    try:
        producer, topic = _start(args)
    except SettingsError as exc:
        say(console, f"replay: {exc}", "red")
        return 2
    try:
        events, skipped = _read(args.file, args.format, args.max_bad_fraction, console)
    except (OSError, ValueError) as exc:
        say(console, f"replay: cannot read {args.file} as {args.format}: {exc}", "red")
        return 2
    counts = Counts(skipped_rows=skipped)
    started = time.monotonic()
    interrupted = False
    try:
        total = _total(events, args.limit)
        _send_all(producer, topic, _limited(events, args.limit), total, counts, args, console)
    except KeyboardInterrupt:
        interrupted = True
        say(console, "replay: interrupted; flushing what was sent", "yellow")
    except KafkaException as exc:  # refused locally (e.g. the topic vanished): stop, report
        counts.failed += 1
        counts.errors[f"produce refused: {exc.args[0].str()}"] = 1
        say(console, f"replay: stopped after {counts.produced} events: {exc}", "red")
    remaining = producer.flush(FLUSH_TIMEOUT_S)
    counts.failed += remaining  # still queued after the flush timeout: not delivered
    elapsed = time.monotonic() - started
    _summarise(console, counts, topic, elapsed, remaining)
    if counts.failed or counts.delivered != counts.produced:
        return 1
    return 130 if interrupted else 0


def _start(args: argparse.Namespace) -> tuple[Producer, str]:
    """Check the settings and the broker before reading anything, so a typo fails in a second."""
    for name in ("rate", "speedup"):
        value = getattr(args, name)
        if value is not None and not value > 0:
            raise SettingsError(f"--{name}={value}: must be > 0")
    if args.limit is not None and args.limit < 0:
        raise SettingsError(f"--limit={args.limit}: must be >= 0")
    topic_name = "--topic" if args.topic else "CLICKSCORE_EVENTS_TOPIC"
    chosen = args.topic or os.environ.get(topic_name) or default("events_topic")
    topic = check_topic(chosen, topic_name)
    connection = load_kafka(args.bootstrap)
    config = producer_config(connection)
    check_reachable(connection, BOOTSTRAP_SOURCE)
    ensure_topic(connection, topic)
    producer = Producer({**config, "logger": librdkafka_logger("replay")})
    return producer, topic


def _read(
    path: Path, fmt: str, max_bad_fraction: float, console: Console
) -> tuple[list[Event], int]:
    """Events from the training readers (time-sorted), and how many bad rows they skipped."""
    log = read_events(path, fmt, max_bad_fraction=max_bad_fraction, require_purchase=False)
    for example in log.stats.bad_examples:  # skipped rows are named, never silently lost
        say(console, f"replay: skipped bad row in {path.name}: {example}", "yellow")
    return log.events, log.stats.bad


def _limited(events: Iterable[Event], limit: int | None) -> Iterator[Event]:
    for i, event in enumerate(events):
        if limit is not None and i >= limit:
            return
        yield event


def _total(events: Iterable[Event], limit: int | None) -> int | None:
    n = len(events) if isinstance(events, Sized) else None
    if n is None:
        return limit
    return n if limit is None else min(n, limit)


def _send_all(
    producer: Producer,
    topic: str,
    events: Iterator[Event],
    total: int | None,
    counts: Counts,
    args: argparse.Namespace,
    console: Console,
) -> None:
    """Produce every event, pacing first; a full local queue waits for deliveries, never drops."""
    bucket = TokenBucket(args.rate) if args.rate else None
    clock = EventTimePacer(args.speedup) if args.speedup else None
    columns = (TextColumn("replay"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, disable=args.quiet) as progress:
        task = progress.add_task("replay", total=total)
        for event in events:
            counts.read += 1
            wait = 0.0
            now = time.monotonic()
            if bucket is not None:
                wait = bucket.delay(now)
            elif clock is not None:
                wait = clock.delay(event.ts_ms, now)
            if wait > 0:
                _sleep_serving(producer, wait)
            _produce(producer, topic, event, counts)
            if counts.produced % 256 == 0:
                progress.update(task, completed=counts.produced)
        progress.update(task, completed=counts.produced)


def _produce(producer: Producer, topic: str, event: Event, counts: Counts) -> None:
    value = encode_event(event)
    key = event.user_id.encode("utf-8")
    while True:
        try:
            producer.produce(topic, value=value, key=key, on_delivery=counts.on_delivery)
            break
        except BufferError:
            producer.poll(0.1)
    counts.produced += 1
    producer.poll(0)


def _sleep_serving(producer: Producer, seconds: float) -> None:
    """Sleep while serving delivery callbacks (poll blocks at most ``seconds``)."""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        producer.poll(min(left, 0.05))


def _summarise(
    console: Console, counts: Counts, topic: str, elapsed: float, remaining: int
) -> None:
    rate = counts.delivered / elapsed if elapsed > 0 else 0.0
    say(
        console,
        f"replay: read {counts.read}, produced {counts.produced}, delivered {counts.delivered}, "
        f"failed {counts.failed}, bad rows skipped by the reader {counts.skipped_rows} "
        f"-> {topic} in {elapsed:.1f}s ({rate:.0f} events/s)",
    )
    if remaining:
        say(console, f"replay: {remaining} events still queued after {FLUSH_TIMEOUT_S:.0f}s", "red")
    for message, n in sorted(counts.errors.items(), key=lambda kv: -kv[1]):
        say(console, f"replay: {n} x {message}", "red")


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry point (the worker CLI wires the same two functions)."""
    parser = argparse.ArgumentParser(prog="python -m worker.tools.replay", description=__doc__)
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
