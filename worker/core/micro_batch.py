"""The pure batch core: records in -> dead letters, re-keys, state writes, alerts, scores out.

No Faust here. The agent hands a micro-batch of raw records and a ``load_state`` callback (the
table read); it gets back everything to send and write. Accounting for every batch:
``len(records) == scored + duplicates + len(dead_letters) + len(rekeys) + sum(controls)``.

Control records (worker/core/control.py) delete a user's state; they take their place in the
user's waves, so events before one apply to the old state and events after it start afresh.

Within a batch a user may appear several times, so events are scored in *waves*: wave k holds the
k-th event of every user in the batch, and each wave is one call of the step graph (B = users in the
wave), so a user's events are applied in arrival order and each sees the state of the one before.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, Literal, NamedTuple, TypeVar

import msgspec
import numpy as np

from schemas.event import (
    MAX_TS_MS,
    MIN_TS_MS,
    Event,
    EventError,
    Reason,
    decode_event,
    format_timestamp,
)
from training.featurizer import featurize
from worker.core.alerts import AlertType, alert_record, decide, public_user_id
from worker.core.control import Control, ControlError, parse_control
from worker.core.deadletter import dead_letter_record
from worker.core.model_store import Model
from worker.core.outcome_state import on_alert, on_clock, on_event, request_hash, resent
from worker.core.outcomes import Resolved, outcome_record, pending
from worker.core.reasons import event_reasons, pack_reasons, unpack_reasons
from worker.core.records import (
    BatchResult,
    DeadLetter,
    Emit,
    LoadState,
    PipelineConfig,
    Record,
    Rekey,
)
from worker.core.state import (
    UserState,
    id_hash,
    is_duplicate,
    pack_tensors,
    recent_alerts,
    recent_score,
    remember_alert,
    remember_event,
    repair_state,
    state_arrays,
)

__all__ = [  # the batch types are re-exported: callers import them from here
    "BatchResult",
    "DeadLetter",
    "Emit",
    "LoadState",
    "PipelineConfig",
    "Record",
    "Rekey",
    "classify",
    "dead_letter",
    "process_batch",
    "waves",
]

# How far an event's time may run ahead of its Kafka record timestamp (producer clock skew and
# time-zone slips stay well inside it; "year 2999" does not). See docs/policies.md.
MAX_AHEAD_MS = 24 * 3600 * 1000

_Item = TypeVar("_Item", bound=Event | Control)


def classify(
    records: Sequence[Record], cfg: PipelineConfig, result: BatchResult
) -> list[tuple[int, Event | Control]]:
    """Decode every record; dead letters and re-keys go into ``result``, valid events come back."""
    valid: list[tuple[int, Event | Control]] = []
    wall_ms = int(time.time() * 1000)
    for i, rec in enumerate(records):
        if rec.control is not None:
            try:
                valid.append((i, parse_control(rec.key, rec.control, rec.value)))
            except ControlError as exc:
                result.dead_letters.append(dead_letter(i, rec, "schema", str(exc)))
            continue
        try:
            event = decode_event(rec.value or b"", max_bytes=cfg.max_event_bytes)
        except EventError as exc:
            result.dead_letters.append(dead_letter(i, rec, exc.reason, exc.detail))
            continue
        if not MIN_TS_MS <= event.ts_ms <= MAX_TS_MS:
            # An RFC 3339 time such as 9999-12-31T23:59:59-23:00 is year 10000 in UTC: valid per
            # the schema, but no datetime can hold it (the featurizer and the alert's event_time
            # would raise). Integer times are already capped at MAX_TS_MS by the decoder.
            detail = f"event time {event.ts_ms} ms is outside 0001-01-01..3000-01-01 UTC"
            result.dead_letters.append(dead_letter(i, rec, "bad_timestamp", detail))
            continue
        if event.ts_ms > wall_ms + MAX_AHEAD_MS:
            # The producer's clock (and so the record's CreateTime) may be wrong too: the
            # worker's own clock bounds both.
            detail = (
                f"event time {format_timestamp(event.ts_ms)} is more than 24 h after the "
                f"worker's clock {format_timestamp(wall_ms)}"
            )
            result.dead_letters.append(dead_letter(i, rec, "bad_timestamp", detail))
            continue
        if rec.timestamp_ms and event.ts_ms > rec.timestamp_ms + MAX_AHEAD_MS:
            # An event cannot happen long after it was produced. Applied, a far-future time would
            # pin the user's gap feature at 0 and alert cooldown for good, and move the churn
            # sweep's clock (newest event time seen) so far that every user looks idle.
            detail = (
                f"event time {format_timestamp(event.ts_ms)} is more than 24 h after the "
                f"record's Kafka timestamp {format_timestamp(rec.timestamp_ms)}"
            )
            result.dead_letters.append(dead_letter(i, rec, "bad_timestamp", detail))
            continue
        if not rec.key:
            detail = "record has no key; producers must key events by user_id"
            result.dead_letters.append(dead_letter(i, rec, "empty_key", detail))
        elif rec.key != event.user_id.encode("utf-8"):
            # Mis-keyed: its partition may hold another copy of this user's state, so re-send
            # keyed by user_id and score only that copy (it comes back through this topic).
            result.rekeys.append(Rekey(i, event.user_id, rec.value or b""))
        else:
            valid.append((i, event))
    return valid


def waves(valid: Sequence[tuple[int, _Item]]) -> list[list[tuple[int, _Item]]]:
    """Wave k = the k-th event of every user in the batch (arrival order kept within a user)."""
    by_user: dict[str, list[tuple[int, _Item]]] = {}
    for item in valid:
        by_user.setdefault(item[1].user_id, []).append(item)
    depth = max((len(v) for v in by_user.values()), default=0)
    return [[v[k] for v in by_user.values() if len(v) > k] for k in range(depth)]


def process_batch(
    records: Sequence[Record], load_state: LoadState, model: Model, cfg: PipelineConfig
) -> BatchResult:
    """Run one micro-batch through decode, dedup, featurize, step graph and the alert policy."""
    result = BatchResult()
    valid = classify(records, cfg, result)
    states: dict[str, UserState | None] = {}
    for wave in waves(valid):
        _score_wave(wave, records, states, load_state, model, cfg, result)
    return result


def _score_wave(
    wave: Sequence[tuple[int, Event | Control]],
    records: Sequence[Record],
    states: dict[str, UserState | None],
    load_state: LoadState,
    model: Model,
    cfg: PipelineConfig,
    result: BatchResult,
) -> None:
    rows: list[np.ndarray] = []
    pending: list[tuple[int, Event, UserState, Any]] = []
    tensors: dict[str, list[np.ndarray]] = {name: [] for name in model.state_spec}
    for index, event in wave:
        user = event.user_id
        if user not in states:
            loaded = load_state(user, index)
            result.new_users += loaded is None and isinstance(event, Event)
            if loaded is not None:
                # A stored record that decodes but is inconsistent raised here on every
                # redelivery of the batch (a stalled partition): reset the bad parts, count it.
                loaded, repaired = repair_state(loaded)
                result.resets += repaired
            states[user] = loaded
        state = states[user]
        if isinstance(event, Control):
            _control(event, index, state, states, cfg, result)
            continue
        if state is not None and is_duplicate(state, event.event_id):
            result.duplicates += 1
            _resend(state, event, records[index], model, cfg, result)
            # Written back unchanged: after a crash the local store may be ahead of the
            # changelog (written locally, never sent), and only a write reaches the changelog,
            # which is what a partition's next owner restores.
            result.writes.setdefault(user, (state, index))
            continue
        state = state or UserState()
        arrays, reset = state_arrays(state, model.state_spec, model.state_key)
        result.resets += reset
        row, ctx = featurize(event, state.ctx)
        rows.append(row)
        for name, array in arrays.items():
            tensors[name].append(array)
        pending.append((index, event, state, ctx))
    if not pending:
        return
    result.wave_sizes.append(len(pending))
    x = np.stack(rows)  # (B, F)
    elapsed = np.zeros(len(pending), dtype=np.float32)  # (B,): 0 when scoring an event
    stacked = {name: np.stack(arrs) for name, arrs in tensors.items()}  # name -> (B, *shape)
    started = time.perf_counter()
    out = model.scorer.step(x, elapsed, stacked)
    result.wave_seconds.append(time.perf_counter() - started)
    result.scored_waves.append((x, out.p_purchase, out.p_churn))
    for j, (index, event, state, ctx) in enumerate(pending):
        p_buy, p_churn = float(out.p_purchase[j]), float(out.p_churn[j])
        arrays = {n: a[j] for n, a in out.state.items()}
        new_state = _advance(state, event, ctx, arrays, (p_buy, p_churn), model, cfg)
        purchase = event.event_type == "purchase"
        new_state, done = on_event(new_state, event.event_id, event.ts_ms, purchase)
        _outcomes(done, event.user_id, "event", cfg, result)
        seen = _Seen(rows[j], stacked, j, event, ctx)
        new_state = _alerts(new_state, seen, p_buy, p_churn, records[index], model, cfg, result)
        states[event.user_id] = new_state
        result.writes[event.user_id] = (new_state, index)
        result.scored += 1
        if cfg.emit_scores:
            result.scores.append(_score(event, p_buy, p_churn, records[index], model, cfg))


def _control(
    control: Control,
    index: int,
    state: UserState | None,
    states: dict[str, UserState | None],
    cfg: PipelineConfig,
    result: BatchResult,
) -> None:
    """Apply a control record: the user's state is deleted (or, an expiry overtaken, kept)."""
    result.controls[control.action] = result.controls.get(control.action, 0) + 1
    if control.request is not None:
        _resolve(control, index, state, states, cfg, result)
        return
    if not control.applies_to(state):
        return
    user = control.user_id
    states[user] = None  # the user's later events in this batch start afresh
    result.writes.pop(user, None)
    result.deletes[user] = index
    if state is not None:
        result.deleted[control.action] = result.deleted.get(control.action, 0) + 1


