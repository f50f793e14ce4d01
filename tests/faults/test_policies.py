"""The input policies of docs/policies.md, one test each, on the worker's pure batch core.

Duplicates (by event id, within the per-user window) do not advance state; late events apply in
arrival order with the featurizer's gap clamped at 0; far-future times are dead letters; ancient
times are scored. The same rules on a real worker: test_hostile_input.py's corpus run.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import msgspec
import numpy as np
import pytest

from schemas.event import Event, encode_event
from tests.worker_artifacts import T0_MS, shared_artifact
from training.featurizer import LOG_GAP, featurize_sequence
from training.score import score_events
from worker.core.micro_batch import MAX_AHEAD_MS, PipelineConfig, Record, process_batch
from worker.core.model_store import Model, load_model
from worker.core.state import UserState

MINUTE = 60_000


@pytest.fixture(scope="module")
def model() -> Model:
    return load_model(shared_artifact())


def _ev(event_id: str, ts_ms: int, user: str = "u1", event_type: str = "view") -> Event:
    return Event(event_id=event_id, user_id=user, event_type=event_type, ts_ms=ts_ms, item_id="i1")


class Run:
    """Events through process_batch in batches, as the agent does; table and scores kept."""

    def __init__(self, model: Model, window: int = 64, record_ts_ms: int | None = None) -> None:
        self.model = model
        self.cfg = PipelineConfig(emit_scores=True, dedup_window=window)
        self.table: dict[str, UserState] = {}
        self.scores: list[dict] = []
        self.dead: list[str] = []
        self.duplicates = 0
        self.record_ts_ms = record_ts_ms
        self.offset = 0

    def feed(
        self, events: Sequence[Event], batch: int = 3, wire: dict[str, bytes] | None = None
    ) -> None:
        """Produce ``events`` (``wire`` replaces an event's bytes, by event id) and run them."""
        for start in range(0, len(events), batch):
            chunk = events[start : start + batch]
            records = []
            for e in chunk:
                ts = self.record_ts_ms if self.record_ts_ms is not None else e.ts_ms
                value = (wire or {}).get(e.event_id) or encode_event(e)
                records.append(Record(e.user_id.encode(), value, "ev", 0, self.offset, ts))
                self.offset += 1
            result = process_batch(records, lambda u, _i: self.table.get(u), self.model, self.cfg)
            self.table.update({u: s for u, (s, _) in result.writes.items()})
            self.scores += [s.doc for s in result.scores]
            self.dead += [d.reason for d in result.dead_letters]
            self.duplicates += result.duplicates


def _comparable(state: UserState) -> UserState:
    kept = tuple(msgspec.structs.replace(a, emitted_ms=0) for a in state.recent_alerts)
    return msgspec.structs.replace(state, recent_alerts=kept)


def _offline(events: Sequence[Event]) -> list[tuple[float, float]]:
    s = score_events(shared_artifact(), events)
    return list(zip(s.p_purchase.tolist(), s.p_churn.tolist(), strict=True))


def _streamed(run: Run) -> list[tuple[float, float]]:
    return _streamed_docs(run.scores)


def _streamed_docs(docs: Sequence[dict]) -> list[tuple[float, float]]:
    return [(d["p_purchase"], d["p_churn"]) for d in docs]


def test_a_duplicate_within_the_window_does_not_advance_state(model: Model) -> None:
    events = [_ev(f"e{i}", T0_MS + i * MINUTE, event_type="add_to_cart") for i in range(6)]
    with_dup = [*events[:4], events[2], events[1], *events[4:]]  # e2, e1 re-sent (redelivery)
    dup_run, clean_run = Run(model), Run(model)
    dup_run.feed(with_dup)
    clean_run.feed(events)
    assert dup_run.duplicates == 2
    # The same state, field for field (the kept alerts differ only in their wall-clock emitted_at).
    assert _comparable(dup_run.table["u1"]) == _comparable(clean_run.table["u1"])
    # A duplicate re-sends the score its first delivery produced (kept in the user's state, in
    # case the first send was lost to a crash); every other score is as if it never came.
    assert [d["event_id"] for d in dup_run.scores] == [e.event_id for e in with_dup]
    first = {d["event_id"]: d for d in reversed(dup_run.scores)}
    for resent in (dup_run.scores[4], dup_run.scores[5]):
        original = first[resent["event_id"]]
        assert resent["p_purchase"] == pytest.approx(original["p_purchase"], abs=1e-6)
        assert resent["p_churn"] == pytest.approx(original["p_churn"], abs=1e-6)
    unique = [*dup_run.scores[:4], *dup_run.scores[6:]]
    np.testing.assert_allclose(_streamed_docs(unique), _offline(events), atol=1e-5)


def test_a_duplicate_beyond_the_window_is_applied_again(model: Model) -> None:
    # The window is bounded (DEDUP_WINDOW ids per user): an id older than that is new again.
    events = [_ev(f"e{i}", T0_MS + i * MINUTE) for i in range(4)]
    run = Run(model, window=2)
    run.feed([*events, events[0]])
    assert run.duplicates == 0 and len(run.scores) == 5
    assert run.table["u1"].events == 5
    near = Run(model, window=2)
    near.feed([*events, events[3]])  # the newest id is inside the window: dropped
    assert near.duplicates == 1 and near.table["u1"].events == 4


def test_late_events_apply_in_arrival_order_with_the_gap_clamped(model: Model) -> None:
    t = T0_MS
    arrival = [
        _ev("a", t),
        _ev("b", t + 20 * MINUTE),
        _ev("late", t + 5 * MINUTE),
        _ev("c", t + 30 * MINUTE),
    ]
    run = Run(model)
    run.feed(arrival, batch=2)
    # Streamed == offline scoring of the same events in arrival order (not re-sorted by time).
    np.testing.assert_allclose(_streamed(run), _offline(arrival), atol=1e-5)
    by_time = sorted(arrival, key=lambda e: e.ts_ms)
    assert not np.allclose(_offline(by_time)[-1], _streamed(run)[-1], atol=1e-6)
    rows = featurize_sequence(arrival)  # (4, F)
    assert rows[2, LOG_GAP] == 0.0  # the late event's negative gap counts as simultaneous
    # The user's clock never goes back: "c" is 10 minutes after "b", not 25 after "late".
    assert rows[3, LOG_GAP] == pytest.approx(np.log1p(600.0) / 10.0)
    assert run.table["u1"].ctx.last_ts_ms == t + 30 * MINUTE


def test_far_future_times_are_dead_letters_and_move_no_clock(model: Model) -> None:
    produced = T0_MS  # the records' Kafka timestamp
    ok = _ev("soon", produced + MAX_AHEAD_MS - MINUTE, user="u2")  # inside 24 h: clock skew
    far = _ev("y2999", 32_503_000_000_000, user="u1")  # year 2999, a producer bug
    just_over = _ev("over", produced + MAX_AHEAD_MS + 1, user="u1")
    run = Run(model, record_ts_ms=produced)
    run.feed([_ev("e0", produced - MINUTE), far, just_over, ok])
    assert run.dead == ["bad_timestamp", "bad_timestamp"]
    assert [d["event_id"] for d in run.scores] == ["e0", "soon"]
    # The churn sweep's clock is fed the users' last event times: none is beyond the limit.
    newest = max(s.ctx.last_ts_ms or 0 for s in run.table.values())
    assert newest <= produced + MAX_AHEAD_MS


def test_times_far_ahead_of_the_worker_clock_are_dead_letters(model: Model) -> None:
    """A producer clock two days fast: its CreateTime agrees with the event, the wall does not."""
    now = int(time.time() * 1000)
    skewed = now + 2 * 24 * 3_600_000
    run = Run(model, record_ts_ms=skewed)
    run.feed([_ev("skewed", skewed - MINUTE, user="u1"), _ev("fine", now - MINUTE, user="u2")])
    assert run.dead == ["bad_timestamp"]
    assert [d["event_id"] for d in run.scores] == ["fine"]


def test_ancient_times_are_scored(model: Model) -> None:
    # Old data is legitimate (replays of history); the year 1 event after a 1970 one is late.
    events = [
        _ev("epoch", 1, user="old"),
        _ev("year1", -62_135_596_800_000, user="old"),
        _ev("now", T0_MS, user="old"),
    ]
    # On the wire a time before 1970 can only be RFC 3339 (epoch milliseconds must be >= 0).
    year1 = b'{"event_id":"year1","user_id":"old","event_type":"view","item_id":"i1",'
    year1 += b'"timestamp":"0001-01-01T00:00:00Z"}'
    run = Run(model, record_ts_ms=T0_MS)
    run.feed(events, wire={"year1": year1})
    assert run.dead == [] and [d["event_id"] for d in run.scores] == ["epoch", "year1", "now"]
    np.testing.assert_allclose(_streamed(run), _offline(events), atol=1e-5)
