"""2 -> 3 -> 2 workers in one group while events flow: partitions move, nothing is lost or doubled.

Each change happens while the paced producer is sending, so partitions move with records in
flight. Afterwards every event is scored, every score record (duplicates from at-least-once
redelivery included) equals the offline reference -- a state stepped twice or restored stale after
a rebalance would change the user's later scores -- and the alert ids equal the uninterrupted run's.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.faults.fleet import Fleet
from tests.faults.oracle import Oracle
from tests.faults.outcome import Outputs
from tests.faults.traffic import PacedProducer

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

RATE = 60.0  # events per second: each quarter of the stream spans about 12 s


def test_workers_join_and_leave_while_events_flow(
    kafka_bootstrap: str, oracle: Oracle, tmp_path: Path
) -> None:
    fleet = Fleet(kafka_bootstrap, oracle, tmp_path)
    n = len(oracle.records)
    try:
        first = fleet.start("a")
        first.wait_ready()  # creates the topics before anything is produced
        fleet.start("b").wait_ready()
        traffic = PacedProducer(kafka_bootstrap, fleet.topics["events_topic"], oracle.records, RATE)
        traffic.release(n // 4)
        traffic.wait_sent(n // 4)

        joined_at = time.monotonic()
        third = fleet.start("c")  # scale out: the group rebalances 6 partitions over 3
        traffic.release(n // 2)
        # Ready = partitions assigned and their tables recovered. (It may score nothing yet: its
        # partitions' events up to the gate can all have been taken by the others already.)
        third.wait_ready(timeout=180)
        join_s = time.monotonic() - joined_at
        traffic.wait_sent(n // 2)

        left_at = time.monotonic()
        traffic.release(3 * n // 4)
        assert fleet.stop("b") == 0  # scale in (SIGTERM): its partitions go to a and c
        traffic.wait_sent(3 * n // 4)
        traffic.finish()
        outcome = Outputs(kafka_bootstrap, fleet.topics).collect(oracle)
        outcome.recovery_s = join_s
        print(
            outcome.line("scale-out 2->3->2"),
            f"(third worker ready {join_s:.1f} s after start; all accounted "
            f"{time.monotonic() - left_at:.1f} s after the scale-in)",
        )
        outcome.check(oracle)
    except BaseException:
        print(fleet.logs())
        raise
    finally:
        fleet.stop_all()
