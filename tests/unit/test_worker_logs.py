"""Kafka clients' routine start-up retries are not shown as errors; real trouble still is."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest
from rich.console import Console

from worker.logs import RoutineRetries, librdkafka_logger
from worker.tools.console import route_client_logs


@pytest.fixture(autouse=True)
def _unsettled() -> Iterator[None]:
    RoutineRetries.settled = False
    yield
    RoutineRetries.settled = False


def _record(name: str, level: int, message: str) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, message, None, None)


def test_coordinator_retries_at_start_are_demoted_and_dropped_at_warning() -> None:
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
    record = _record(
        "aiokafka.consumer.group_coordinator",
        logging.ERROR,
        "Group Coordinator Request failed: [Error 15] GroupCoordinatorNotAvailableError",
    )
    assert RoutineRetries().filter(record) is False
    assert record.levelname == "INFO"


def test_other_errors_and_retries_after_start_keep_their_level() -> None:
    other = _record("aiokafka.consumer.group_coordinator", logging.ERROR, "Heartbeat failed")
    assert RoutineRetries().filter(other) and other.levelno == logging.ERROR
    mine = _record("worker", logging.ERROR, "GroupCoordinatorNotAvailableError in my code")
    assert RoutineRetries().filter(mine) and mine.levelno == logging.ERROR
    RoutineRetries.settle()
    late = _record("aiokafka.x", logging.WARNING, "Marking the coordinator dead (node 1)")
    assert RoutineRetries().filter(late) and late.levelno == logging.WARNING


def test_librdkafka_lines_print_as_plain_prefixed_lines() -> None:
    out = io.StringIO()
    route_client_logs(Console(file=out, force_terminal=False, width=40), "replay")
    log = librdkafka_logger("replay")
    log.warning("%s [%s] %s", "GETPID", "rdkafka#producer-1", "Coordinator load in progress")
    log.warning("%s [%s] %s", "FAIL", "rdkafka#producer-1", "127.0.0.1:1/bootstrap: refused " * 3)
    assert out.getvalue().splitlines() == [
        "replay: WARNING librdkafka.replay: FAIL [rdkafka#producer-1] "
        + "127.0.0.1:1/bootstrap: refused " * 3
    ]
