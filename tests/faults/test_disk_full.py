"""The data dir fills up (ENOSPC): the worker stops before committing; nothing is lost.

The data dir is a real filesystem that runs out: a 16 MiB tmpfs mounted where the worker keeps
its RocksDB (we run as root). Once the worker is up a file fills the tmpfs, then events arrive:
RocksDB cannot append to its write-ahead log, and the worker exits (70) without committing the
batch, with one line naming the data dir; a worker started while it is still full exits (6) at
once, before consuming, naming it too. Once the file is removed, a restarted worker (same data
dir and group) gets the events again and scores every one.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.worker_process import WorkerFactory, counter
from tests.faults.test_refused_send import _committed
from tests.kafka_io import consume, produce
from tests.worker_artifacts import keyed, make_events, shared_artifact

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


@pytest.fixture
def small_disk(worker_factory: WorkerFactory) -> Iterator[Path]:
    """A 16 MiB tmpfs where the factory's worker named "worker" keeps its data dir."""
    mount = worker_factory.tmp / "data-worker"
    mount.mkdir()
    cmd = ["mount", "-t", "tmpfs", "-o", "size=16m,mode=0700", "tmpfs", str(mount)]
    subprocess.run(cmd, check=True, capture_output=True)
    try:
        yield mount
    finally:
        worker_factory.close()  # before the unmount: no worker may hold files there
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _fill(mount: Path) -> Path:
    """Write zeros into ``mount`` until the filesystem refuses (ENOSPC): no byte is left."""
    filler = mount / "filler"
    chunk = b"\0" * (1 << 16)
    with filler.open("wb", buffering=0) as f:
        try:
            while True:
                f.write(chunk)
        except OSError:
            pass
    return filler


def test_a_full_data_dir_stops_the_commit_and_nothing_is_lost(
    kafka_bootstrap: str, worker_factory: WorkerFactory, small_disk: Path
) -> None:
    group, topics = worker_factory.group, worker_factory.topics
    model = shared_artifact(propensity=0.0, churn=1.0)
    settings: dict[str, object] = {"partitions": 1, "scores_topic": "", "batch_size": 8}
    events = make_events(40, users=10, seed=13)
    users = {e.user_id for e in events}
    worker = worker_factory.start(model, name="worker", **settings)
    filler = _fill(small_disk)
    try:
        produce(kafka_bootstrap, topics["events_topic"], keyed(events))
        worker.proc.wait(timeout=90)
    finally:
        code = worker.stop()
    log = worker.log_tail(20_000)
    assert code == 70, log
    assert f"the data dir {small_disk} is full" in log
    assert _committed(kafka_bootstrap, group, topics["events_topic"]) < len(events)

    # Started while still full: it stops before consuming, naming the data dir (before: Faust
    # retried opening RocksDB for 60 s, then crashed with exit 1).
    full = worker_factory.start(model, name="worker", ready=False, **settings)
    try:
        full.proc.wait(timeout=30)
    finally:
        code = full.stop()
    assert code == 6, full.log_tail()
    assert f"CLICKSCORE_DATA_DIR={small_disk} has no room" in full.log_tail()
    assert _committed(kafka_bootstrap, group, topics["events_topic"]) < len(events)

    filler.unlink()
    again = worker_factory.start(model, name="worker", **settings)
    try:
        m = again.wait_metric(
            lambda m: (
                counter(m, "clickscore_events_scored_total")
                + counter(m, "clickscore_events_duplicate_total")
                >= len(events)
            )
        )
        group_id = f"t-{uuid.uuid4().hex}"
        got = consume(
            kafka_bootstrap, topics["propensity_topic"], group_id, len(events), timeout=10
        )
    finally:
        assert again.stop() == 0, again.log_tail()
    assert counter(m, "clickscore_events_dead_lettered_total") == 0
    assert {json.loads(v)["user_id"] for _, v in got} == users  # every user's alert arrived
    assert _committed(kafka_bootstrap, group, topics["events_topic"]) == len(events)
