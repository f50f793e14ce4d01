"""Broker faults mid-stream: the worker rides them out on its own, nothing lost.

* a single broker (its own, started here; not the session's) killed and started again;
* the 3-broker cluster with one broker killed, then brought back (replication 3, min ISR 2).

The worker is never restarted. Recovery seconds: from the broker kill until the worker has scored
every event sent up to then plus more (it is consuming again), printed, never asserted.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.worker_process import WorkerProcess, counter
from tests.faults.fleet import Fleet
from tests.faults.oracle import Oracle
from tests.faults.outcome import Outputs
from tests.faults.traffic import PacedProducer
from tests.kafka_io import LocalKafka

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

RATE = 100.0
DOWN_SECONDS = 5.0  # how long the broker stays away


def _ride_out(
    bootstrap: str,
    oracle: Oracle,
    tmp: Path,
    name: str,
    kill: Callable[[], None],
    revive: Callable[[], None],
    **settings: object,
) -> None:
    fleet = Fleet(bootstrap, oracle, tmp, **settings)
    n = len(oracle.records)
    try:
        worker = fleet.start("a")
        worker.wait_ready()
        traffic = PacedProducer(bootstrap, fleet.topics["events_topic"], oracle.records, RATE)
        traffic.release(n // 2)
        worker.wait_metric(lambda m: counter(m, "clickscore_events_scored_total") >= n // 4)
        killed_at = time.monotonic()
        kill()
        traffic.release(2 * n // 3)  # the producer keeps trying while the broker is away
        time.sleep(DOWN_SECONDS)
        revive()
        traffic.release(n)
        traffic.wait_sent(2 * n // 3 + 1)
        _wait_scored_beyond(worker, 2 * n // 3)
        recovery_s = time.monotonic() - killed_at
        traffic.finish()
        outcome = Outputs(bootstrap, fleet.topics).collect(oracle)
        outcome.recovery_s = recovery_s
        print(outcome.line(name), f"(broker away {DOWN_SECONDS:.0f} s + its restart)")
        assert worker.proc.poll() is None, "the worker died instead of riding the fault out"
        outcome.check(oracle)
    except BaseException:
        print(fleet.logs())
        raise
    finally:
        fleet.stop_all()


def _wait_scored_beyond(worker: WorkerProcess, count: int) -> None:
    # Scored (+ duplicates) past the events sent before the fault: consuming again after it.
    worker.wait_metric(
        lambda m: (
            counter(m, "clickscore_events_scored_total")
            + counter(m, "clickscore_events_duplicate_total")
            > count
        ),
        timeout=240,
    )


def test_single_broker_restart(oracle: Oracle, tmp_path: Path) -> None:
    kafka = LocalKafka.start(tmp_path / "kafka", brokers=1)
    try:
        _ride_out(
            kafka.bootstrap,
            oracle,
            tmp_path,
            "single broker restart",
            kill=lambda: kafka.kill(1),
            revive=lambda: kafka.restart(1),
        )
    finally:
        kafka.stop()


@pytest.mark.cluster
def test_cluster_broker_killed_and_brought_back(
    kafka_cluster: LocalKafka, oracle: Oracle, tmp_path: Path
) -> None:
    try:
        _ride_out(
            kafka_cluster.bootstrap,
            oracle,
            tmp_path,
            "cluster: 1 of 3 brokers killed",
            kill=lambda: kafka_cluster.kill(2),
            revive=lambda: kafka_cluster.restart(2),
            replication_factor=3,
        )
    finally:
        if "node 2 (broker) stopped" in kafka_cluster.status().stdout:
            kafka_cluster.restart(2)  # whole again for later tests on the session's cluster
