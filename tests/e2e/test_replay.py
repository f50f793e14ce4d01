"""``worker replay`` and ``worker alerts`` against the session's real Kafka broker.

What they prove: every event of a file arrives once, as its wire JSON, keyed by user id, in the
partition that Faust's own (aiokafka, murmur2) producer would pick; the same file replayed twice
gives the same event ids; delivery failures and bad settings give a non-zero exit with a message;
the alerts view shows what is on the alert topics.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from aiokafka.partitioner import DefaultPartitioner
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition
from confluent_kafka.admin import AdminClient

from schemas.event import Event, decode_event
from tests.kafka_io import produce, topic_size
from training.datasets import write_events
from worker.tools import alerts_viewer, replay

pytestmark = pytest.mark.kafka

ROOT = Path(__file__).resolve().parents[2]
N_EVENTS = 400
PARTITIONS = 4


def _events() -> list[Event]:
    kinds = ("view", "click", "add_to_cart", "purchase")
    return [
        Event(
            event_id=f"e{i}",
            user_id=f"user-{i % 29}",
            event_type=kinds[i % 4],
            ts_ms=1_700_000_000_000 + 250 * i,
            item_id=f"item-{i % 7}",
            price=12.5,
        )
        for i in range(N_EVENTS)
    ]


@pytest.fixture(scope="module")
def events_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("replay") / "clicks.csv"
    write_events(_events(), path)
    return path


def _replay(bootstrap: str, *argv: str) -> int:
    parser = argparse.ArgumentParser()
    replay.add_arguments(parser)
    return replay.run(parser.parse_args([*argv, "--bootstrap", bootstrap, "--quiet"]))


def _read_all(bootstrap: str, topic: str, group: str) -> list[tuple[int, bytes, bytes]]:
    """(partition, key, value) of every record in ``topic``, read up to each partition's end.

    Replay flushed before returning, so the end is final: no waiting for records that never come.
    """
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "auto.offset.reset": "earliest",
            "enable.partition.eof": True,
        }
    )
    partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
    pending = set(partitions)
    got: list[tuple[int, bytes, bytes]] = []
    deadline = time.monotonic() + 60
    try:
        while pending and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            if msg.error() is not None:
                assert msg.error().code() == KafkaError._PARTITION_EOF, msg.error()
                pending.discard(msg.partition())
                continue
            got.append((msg.partition(), msg.key() or b"", msg.value() or b""))
    finally:
        consumer.close()
    assert not pending, f"partitions {pending} never reached their end"
    return got


def test_replay_delivers_every_event_keyed_and_partitioned_like_faust(
    kafka_bootstrap: str, topic_factory, group_id: str, events_file: Path
) -> None:
    topic = topic_factory(partitions=PARTITIONS)
    assert _replay(kafka_bootstrap, str(events_file), "--topic", topic, "--rate", "5000") == 0
    records = _read_all(kafka_bootstrap, topic, group_id)
    assert len(records) == N_EVENTS  # every event once, nothing extra
    murmur2 = DefaultPartitioner()
    partitions = list(range(PARTITIONS))
    sent = {e.event_id: e for e in _events()}
    for partition, key, value in records:
        event = decode_event(value)
        assert event == sent[event.event_id]
        assert key == event.user_id.encode()
        assert partition == murmur2(key, partitions, partitions)
    assert len({p for p, _, _ in records}) > 1  # the test would not notice crc32 on one partition


def test_replaying_a_file_twice_gives_the_same_event_ids(
    kafka_bootstrap: str, topic_factory, group_id: str, tmp_path: Path
) -> None:
    # A file without ids: the reader names rows <file stem>:<row>, the same on every read.
    path = tmp_path / "noids.csv"
    path.write_text(
        "user_id,event_type,timestamp\nu1,view,1700000000000\nu2,click,1700000001000\n"
        "u1,purchase,1700000002000\n"
    )
    topic = topic_factory(partitions=1)
    assert _replay(kafka_bootstrap, str(path), "--topic", topic) == 0
    assert _replay(kafka_bootstrap, str(path), "--topic", topic, "--speedup", "100") == 0
    ids = [decode_event(v).event_id for _, _, v in _read_all(kafka_bootstrap, topic, group_id)]
    assert ids == ["noids:0", "noids:1", "noids:2"] * 2


def test_limit_sends_only_the_first_events(
    kafka_bootstrap: str, topic_factory, group_id: str, events_file: Path
) -> None:
    topic = topic_factory(partitions=1)
    assert _replay(kafka_bootstrap, str(events_file), "--topic", topic, "--limit", "25") == 0
    records = _read_all(kafka_bootstrap, topic, group_id)
    assert [decode_event(v).event_id for _, _, v in records] == [f"e{i}" for i in range(25)]


def test_a_missing_topic_is_created_with_the_workers_partition_count(
    kafka_bootstrap: str, events_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The broker would create it with one partition, and a worker started alongside refuses that.
    topic = f"replay-new-{uuid.uuid4().hex}"
    monkeypatch.setenv("CLICKSCORE_PARTITIONS", "3")
    assert _replay(kafka_bootstrap, str(events_file), "--topic", topic, "--limit", "10") == 0
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    assert len(admin.list_topics(topic, timeout=10).topics[topic].partitions) == 3
    assert topic_size(kafka_bootstrap, topic) == 10


def test_delivery_errors_are_counted_and_exit_non_zero(
    kafka_bootstrap: str, topic_factory, events_file: Path, capsys: pytest.CaptureFixture
) -> None:
    topic = topic_factory(partitions=1, **{"max.message.bytes": "60"})  # every batch too large
    code = _replay(kafka_bootstrap, str(events_file), "--topic", topic, "--limit", "30")
    err = capsys.readouterr().err
    assert code == 1
    assert "delivered 0, failed 30" in err
    assert "MSG_SIZE_TOO_LARGE" in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--topic", "no spaces allowed"], "--topic='no spaces allowed'"),
        (["--rate", "0"], "--rate=0.0"),
        (["--bootstrap", "nonsense"], "--bootstrap=nonsense: "),
    ],
)
def test_bad_settings_stop_at_start_naming_the_setting(
    events_file: Path, argv: list[str], message: str, kafka_bootstrap: str
) -> None:
    # Run as a process: the one-line message and the exit status are the interface.
    cmd = [sys.executable, "-m", "worker.tools.replay", str(events_file), "--quiet"]
    if "--bootstrap" not in argv:
        cmd += ["--bootstrap", kafka_bootstrap]
    done = subprocess.run([*cmd, *argv], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert message in done.stderr
    assert "Traceback" not in done.stderr


def test_bad_rows_are_skipped_by_name_and_the_rest_delivered(
    kafka_bootstrap: str, topic_factory, group_id: str, tmp_path: Path, capsys
) -> None:
    path = tmp_path / "mixed.csv"
    path.write_text(
        "event_id,user_id,event_type,timestamp\n"
        "a,u1,view,1700000000000\nb,u1,teleport,1700000001000\nc,u2,click,1700000002000\n"
    )
    topic = topic_factory(partitions=1)
    # Over the default limit (1 % bad): refused before anything is sent.
    assert _replay(kafka_bootstrap, str(path), "--topic", topic) == 2
    assert "cannot read" in capsys.readouterr().err
    assert _replay(kafka_bootstrap, str(path), "--topic", topic, "--max-bad-fraction", "0.5") == 0
    err = capsys.readouterr().err
    assert "skipped bad row in mixed.csv: row 1: unknown_event_type" in err
    assert "delivered 2, failed 0, bad rows skipped by the reader 1" in err
    ids = [decode_event(v).event_id for _, _, v in _read_all(kafka_bootstrap, topic, group_id)]
    assert ids == ["a", "c"]


def test_unreadable_file_is_a_clear_error(kafka_bootstrap: str, tmp_path: Path) -> None:
    assert _replay(kafka_bootstrap, str(tmp_path / "missing.csv")) == 2


def _watch(bootstrap: str, *argv: str) -> int:
    parser = argparse.ArgumentParser()
    alerts_viewer.add_arguments(parser)
    return alerts_viewer.run(parser.parse_args([*argv, "--bootstrap", bootstrap]))


@pytest.fixture
def alert_topics(kafka_bootstrap: str, topic_factory) -> tuple[str, str]:
    """Two alert topics holding 3 propensity alerts, 2 churn alerts and one unreadable record."""
    propensity, churn = topic_factory(partitions=2), topic_factory(partitions=1)
    records = [
        (f"user-{i}".encode(), json.dumps(_alert(i, "propensity")).encode()) for i in range(3)
    ]
    produce(kafka_bootstrap, propensity, [*records, (b"x", b"not json")])
    produce(
        kafka_bootstrap,
        churn,
        [(f"user-{i}".encode(), json.dumps(_alert(i, "churn")).encode()) for i in range(3, 5)],
    )
    return propensity, churn


def test_alerts_view_prints_what_is_there_and_exits(
    kafka_bootstrap: str, alert_topics: tuple[str, str], capsys: pytest.CaptureFixture
) -> None:
    assert _watch(kafka_bootstrap, "--topics", *alert_topics) == 0
    out = capsys.readouterr().out
    assert "5 alerts" in out
    assert all(f"user-{i}" in out for i in range(5))
    assert out.count("propensity user=") == 3 and out.count("churn user=") == 2
    assert "1 records were not readable alerts" in out


def test_alerts_follow_stops_at_the_limit(
    kafka_bootstrap: str, alert_topics: tuple[str, str], capsys: pytest.CaptureFixture
) -> None:
    argv = ("--follow", "--from-beginning", "--limit", "4", "--topics", *alert_topics)
    assert _watch(kafka_bootstrap, *argv) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if "score=0.900" in line]
    assert len(lines) == 4  # not a terminal: one plain line per alert


def _alert(i: int, kind: str) -> dict[str, object]:
    return {
        "schema_version": 1,
        "alert_id": f"{i:032x}",
        "alert_type": kind,
        "user_id": f"user-{i}",
        "score": 0.9,
        "threshold": 0.7,
        "model_version": "m-test",
        "trigger": "event",
        "event_id": f"e{i}",
        "event_time": "2026-01-01T00:00:00.000Z",
        "emitted_at": "2026-01-01T00:00:01.000Z",
    }