def _resolve(
    control: Control,
    index: int,
    state: UserState | None,
    states: dict[str, UserState | None],
    cfg: PipelineConfig,
    result: BatchResult,
) -> None:
    """A ``resolve`` request of the sweep: outcomes its clock decides (re-sent on a redelivery)."""
    req = control.request
    if state is None or req is None:
        return  # a user deleted since (forget, expiry): nothing waits
    user = control.user_id
    again = resent(state, request_hash(req))
    if again:
        _outcomes(again, user, "clock", cfg, result)
        return
    new_state, done = on_clock(state, req)
    if new_state is state:
        return
    _outcomes(done, user, "clock", cfg, result)
    states[user] = new_state
    result.writes[user] = (new_state, index)


def _advance(
    state: UserState,
    event: Event,
    ctx: Any,
    arrays: dict[str, np.ndarray],
    scores: tuple[float, float],
    model: Model,
    cfg: PipelineConfig,
) -> UserState:
    state = remember_event(state, event.event_id, window=cfg.dedup_window, scores=scores)
    return msgspec.structs.replace(
        state,
        ctx=ctx,
        tensors=pack_tensors(arrays),
        state_spec=model.state_key,
        last_event_id=event.event_id,
        last_event_ts_ms=event.ts_ms,
        events=state.events + 1,
    )


