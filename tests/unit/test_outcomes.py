"""Alert outcomes: the pure join, and the batch core's outcomes against labels computed offline."""

from __future__ import annotations

import dataclasses
from collections import Counter

import numpy as np
import pytest

import schemas
from tests.unit.test_worker_pipeline import Table, _records, _run
from tests.worker_artifacts import keyed, make_events, shared_artifact
from training.score import score_events
from worker.core.control import CONTROL_HEADER, resolve_record
from worker.core.micro_batch import PipelineConfig, Record
from worker.core.model_store import Model, load_model
from worker.core.outcomes import (
    CLOCK_GRACE_MS,
    MAX_PENDING,
    Pending,
    add,
    clock_request,
    outcome_record,
    resolve_on_clock,
    resolve_on_event,
)
from worker.core.state import decode_state, encode_state
from worker.core.sweep import sweep

H_S, D_S = 15.0, 12.0  # horizons of the test model (events are 1 s apart over ~10 users)


def _p(head: int, alert_ms: int = 1000, horizon_ms: int = 10_000) -> Pending:
    return Pending(head, bytes(16), "v1", alert_ms, alert_ms + horizon_ms)


def test_propensity_comes_true_on_a_purchase_within_h_and_false_once_h_has_passed() -> None:
    p = _p(0)
    assert resolve_on_event((p,), ts_ms=1000, purchase=True) == ((p,), [])  # its own event
    assert resolve_on_event((p,), ts_ms=5000, purchase=False) == ((p,), [])
    left, done = resolve_on_event((p,), ts_ms=11_000, purchase=True)  # at alert + H: within
    assert left == () and (done[0].outcome, done[0].resolved_ms) == ("true", 11_000)
    left, done = resolve_on_event((p,), ts_ms=11_001, purchase=True)  # past H: too late
    assert left == () and (done[0].outcome, done[0].resolved_ms) == ("false", 11_000)
    assert resolve_on_clock((p,), now_ms=11_000) == ((p,), [])
    assert resolve_on_clock((p,), now_ms=11_001)[1][0].outcome == "false"


def test_churn_is_false_on_any_event_within_d_and_true_after_d_or_by_the_clock() -> None:
    p = _p(1)
    assert resolve_on_event((p,), ts_ms=1000, purchase=False) == ((p,), [])
    assert resolve_on_event((p,), ts_ms=11_000, purchase=False)[1][0].outcome == "false"
    done = resolve_on_event((p,), ts_ms=11_001, purchase=False)[1][0]
    assert (done.outcome, done.resolved_ms) == ("true", 11_000)
    done = resolve_on_clock((p,), now_ms=11_001)[1][0]
    assert (done.outcome, done.resolved_ms) == ("true", 11_000)


def test_at_most_max_pending_wait_and_the_pushed_out_one_is_unknown() -> None:
    waiting: tuple[Pending, ...] = ()
    for i in range(MAX_PENDING):
        waiting, done = add(waiting, _p(0, alert_ms=i))
        assert done == []
    waiting, done = add(waiting, _p(1, alert_ms=99))
    assert len(waiting) == MAX_PENDING and [d.outcome for d in done] == ["unknown"]
    assert done[0].alert.alert_ms == 0 and waiting[-1].alert_ms == 99


def test_outcome_records_validate() -> None:
    p = _p(0)
    for done, by in ((resolve_on_event((p,), ts_ms=2000, purchase=True)[1][0], "event"),
                     (resolve_on_clock((p,), now_ms=20_000)[1][0], "clock"),
                     (add((p,) * MAX_PENDING, _p(1))[1][0], "event")):  # fmt: skip
        doc = outcome_record(done, "u1", by)  # type: ignore[arg-type]
        schemas.validate("alert_outcome", doc)
    assert doc["outcome"] == "unknown" and doc["resolved_by"] == "limit"


