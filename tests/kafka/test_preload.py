"""worker/runtime/preload.py against a real broker and real RocksDB (rocksdict, as Faust opens it).

What Faust's recovery would leave in a partition database, the preload must leave too: the last
value per key, deletes for tombstones, and the last offset under Faust's offset key; and it reads
only what lies past the offset a database already holds.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import rocksdict
from confluent_kafka import Producer

from tests.kafka_io import producer_config
from worker.runtime.preload import OFFSET_KEY, persisted_offset, preload

pytestmark = pytest.mark.kafka


def _send(bootstrap: str, topic: str, records: list[tuple[int, bytes, bytes | None]]) -> None:
    producer = Producer(producer_config(bootstrap))
    for partition, key, value in records:
        producer.produce(topic, key=key, value=value, partition=partition)
    assert producer.flush(30) == 0


def _open(path: Path) -> rocksdict.Rdict:
    return rocksdict.Rdict(str(path), options=rocksdict.Options(raw_mode=True))


def _batch() -> rocksdict.WriteBatch:
    return rocksdict.WriteBatch(raw_mode=True)


def _contents(db: rocksdict.Rdict) -> dict[bytes, bytes]:
    return {k: v for k, v in db.items() if k != OFFSET_KEY}


def test_preload_applies_last_values_tombstones_and_the_offset(
    kafka_bootstrap: str, topic_factory: Callable[..., str], tmp_path: Path
) -> None:
    topic = topic_factory(partitions=2)
    first = [(0, b"a", b"1"), (0, b"b", b"1"), (0, b"a", b"2"), (1, b"c", b"1"), (0, b"b", None)]
    _send(kafka_bootstrap, topic, first)
    dbs = {0: _open(tmp_path / "p0"), 1: _open(tmp_path / "p1")}
    try:
        done = preload({"bootstrap.servers": kafka_bootstrap}, topic, dbs, _batch)
        assert dict(done.records) == {0: 4, 1: 1}
        assert _contents(dbs[0]) == {b"a": b"2"} and _contents(dbs[1]) == {b"c": b"1"}
        assert persisted_offset(dbs[0]) == 3 and persisted_offset(dbs[1]) == 0

        # A later start reads only the records past what each database holds.
        _send(kafka_bootstrap, topic, [(1, b"c", b"2"), (1, b"d", b"1")])
        again = preload({"bootstrap.servers": kafka_bootstrap}, topic, dbs, _batch)
        assert dict(again.records) == {0: 0, 1: 2}
        assert _contents(dbs[1]) == {b"c": b"2", b"d": b"1"} and persisted_offset(dbs[1]) == 2
    finally:
        for db in dbs.values():
            db.close()


def test_preload_of_an_empty_changelog_reads_nothing(
    kafka_bootstrap: str, topic_factory: Callable[..., str], tmp_path: Path
) -> None:
    topic = topic_factory(partitions=1)
    db = _open(tmp_path / "p0")
    try:
        done = preload({"bootstrap.servers": kafka_bootstrap}, topic, {0: db}, _batch)
        assert done.total == 0 and persisted_offset(db) is None and _contents(db) == {}
    finally:
        db.close()