class _Seen(NamedTuple):
    """What an alert's reasons re-score: the event's row, the state before it, its words."""

    row: np.ndarray  # (F,)
    wave_state: dict[str, np.ndarray]  # name -> (B, *shape): the wave's state before its events
    j: int  # this event's row in the wave
    event: Event
    ctx: Any  # FeatureContext after the event

    def before(self) -> dict[str, np.ndarray]:
        """This user's state tensors before the event (no batch dim); only read when alerting."""
        return {n: a[self.j] for n, a in self.wave_state.items()}


def _alerts(
    state: UserState,
    seen: _Seen,
    p_buy: float,
    p_churn: float,
    rec: Record,
    model: Model,
    cfg: PipelineConfig,
    result: BatchResult,
) -> UserState:
    event = seen.event
    thresholds = model.thresholds
    arms = {"propensity": state.propensity, "churn": state.churn}
    heads: tuple[tuple[AlertType, float], ...] = (("propensity", p_buy), ("churn", p_churn))
    for alert_type, score in heads:
        arm, fire = decide(
            arms[alert_type],
            score,
            threshold=thresholds[alert_type],
            hysteresis=cfg.hysteresis,
            cooldown_ms=cfg.cooldown_ms,
            now_ms=event.ts_ms,
        )
        arms[alert_type] = arm
        if fire:
            emitted_ms = int(time.time() * 1000)
            reasons = event_reasons(
                model.scorer, alert_type, score, seen.row, seen.before(), event, seen.ctx
            )
            doc = alert_record(
                alert_type=alert_type,
                user_id=event.user_id,
                trigger="event",
                event_id=event.event_id,
                event_ts_ms=event.ts_ms,
                score=score,
                threshold=thresholds[alert_type],
                model_version=model.version,
                key=cfg.pseudonym_key,
                emitted_ms=emitted_ms,
                reasons=reasons,
            )
            result.alerts.append(Emit(alert_type, doc["user_id"], doc, rec.timestamp_ms))
            state = remember_alert(
                state,
                event.event_id,
                alert_type,
                score=score,
                threshold=thresholds[alert_type],
                model_version=model.version,
                emitted_ms=emitted_ms,
                reasons=pack_reasons(reasons),
            )
            horizon_s = model.manifest["horizons"][f"{alert_type}_seconds"]
            wait = pending(alert_type, doc["alert_id"], model.version, event.ts_ms, horizon_s)
            state, done = on_alert(state, wait, event.event_id)
            _outcomes(done, event.user_id, "event", cfg, result)
    return msgspec.structs.replace(state, propensity=arms["propensity"], churn=arms["churn"])