@pytest.fixture(scope="module")
def model() -> Model:
    """The shared test model, short horizons, thresholds at the median score (many alerts)."""
    base = load_model(shared_artifact())
    offline = score_events(shared_artifact(), make_events(400, users=10, seed=5))
    thresholds = {
        "propensity": float(np.median(offline.p_purchase)),
        "churn": float(np.median(offline.p_churn)),
    }
    horizons = {"propensity_seconds": H_S, "churn_seconds": D_S}
    manifest = {**base.manifest, "thresholds": thresholds, "horizons": horizons}
    return dataclasses.replace(base, manifest=manifest)


CFG = PipelineConfig(cooldown_ms=0, hysteresis=0.0)


def _offline(alert: dict, events: list, end_ms: int) -> str | None:
    """The alert's label from the events (training/labels.py's definition), None if undecided."""
    t = alert["_ts"]
    mine = sorted(e.ts_ms for e in events if e.user_id == alert["user_id"] and e.ts_ms > t)
    if alert["alert_type"] == "propensity":
        buys = [
            e.ts_ms for e in events if e.user_id == alert["user_id"] and e.event_type == "purchase"
        ]
        if any(t < b <= t + H_S * 1000 for b in buys):
            return "true"
        return "false" if end_ms > t + H_S * 1000 else None
    if mine and mine[0] <= t + D_S * 1000:
        return "false"
    return "true" if end_ms > t + D_S * 1000 else None


def _outcomes(results: list) -> list[dict]:
    return [o.doc for r in results for o in r.outcomes]


def _clock(table: Table, model: Model, now_ms: int) -> list[Record]:
    """The sweep's ``resolve`` control records at ``now_ms`` (as the runtime sends them)."""
    found = sweep(table.items(), now_ms=now_ms, idle_ms=10**12, model=model, cfg=CFG,
                  alerted=set(), batch_size=64)  # fmt: skip
    out = []
    for user, request in found.resolve:
        key, value, headers = resolve_record(user, request)
        out.append(Record(key, value, "events", 0, 0, None, dict(headers)[CONTROL_HEADER]))
    return out


def test_streamed_outcomes_equal_offline_labels_and_redelivery_adds_none(model: Model) -> None:
    events = make_events(400, users=10, seed=5)
    table = Table()
    first = _run(model, table, _records(keyed(events)), 32, CFG)
    alerts = [dict(a.doc, _ts=_ts(a.doc)) for r in first for a in r.alerts]
    assert len(alerts) > 50
    end_ms = events[-1].ts_ms
    # The clock passes every horizon: what the events left undecided is decided now.
    late = end_ms + 60_000
    requests = _clock(table, model, late + CLOCK_GRACE_MS)
    clocked = _run(model, table, requests, 64, CFG)
    assert not _clock(table, model, late + CLOCK_GRACE_MS)  # nothing left to ask for
    docs = _outcomes(first) + _outcomes(clocked)
    by_id = {d["alert_id"]: d for d in docs}
    assert len(by_id) == len(docs) == len(alerts)  # exactly one outcome per alert
    for a in alerts:
        assert by_id[a["alert_id"]]["outcome"] == _offline(a, events, late), a
        assert by_id[a["alert_id"]]["model_version"] == model.version
    for d in docs:
        schemas.validate("alert_outcome", d)
    assert {d["outcome"] for d in docs} == {"true", "false"}
    assert all(not s.pending for s in table.values())
    # Redelivery of the last events (within the re-send window) and of the clock's requests:
    # re-sends of the same records only.
    again = _run(model, table, _records(keyed(events[-40:])), 32, CFG)
    assert sum(r.duplicates for r in again) == 40
    again += _run(model, table, requests, 64, CFG)
    assert all(d == by_id[d["alert_id"]] for d in _outcomes(again))


def _ts(alert: dict) -> int:
    from schemas.event import parse_timestamp

    return parse_timestamp(alert["event_time"])


