"""``python -m worker forget USER``: an erasure request for one user's stored state.

It produces a ``forget`` control record (worker/core/control.py) to the events topic, keyed by
the user id like that user's events, so it lands in the partition holding the user's state and
in order with the user's events. The worker that owns the partition deletes the state from its
RocksDB and writes a changelog tombstone; the changelog's older records of the user go at the
topic's next compaction. What the dead-letter and alert topics keep: docs/operations.md.

``USER`` is the user id as it is in the events (the table's key), not the pseudonym an alert
carries: a pseudonym cannot be turned back into the id.
"""

from __future__ import annotations

import argparse
import os
import sys

from confluent_kafka import KafkaException, Producer
from rich.console import Console

from worker.core.control import control_record
from worker.logs import librdkafka_logger
from worker.settings import SettingsError, default, load_kafka
from worker.tools.console import route_client_logs, say
from worker.tools.kafka_config import (
    BOOTSTRAP_SOURCE,
    check_reachable,
    check_topic,
    producer_config,
)

DELIVERY_TIMEOUT_S = 30.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The forget subcommand's options."""
    parser.add_argument("user", help="the user id, as the events carry it (the state's key)")
    parser.add_argument(
        "--topic", default=None, help="events topic (default CLICKSCORE_EVENTS_TOPIC)"
    )
    parser.add_argument(
        "--bootstrap", default=None, help="host:port[,...] (CLICKSCORE_KAFKA_BOOTSTRAP)"
    )


def run(args: argparse.Namespace) -> int:
    """Send the request: 0 delivered (the worker applies it in order), 1 not delivered, 2 bad."""
    console = Console(stderr=True)
    route_client_logs(console, "forget")
    if not args.user or len(args.user.encode("utf-8")) > 256:
        say(console, "forget: USER must be 1..256 bytes (the events' user_id rule)", "red")
        return 2
    try:
        name = "--topic" if args.topic else "CLICKSCORE_EVENTS_TOPIC"
        topic = check_topic(args.topic or os.environ.get(name) or default("events_topic"), name)
        connection = load_kafka(args.bootstrap)
        check_reachable(connection, BOOTSTRAP_SOURCE)
    except SettingsError as exc:
        say(console, f"forget: {exc}", "red")
        return 2
    producer = Producer({**producer_config(connection), "logger": librdkafka_logger("forget")})
    key, value, pairs = control_record("forget", args.user)
    headers: list[tuple[str, str | bytes | None]] = list(pairs)
    errors: list[str] = []
    partition: list[int] = []

    def delivered(err: object, msg: object) -> None:
        if err is not None:
            errors.append(str(err))
        else:
            partition.append(msg.partition())  # type: ignore[attr-defined]

    try:
        producer.produce(topic, key=key, value=value, headers=headers, on_delivery=delivered)
    except KafkaException as exc:
        say(console, f"forget: cannot send to {topic}: {exc}", "red")
        return 1
    left = producer.flush(DELIVERY_TIMEOUT_S)
    if left or errors:
        say(console, f"forget: not delivered to {topic}: {errors or 'timed out'}", "red")
        return 1
    say(console, f"forget: request for the user delivered to {topic}[{partition[0]}]")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry point (the worker CLI wires the same two functions)."""
    parser = argparse.ArgumentParser(prog="python -m worker.tools.forget", description=__doc__)
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
