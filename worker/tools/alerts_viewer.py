"""``python -m worker alerts``: show the alert topics as a readable table, live with ``--follow``.

Reads partitions by assignment (no consumer group, nothing committed), so watching never moves
anyone's offsets. Without ``--follow`` it reads every partition from the start up to its current
end and exits; with ``--follow`` it starts at the end (or the start, ``--from-beginning``) and
keeps a live table of the newest alerts until Ctrl-C or ``--limit``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import time
import uuid
from collections import deque
from datetime import UTC, datetime
from typing import Any, Final

import msgspec
from confluent_kafka import OFFSET_BEGINNING, OFFSET_END, Consumer, KafkaError, TopicPartition
from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from worker.logs import librdkafka_logger
from worker.settings import SettingsError, default, env_name, load_kafka
from worker.tools.console import route_client_logs, say
from worker.tools.kafka_config import BOOTSTRAP_SOURCE, check_reachable, check_topic

LIVE_ROWS: Final = 25  # newest alerts kept on screen in --follow mode
_decoder: Final = msgspec.json.Decoder(dict[str, Any])


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The alerts subcommand's options."""
    parser.add_argument("--follow", action="store_true", help="keep watching for new alerts")
    parser.add_argument(
        "--from-beginning", action="store_true", help="with --follow: start at the oldest alert"
    )
    parser.add_argument("--limit", type=int, default=None, help="stop after N alerts")
    parser.add_argument(
        "--duration", type=float, default=None, help="with --follow: stop after this many seconds"
    )
    parser.add_argument("--topics", nargs="+", default=None, help="alert topics to read")
    parser.add_argument(
        "--bootstrap", default=None, help="host:port[,...] (CLICKSCORE_KAFKA_BOOTSTRAP)"
    )


def run(args: argparse.Namespace) -> int:
    """Print the alerts; 0 on success (or SIGTERM), 130 on Ctrl-C, 2 on a bad setting."""
    console = Console()
    route_client_logs(console, "alerts")
    try:
        consumer, partitions = _start(args)
    except SettingsError as exc:
        say(Console(stderr=True), f"alerts: {exc}", "red")
        return 2
    # SIGTERM ends a follow cleanly (status 0); Ctrl-C does too, with the customary 130.
    previous = signal.signal(signal.SIGTERM, _terminate)
    status = 0
    try:
        if args.follow:
            deadline = None if args.duration is None else time.monotonic() + args.duration
            _follow(consumer, console, _topics(args), partitions, args.limit, deadline)
        else:
            _snapshot(consumer, console, partitions, args.limit)
    except _Terminated:
        pass
    except KeyboardInterrupt:
        status = 130
    finally:
        signal.signal(signal.SIGTERM, previous)
        consumer.close()
    return status


def _topics(args: argparse.Namespace) -> list[str]:
    if args.topics:
        return list(args.topics)
    return [
        os.environ.get(env_name(field)) or default(field)
        for field in ("propensity_topic", "churn_topic")
    ]


def _start(args: argparse.Namespace) -> tuple[Consumer, set[tuple[str, int]]]:
    """Assign every partition of the alert topics that exists now; check the broker first."""
    if args.limit is not None and args.limit < 1:
        raise SettingsError(f"--limit={args.limit}: must be >= 1")
    if args.duration is not None and not args.duration > 0:
        raise SettingsError(f"--duration={args.duration}: must be > 0")
    connection = load_kafka(args.bootstrap)
    config: dict[str, Any] = {
        **connection.librdkafka(),
        "group.id": f"clickscore-alerts-view-{uuid.uuid4().hex[:8]}",  # required by librdkafka only
        "enable.auto.commit": False,
        "enable.partition.eof": True,
        "logger": librdkafka_logger("alerts"),
    }
    check_reachable(connection, BOOTSTRAP_SOURCE)
    for topic in _topics(args):
        check_topic(topic, "--topics")
    consumer = Consumer(config)
    metadata = consumer.list_topics(timeout=10)
    start = OFFSET_END if args.follow and not args.from_beginning else OFFSET_BEGINNING
    assignment = [
        TopicPartition(topic, p, start)
        for topic in _topics(args)
        if topic in metadata.topics
        for p in metadata.topics[topic].partitions
    ]
    consumer.assign(assignment)
    return consumer, {(tp.topic, tp.partition) for tp in assignment}


def _assign_new(consumer: Consumer, topics: list[str], known: set[tuple[str, int]]) -> None:
    """Add partitions created since we started (the worker creates alert topics on first use)."""
    try:
        metadata = consumer.list_topics(timeout=2)
    except Exception:  # a broker blip: try again on the next refresh
        return
    new = [
        TopicPartition(topic, p, OFFSET_BEGINNING)  # all of a new partition is new to us
        for topic in topics
        if topic in metadata.topics
        for p in metadata.topics[topic].partitions
        if (topic, p) not in known
    ]
    if new:
        consumer.incremental_assign(new)
        known.update((tp.topic, tp.partition) for tp in new)


