"""Control records in the pure core: forget and expire delete a user's state, in event order."""

from __future__ import annotations

import pytest

from tests.worker_artifacts import T0_MS, keyed, make_events, shared_artifact
from worker.core.control import control_record
from worker.core.micro_batch import PipelineConfig, Record, process_batch
from worker.core.model_store import Model, load_model
from worker.core.state import UserState


@pytest.fixture(scope="module")
def model() -> Model:
    return load_model(shared_artifact())


def _events(user: str, n: int, prefix: str) -> list[Record]:
    events = [e for e in make_events(200, users=3, seed=3, prefix=prefix) if e.user_id == user]
    return [Record(k, v, "events", 0, 0, T0_MS) for k, v in keyed(events[:n])]


def _control(action: str, user: str, last: str | None = None) -> Record:
    key, value, headers = control_record(action, user, last)  # type: ignore[arg-type]
    return Record(key, value, "events", 0, 0, T0_MS, control=headers[0][1])


def _apply(model: Model, table: dict[str, UserState], records: list[Record]):
    result = process_batch(records, lambda u, _i: table.get(u), model, PipelineConfig())
    for user in result.deletes:
        table.pop(user, None)
    table.update({u: s for u, (s, _) in result.writes.items()})
    return result


def test_forget_deletes_the_state_and_later_events_in_the_batch_start_afresh(
    model: Model,
) -> None:
    table: dict[str, UserState] = {}
    before, after = _events("u1", 3, "a"), _events("u1", 2, "b")
    other = _events("u2", 2, "c")
    result = _apply(model, table, [*before, *other, _control("forget", "u1"), *after])
    assert result.deletes == {"u1": 5} and result.deleted == {"forget": 1}
    assert table["u1"].events == 2  # only the two events after the forget
    assert table["u2"].events == 2  # another user untouched
    assert result.scored + sum(result.controls.values()) == 8

    result = _apply(model, table, [_control("forget", "u1")])
    assert "u1" not in table and result.deleted == {"forget": 1}
    result = _apply(model, table, [_control("forget", "u1")])  # nothing held: tombstone anyway
    assert result.deletes == {"u1": 0} and result.deleted == {}


def test_an_expiry_overtaken_by_an_event_keeps_the_user(model: Model) -> None:
    table: dict[str, UserState] = {}
    _apply(model, table, _events("u1", 3, "a"))
    seen = table["u1"].last_event_id
    assert seen is not None
    newer = _events("u1", 1, "z")
    result = _apply(model, table, [*newer, _control("expire", "u1", seen)])
    assert result.deletes == {} and table["u1"].events == 4 and result.controls == {"expire": 1}
    result = _apply(model, table, [_control("expire", "u1", table["u1"].last_event_id)])
    assert "u1" not in table and result.deleted == {"expire": 1}


@pytest.mark.parametrize(
    ("record", "words"),
    [
        (Record(b"u1", b"", "events", 0, 0, None, control=b"erase"), "unknown control action"),
        (Record(None, b"", "events", 0, 0, None, control=b"forget"), "no key"),
        (Record(b"u1", b"", "events", 0, 0, None, control=b"expire"), "last event id"),
    ],
)
def test_a_malformed_control_record_is_a_dead_letter(
    model: Model, record: Record, words: str
) -> None:
    result = process_batch([record], lambda _u, _i: None, model, PipelineConfig())
    (dead,) = result.dead_letters
    assert dead.reason == "schema" and words in dead.doc["detail"]
    assert result.deletes == {} and result.controls == {}