def test_a_redelivered_batch_resends_its_outcomes_unchanged(model: Model) -> None:
    # A crash after the state reached the changelog, before the outcomes reached their topic:
    # the redelivered events are duplicates and re-send what they resolved (no new resolution).
    events = make_events(200, users=10, seed=6)
    table = Table()
    _run(model, table, _records(keyed(events[:160])), 40, CFG)
    (tail,) = _run(model, table, _records(keyed(events[160:])), 40, CFG)
    (redelivered,) = _run(model, table, _records(keyed(events[160:])), 40, CFG)
    assert tail.outcomes and redelivered.duplicates == 40
    resent = Counter(str(sorted(o.doc.items())) for o in redelivered.outcomes)
    sent = Counter(str(sorted(o.doc.items())) for o in tail.outcomes)
    assert resent == sent


def test_outcome_state_round_trips_and_stays_small(model: Model) -> None:
    # A model version as long as training's (cnnrnn-<time>-<sha8>): every pending alert keeps it.
    version = "cnnrnn-20261202T120000Z-1a2b3c4d"
    model = dataclasses.replace(model, manifest={**model.manifest, "model_version": version})
    events = make_events(200, users=1, seed=3)
    table = Table()
    _run(model, table, _records(keyed(events)), 32, CFG)
    (state,) = table.values()
    assert state.recent_outcomes and decode_state(encode_state(state)) == state
    assert len(encode_state(state)) <= 1024, len(encode_state(state))


def test_a_sweep_alert_waits_for_its_outcome_once(model: Model) -> None:
    # The sweep asks the agent to wait on its churn alert; a re-sent sweep alert (a restart) asks
    # again with the same alert id: it still gets one outcome.
    events = make_events(30, users=3, seed=7)
    table = Table()
    _run(model, table, _records(keyed(events)), 64, CFG)
    user, state = next(iter(table.items()))
    wait = Pending(
        1, bytes.fromhex("ab" * 16), "v1", events[-1].ts_ms + 1000, events[-1].ts_ms + 5000
    )
    key, value, headers = resolve_record(
        user, clock_request(wait.alert_ms, state.last_event_id or "", wait)
    )
    rec = Record(key, value, "events", 0, 0, None, dict(headers)[CONTROL_HEADER])
    _run(model, table, [rec, rec], 64, CFG)
    assert [p.alert_id for p in table[user].pending].count(wait.alert_id) == 1
    key, value, headers = resolve_record(
        user, clock_request(wait.due_ms + 1, state.last_event_id or "")
    )
    done = _run(model, table, [Record(key, value, "events", 0, 0, None, b"resolve")], 64, CFG)
    mine = [o.doc for o in done[0].outcomes if o.doc["alert_id"] == "ab" * 16]
    assert [(d["outcome"], d["resolved_by"]) for d in mine] == [("true", "clock")]


def test_a_request_that_decides_nothing_writes_no_state(model: Model) -> None:
    # A changelog record per sweep request would be waste: only a decision (or a new wait) writes.
    events = make_events(30, users=3, seed=7)
    table = Table()
    _run(model, table, _records(keyed(events)), 64, CFG)
    user, state = next((u, s) for u, s in table.items() if s.pending)
    early = clock_request(events[0].ts_ms, state.last_event_id or "")
    key, value, headers = resolve_record(user, early)
    rec = Record(key, value, "events", 0, 0, None, dict(headers)[CONTROL_HEADER])
    (result,) = _run(model, table, [rec], 64, CFG)
    assert result.controls == {"resolve": 1} and not result.writes and not result.outcomes


@pytest.mark.parametrize(
    "value",
    [b"", b"not json", b'{"now_ms": "soon", "last_event_id": "e1"}',
     b'{"now_ms": 1, "last_event_id": "e1", "alert": [7, "AAAA", "v", 0, 1]}'],
)  # fmt: skip
def test_a_malformed_resolve_record_is_a_dead_letter(model: Model, value: bytes) -> None:
    (result,) = _run(
        model, Table(), [Record(b"u1", value, "events", 0, 0, None, b"resolve")], 8, CFG
    )
    assert [d.reason for d in result.dead_letters] == ["schema"] and not result.outcomes
