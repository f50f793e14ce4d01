"""Alert outcomes on the per-user state: pending alerts in, resolutions out, kept for a re-send.

The pure join is worker/core/outcomes.py; this module applies it to a :class:`UserState`, so the
resolution and the state that no longer holds the pending alert are one table write. Outcomes an
event resolved stay in ``recent_outcomes`` while that event is in the re-send window (the same
window as its scores and alerts); one the sweep's clock resolved stays until the user's next event.
"""

from __future__ import annotations

import msgspec

from worker.core.outcomes import (
    MAX_PENDING,
    ClockRequest,
    Pending,
    Resolved,
    add,
    resolve_on_clock,
    resolve_on_event,
)
from worker.core.state import ID_HASH_BYTES, RESEND_WINDOW, UserState, id_hash


def on_event(
    state: UserState, event_id: str, ts_ms: int, purchase: bool
) -> tuple[UserState, list[Resolved]]:
    """Resolve what the user's event decides (``state``: after the event was remembered)."""
    if not state.pending and not state.recent_outcomes:
        return state, []  # most events: nothing waits, nothing kept
    by = id_hash(event_id)
    left, done = resolve_on_event(state.pending, ts_ms=ts_ms, purchase=purchase, by=by)
    ids = state.recent_id_hashes  # oldest first
    newest = {
        ids[i : i + ID_HASH_BYTES] for i in range(0, len(ids), ID_HASH_BYTES)[-RESEND_WINDOW:]
    }
    kept = tuple(r for r in state.recent_outcomes if r.by in newest)
    if not done and kept == state.recent_outcomes:
        return state, []
    return msgspec.structs.replace(state, pending=left, recent_outcomes=(*kept, *done)), done


def on_alert(state: UserState, alert: Pending, event_id: str) -> tuple[UserState, list[Resolved]]:
    """Wait for ``alert``'s outcome; an alert pushed out past MAX_PENDING resolves ``unknown``."""
    by = id_hash(event_id)
    waiting, done = add(state.pending, alert, by)
    return msgspec.structs.replace(
        state, pending=waiting, recent_outcomes=(*state.recent_outcomes, *done)
    ), done


def request_hash(req: ClockRequest) -> bytes:
    """What identifies a ``resolve`` request (its redelivery re-sends, never resolves again)."""
    alert = req.alert.alert_id.hex() if req.alert else ""
    return id_hash(f"resolve|{req.now_ms}|{req.last_event_id}|{alert}")


def on_clock(state: UserState, req: ClockRequest) -> tuple[UserState, list[Resolved]]:
    """Apply the sweep's request: its alert waits (or is decided by a later event), then the clock.

    A user active since the sweep looked (another last event) has spoken for the sweep alert:
    the events after the alert time resolve it as any event would.
    """
    by = request_hash(req)
    waiting: tuple[Pending, ...] = state.pending
    done: list[Resolved] = []
    known = {p.alert_id for p in waiting} | {r.alert.alert_id for r in state.recent_outcomes}
    if req.alert is not None and req.alert.alert_id not in known:  # a re-sent sweep alert: once
        waiting, done = add(waiting, req.alert, by)
        if state.last_event_id != req.last_event_id and state.last_event_ts_ms is not None:
            waiting, more = resolve_on_event(
                waiting, ts_ms=state.last_event_ts_ms, purchase=False, by=by
            )
            done += more
    waiting, more = resolve_on_clock(waiting, now_ms=req.now_ms, by=by)
    done += more
    if not done and waiting == state.pending:
        return state, []  # nothing decided, nothing new waits: no state write
    kept = state.recent_outcomes[-2 * MAX_PENDING :]  # a silent user's requests: few, bounded
    new = msgspec.structs.replace(state, pending=waiting, recent_outcomes=(*kept, *done))
    return new, done


def resent(state: UserState, by: bytes) -> list[Resolved]:
    """The kept outcomes that the event or request hashed ``by`` resolved (for a re-send)."""
    return [r for r in state.recent_outcomes if r.by == by]