def _snapshot(
    consumer: Consumer, console: Console, partitions: set[tuple[str, int]], limit: int | None
) -> None:
    """Read up to the current end of every partition, then print one table."""
    rows: list[dict[str, Any]] = []
    unreadable = 0
    pending = set(partitions)
    idle_deadline = time.monotonic() + 15.0  # a broker that stops answering must not hang us
    while pending and (limit is None or len(rows) < limit) and time.monotonic() < idle_deadline:
        msg = consumer.poll(0.5)
        if msg is None:
            continue
        idle_deadline = time.monotonic() + 15.0
        error = msg.error()
        if error is not None:
            if error.code() == KafkaError._PARTITION_EOF:
                pending.discard((msg.topic(), msg.partition()))
            continue
        alert = _decode(msg.value())
        if alert is None:
            unreadable += 1
        else:
            rows.append(alert)
    rows.sort(key=lambda a: str(a.get("emitted_at", "")))
    if console.is_terminal:
        console.print(_table(rows, f"{len(rows)} alerts"))
    else:  # piped or captured: one greppable line per alert, never cut to a terminal's width
        for alert in rows:
            say(console, _line(alert))
        say(console, f"{len(rows)} alerts")
    if unreadable:
        say(console, f"{unreadable} records were not readable alerts", "yellow")


def _follow(
    consumer: Consumer,
    console: Console,
    topics: list[str],
    known: set[tuple[str, int]],
    limit: int | None,
    deadline: float | None,
) -> None:
    """Keep a live table of the newest alerts (plain lines when the output is not a terminal)."""
    recent: deque[dict[str, Any]] = deque(maxlen=LIVE_ROWS)
    seen = 0
    next_check = time.monotonic()
    # Piped or captured: only the plain lines. A live display there would print its last table
    # into the log, with no newline after it (the next line then ends up glued to its border).
    live_or_not = (
        Live(_table([], "waiting for alerts"), console=console, auto_refresh=False)
        if console.is_terminal
        else contextlib.nullcontext(None)
    )
    with live_or_not as live:
        while (limit is None or seen < limit) and (deadline is None or time.monotonic() < deadline):
            if time.monotonic() >= next_check:
                _assign_new(consumer, topics, known)
                next_check = time.monotonic() + 5.0
            msg = consumer.poll(0.5)
            if msg is not None and not msg.error():
                alert = _decode(msg.value())
                if alert is None:
                    continue
                seen += 1
                recent.append(alert)
                if not console.is_terminal:
                    say(console, _line(alert))
            if live is not None:  # refresh even without a new alert: the age column keeps moving
                live.update(_table(list(recent), f"{seen} alerts (newest last)"), refresh=True)


class _Terminated(Exception):
    """SIGTERM arrived: leave the live view the way Ctrl-C would."""


def _terminate(_signum: int, _frame: object) -> None:
    raise _Terminated


def _decode(value: bytes | None) -> dict[str, Any] | None:
    if not value:
        return None
    try:
        doc = _decoder.decode(value)
    except msgspec.DecodeError:
        return None
    return doc if "alert_type" in doc else None


def _age(emitted_at: object, now: datetime) -> str:
    try:
        when = datetime.fromisoformat(str(emitted_at).replace("Z", "+00:00"))
    except ValueError:
        return "?"
    seconds = max(0.0, (now - when).total_seconds())
    if seconds < 120:
        return f"{seconds:.0f}s"
    return f"{seconds / 60:.0f}m" if seconds < 7200 else f"{seconds / 3600:.0f}h"


def _fmt(value: object, digits: int = 3) -> str:
    return f"{value:.{digits}f}" if isinstance(value, int | float) else str(value)


def _table(alerts: list[dict[str, Any]], title: str) -> Table:
    """The readable table: type, user, score, threshold, model, trigger, age, reasons."""
    now = datetime.now(UTC)
    table = Table(title=title, expand=False)
    columns = ("type", "user", "score", "threshold", "model", "trigger", "event time", "age", "why")
    for column in columns:
        # A narrow terminal folds the model version, the event time and the reasons onto more
        # lines rather than cutting them to "cnnrnn-2..." (which says nothing about which model).
        fold = column in ("model", "event time", "why")
        table.add_column(
            column,
            justify="right" if column in ("score", "threshold") else "left",
            overflow="fold" if fold else "ellipsis",
            no_wrap=not fold,
        )
    for a in alerts:
        style = "green" if a.get("alert_type") == "propensity" else "magenta"
        cells = (
            str(a.get("alert_type")),
            str(a.get("user_id"))[:24],
            _fmt(a.get("score")),
            _fmt(a.get("threshold")),
            str(a.get("model_version")),
            str(a.get("trigger")),
            str(a.get("event_time")),
            _age(a.get("emitted_at"), now),
            "\n".join(_reasons(a)),
        )
        # Text, not str: rich reads a str cell as markup, and a raw user id such as "[/]" broke
        # the table (MarkupError) or restyled it.
        table.add_row(*(Text(cell) for cell in cells), style=style)
    return table


def _reasons(a: dict[str, Any]) -> list[str]:
    """'+0.31 3 add_to_cart, ...' per reason; none for alerts of workers without reasons."""
    reasons = a.get("reasons")
    if not isinstance(reasons, list):
        return []
    return [
        f"+{_fmt(r.get('contribution'))} {r.get('text')}" for r in reasons if isinstance(r, dict)
    ]


def _line(a: dict[str, Any]) -> str:
    why = "; ".join(_reasons(a))
    return (
        f"{a.get('alert_type')} user={a.get('user_id')} score={_fmt(a.get('score'))} "
        f"threshold={_fmt(a.get('threshold'))} model={a.get('model_version')} "
        f"trigger={a.get('trigger')} event={a.get('event_id')} event_time={a.get('event_time')}"
        + (f" why=[{why}]" if why else "")
    )


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry point (the worker CLI wires the same two functions)."""
    parser = argparse.ArgumentParser(
        prog="python -m worker.tools.alerts_viewer", description=__doc__
    )
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
