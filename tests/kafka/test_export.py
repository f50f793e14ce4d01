"""``worker export``: the events topic to a file (Parquet) that training reads back unchanged."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from schemas.event import Event, format_timestamp
from tests.kafka_io import produce_at
from tests.worker_artifacts import T0_MS, keyed, make_events
from training.datasets import read_events
from worker.tools.export import main as export

pytestmark = [pytest.mark.kafka]

EARLY, LATE = T0_MS, T0_MS + 3_600_000  # the records' Kafka timestamps (when produced)


def _fields(events: list[Event]) -> list[tuple]:
    return sorted(
        (e.event_id, e.user_id, e.event_type, e.ts_ms, e.session_id, e.item_id, e.category_id,
         e.price, e.quantity)
        for e in events
    )  # fmt: skip


def test_export_round_trips_what_the_worker_would_score(
    kafka_bootstrap: str, topic_factory: Callable[..., str], tmp_path: Path
) -> None:
    topic = topic_factory(partitions=3)
    early = make_events(60, users=7, seed=1, prefix="a")
    late = make_events(40, users=5, seed=2, prefix="b")
    noise = [
        (b"u1", b"not an event"),
        (b"someone-else", keyed(early[:1])[0][1]),  # mis-keyed: the worker re-sends it
        keyed(early[:1])[0],  # a redelivered copy
    ]
    produce_at(kafka_bootstrap, topic, keyed(early) + noise, EARLY)
    produce_at(kafka_bootstrap, topic, keyed(late), LATE)
    common = ["--topic", topic, "--bootstrap", kafka_bootstrap]

    out = tmp_path / "all.parquet"
    assert export([str(out), *common]) == 0
    log = read_events(out)  # what ``training train --events all.parquet`` reads
    assert _fields(log.events) == _fields(early + late)

    before = tmp_path / "before.csv.gz"
    assert export([str(before), *common, "--until", format_timestamp(LATE)]) == 0
    assert _fields(read_events(before).events) == _fields(early)

    after = tmp_path / "after.parquet"
    assert export([str(after), *common, "--since", str(LATE)]) == 0
    assert _fields(read_events(after).events) == _fields(late)

    nothing = tmp_path / "none.parquet"
    assert export([str(nothing), *common, "--from-offset", "1000"]) == 1  # past every end
    assert not nothing.exists()


def test_export_refuses_two_starts(kafka_bootstrap: str, tmp_path: Path) -> None:
    args = [str(tmp_path / "x.parquet"), "--bootstrap", kafka_bootstrap, "--from-offset", "0",
            "--since", "2026-01-01T00:00:00Z"]  # fmt: skip
    assert export(args) == 2