def _resend(
    state: UserState,
    event: Event,
    rec: Record,
    model: Model,
    cfg: PipelineConfig,
    result: BatchResult,
) -> None:
    """Re-send what a redelivered (duplicate) event produced: after a crash it may be lost.

    Same alert ids, same scores, so consumers dedupe; the state is not stepped again. A score
    re-sent after a model swap carries the serving model's version.
    """
    if cfg.emit_scores:
        scores = recent_score(state, event.event_id)
        if scores is not None:
            result.scores.append(_score(event, scores[0], scores[1], rec, model, cfg))
    for kept in recent_alerts(state, event.event_id):
        doc = alert_record(
            alert_type=kept.alert_type,
            user_id=event.user_id,
            trigger="event",
            event_id=event.event_id,
            event_ts_ms=event.ts_ms,
            score=kept.score,
            threshold=kept.threshold,
            model_version=kept.model_version,
            key=cfg.pseudonym_key,
            emitted_ms=kept.emitted_ms,
            reasons=unpack_reasons(kept.reasons, event, state.ctx),
        )
        result.alerts.append(Emit(kept.alert_type, doc["user_id"], doc, rec.timestamp_ms))
    _outcomes(resent(state, id_hash(event.event_id)), event.user_id, "event", cfg, result)


def _outcomes(
    done: list[Resolved],
    user_id: str,
    trigger: Literal["event", "clock"],
    cfg: PipelineConfig,
    result: BatchResult,
) -> None:
    """Queue the outcome records of ``done`` (worker/core/outcomes.py) for the outcomes topic."""
    user = public_user_id(user_id, cfg.pseudonym_key)
    for r in done:
        doc = outcome_record(r, user, trigger)
        result.outcomes.append(Emit("outcomes", user, doc, None))  # None: not in the latency


def _score(
    event: Event, p_buy: float, p_churn: float, rec: Record, model: Model, cfg: PipelineConfig
) -> Emit:
    user = public_user_id(event.user_id, cfg.pseudonym_key)
    doc = {
        "event_id": event.event_id,
        "user_id": user,
        "timestamp": event.ts_ms,
        "p_purchase": p_buy,
        "p_churn": p_churn,
        "model_version": model.version,
    }
    return Emit("scores", user, doc, rec.timestamp_ms)


def dead_letter(index: int, rec: Record, reason: Reason, detail: str) -> DeadLetter:
    """The dead letter of ``records[index]``: its original bytes, source and why."""
    doc = dead_letter_record(
        reason=reason,
        detail=detail,
        topic=rec.topic,
        partition=rec.partition,
        offset=rec.offset,
        timestamp_ms=rec.timestamp_ms,
        key=rec.key,
        value=rec.value,
    )
    return DeadLetter(index, reason, doc)
