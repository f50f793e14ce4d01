"""A worker SIGKILLed mid-stream and restarted on its RocksDB dir loses and repeats nothing.

Invariant 4 (docs/DESIGN.md): after the restart the state restored from the changelog equals the
uninterrupted run's, so every later score equals the offline reference; every input event is
scored (or dead-lettered); an alert may repeat only under its own id. Recovery time (kill ->
ready and scoring again) is measured and printed, never asserted.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.e2e.worker_process import counter
from tests.faults.fleet import Fleet, wait_scoring
from tests.faults.oracle import Oracle
from tests.faults.outcome import Outputs
from tests.faults.traffic import PacedProducer

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

RATE = 100.0  # events per second: the 3000 events span the kill and the restart


def test_sigkill_and_restart_restores_state_from_the_changelog(
    kafka_bootstrap: str, oracle: Oracle, tmp_path: Path
) -> None:
    fleet = Fleet(kafka_bootstrap, oracle, tmp_path)
    n = len(oracle.records)
    try:
        fleet.start("a").wait_ready()
        traffic = PacedProducer(kafka_bootstrap, fleet.topics["events_topic"], oracle.records, RATE)
        traffic.release(n // 2)
        # Kill once a third is in and the worker has written state for a good part of it.
        fleet.workers["a"].wait_metric(
            lambda m: counter(m, "clickscore_events_scored_total") >= n // 4
        )
        killed_at = fleet.kill("a")
        traffic.release(2 * n // 3)  # events keep coming while it is down
        restarted = fleet.start("a")
        restarted.wait_ready(timeout=180)
        ready_s = time.monotonic() - killed_at
        traffic.release(n)
        wait_scoring(restarted)
        recovery_s = time.monotonic() - killed_at
        traffic.finish()
        outcome = Outputs(kafka_bootstrap, fleet.topics).collect(oracle)
        outcome.recovery_s = recovery_s
        print(outcome.line("crash"), f"(ready after {ready_s:.1f} s)")
        outcome.check(oracle)
    except BaseException:
        print(fleet.logs())
        raise
    finally:
        fleet.stop_all()
