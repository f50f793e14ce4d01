"""A crash that leaves RocksDB ahead of the changelog, then a move: the new owner's state is right.

The crash: every changelog send is refused (the changelog topic takes records of at most 200
bytes), so the worker writes its RocksDB, gets no changelog record through and exits (70, no
commit) like a SIGKILL between the local write and the changelog send. Restarted on the same data
dir once the topic is fixed, it gets the batch again: every event is a duplicate of what RocksDB
holds. Then the partition moves: a second worker with an empty data dir restores it from the
changelog, and the test opens that worker's RocksDB and compares every user's decoded state with
the uninterrupted run's (the pure core over every event in one batch). Before, duplicates were
not written back: the changelog never got those users' states, and the new owner started most of
them from zero.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import rocksdict
from confluent_kafka.admin import AdminClient, ConfigResource

from tests.e2e.worker_process import WorkerFactory, counter
from tests.kafka_io import create_topic, produce, topic_size
from tests.worker_artifacts import keyed, make_events, shared_artifact
from worker.core.micro_batch import PipelineConfig, Record, process_batch
from worker.core.model_store import load_model
from worker.core.state import UserState, decode_state
from worker.kafka_connection import local
from worker.runtime.app import TABLE_NAME
from worker.runtime.faust_private import OFFSET_KEY

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


def _set_max_bytes(bootstrap: str, topic: str, limit: int) -> None:
    admin = AdminClient(local(bootstrap).librdkafka())
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic, set_config={
        "max.message.bytes": str(limit), "cleanup.policy": "compact"})  # fmt: skip
    admin.alter_configs([resource])[resource].result(timeout=30)


def _table(data_dir: Path) -> dict[str, UserState | None]:
    """The decoded states in a stopped worker's RocksDB (its one partition database)."""
    (path,) = data_dir.rglob(f"*{TABLE_NAME}-0.db")
    db = rocksdict.Rdict(str(path), options=rocksdict.Options(raw_mode=True))
    try:
        return {k.decode(): decode_state(v) for k, v in db.items() if k != OFFSET_KEY}
    finally:
        db.close()


def _comparable(state: UserState) -> dict[str, object]:
    # Alerts carry their emit time: compare their ids. Floats may differ in the last bits
    # between batch shapes: compared with a tolerance below.
    fields = {f: getattr(state, f) for f in state.__struct_fields__}
    fields["recent_alerts"] = [  # the event's id hash names the alert; its score: below
        (a.id_hash, a.alert_type, a.threshold, a.model_version) for a in state.recent_alerts
    ]
    fields.pop("tensors")
    fields.pop("recent_scores")
    return fields


def test_a_new_owner_after_a_crash_restores_the_uninterrupted_state(
    kafka_bootstrap: str, worker_factory: WorkerFactory
) -> None:
    group, topics = worker_factory.group, worker_factory.topics
    changelog = f"{group}-{TABLE_NAME}-changelog"
    create_topic(kafka_bootstrap, 1, 1, {"cleanup.policy": "compact", "max.message.bytes": "200"},
                 name=changelog)  # fmt: skip
    model_dir = shared_artifact()
    events = make_events(60, users=12, seed=21)
    create_topic(kafka_bootstrap, 1, 1, name=topics["events_topic"])
    produce(kafka_bootstrap, topics["events_topic"], keyed(events))
    crashed = worker_factory.start(model_dir, name="a", ready=False, partitions=1)
    crashed.proc.wait(timeout=120)
    assert crashed.stop() == 70, crashed.log_tail()
    assert topic_size(kafka_bootstrap, changelog) == 0  # RocksDB holds states the changelog lacks

    _set_max_bytes(kafka_bootstrap, changelog, 1_000_000)
    time.sleep(1)  # the broker applies topic configs asynchronously
    again = worker_factory.start(model_dir, name="a", partitions=1)
    try:
        m = again.wait_metric(
            lambda m: (
                counter(m, "clickscore_events_scored_total")
                + counter(m, "clickscore_events_duplicate_total")
                >= len(events)
            )
        )
    finally:
        assert again.stop() == 0, again.log_tail()
    assert counter(m, "clickscore_events_duplicate_total") > 0  # the crash case did happen

    owner = worker_factory.start(model_dir, name="b", partitions=1)  # empty data dir
    assert owner.stop() == 0, owner.log_tail()  # ready: its recovery from the changelog is done
    restored = _table(worker_factory.tmp / "data-b")
    records = [Record(k, v, "events", 0, i, None) for i, (k, v) in enumerate(keyed(events))]
    expected = process_batch(records, lambda _u, _i: None, load_model(model_dir), PipelineConfig())
    assert set(restored) == set(expected.writes)
    for user, (want, _) in expected.writes.items():
        got = restored[user]
        assert got is not None, user
        assert _comparable(got) == _comparable(want), user
        np.testing.assert_allclose(
            np.frombuffer(got.tensors, dtype=np.float32),
            np.frombuffer(want.tensors, dtype=np.float32),
            atol=1e-5,
        )
        np.testing.assert_allclose(
            [a.score for a in got.recent_alerts], [a.score for a in want.recent_alerts], atol=1e-5
        )
        np.testing.assert_allclose(
            np.frombuffer(got.recent_scores, dtype=np.float32),
            np.frombuffer(want.recent_scores, dtype=np.float32),
            atol=1e-5,
        )
