"""Alert outcomes: did the alert come true? The pure join of an alert with what the user did next.

Each alert leaves a :class:`Pending` in the user's state (alert id, head, model version, alert
time and the time its horizon ends). The user's later events resolve it, in order:

* propensity (H = the manifest's ``horizons.propensity_seconds``): **true** on a purchase at a
  time in (alert, alert + H]; **false** once an event's time passes alert + H, or the sweep's
  clock passes it by CLOCK_GRACE_MS (a silent user bought nothing).
* churn (D = ``horizons.churn_seconds``): **false** on any event in (alert, alert + D]; **true**
  on an event after alert + D, or once the sweep's clock passes alert + D (by CLOCK_GRACE_MS)
  with no event.

These are training/labels.py's labels, so precision over the resolved alerts is the offline
precision of the same alerts. A resolution is written with the state in the same batch and the
pending entry leaves the state with it, so a redelivered event finds nothing left to resolve; what
an event resolved is kept (:class:`Resolved`) while that event can be redelivered, and re-sent.

At most ``MAX_PENDING`` alerts wait per user (state stays small); a newer one pushes the oldest
out as ``unknown`` (never counted in precision). A ``forget`` or an expiry deletes the state and
the user's pending alerts with it: they get no outcome.

>>> p = Pending(0, bytes(16), "v1", alert_ms=0, due_ms=1000)
>>> left, done = resolve_on_event((p,), ts_ms=500, purchase=True)
>>> left, done[0].outcome, done[0].resolved_ms
((), 'true', 500)
>>> resolve_on_clock((p,), now_ms=1001)[1][0].outcome
'false'
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import msgspec

from schemas.event import format_timestamp

HEADS: tuple[Literal["propensity", "churn"], ...] = ("propensity", "churn")
MAX_PENDING = 4  # per user; each costs ~40 bytes + the model version's length
# The sweep's clock decides an alert only this long (event time) past its horizon: an event of the
# user still on its way (a batch in flight, another partition behind, a restart) decides it first.
CLOCK_GRACE_MS = 60_000
OUTCOME_SCHEMA_VERSION = 1
Outcome = Literal["true", "false", "unknown"]


class Pending(msgspec.Struct, frozen=True, array_like=True):
    """An alert waiting for its outcome (kept in the user's state: compact, no field names)."""

    head: int  # index into HEADS
    alert_id: bytes  # the alert's id, hex-decoded (16 bytes)
    model_version: str
    alert_ms: int  # event time of the alert (the sweep's clock for a sweep alert)
    due_ms: int  # alert_ms + the head's horizon: past it, the outcome is known


class Resolved(msgspec.Struct, frozen=True, array_like=True):
    """An outcome, and what resolved it (an event's id hash), kept for a re-send."""

    alert: Pending
    outcome: Outcome
    resolved_ms: int
    by: bytes = b""  # id hash of the resolving event (state.id_hash); empty: the sweep's clock


class ClockRequest(msgspec.Struct, frozen=True):
    """A ``resolve`` control record's value: the sweep's clock, and a sweep alert to wait on.

    The sweep cannot write the table, so it asks the agent (in order with the user's events).
    ``last_event_id`` is the user's last event when the sweep looked: if the user was active
    since, that event already speaks for the sweep alert (churn false).
    """

    now_ms: int  # decided up to here: the sweep's clock less CLOCK_GRACE_MS
    last_event_id: str
    alert: Pending | None = None


_request_decoder = msgspec.json.Decoder(ClockRequest)


def clock_request(now_ms: int, last_event_id: str, alert: Pending | None = None) -> bytes:
    """The value of a ``resolve`` control record (JSON)."""
    return msgspec.json.encode(ClockRequest(now_ms, last_event_id, alert))


def parse_clock_request(raw: bytes) -> ClockRequest:
    """The request in a ``resolve`` control record's value; ValueError when it is not one."""
    try:
        req = _request_decoder.decode(raw)
    except msgspec.DecodeError as exc:
        raise ValueError(f"resolve: {exc}") from None
    if req.alert is not None and (req.alert.head not in (0, 1) or len(req.alert.alert_id) != 16):
        raise ValueError("resolve: the alert is not a churn or propensity alert with a 16-byte id")
    return req


def pending(
    head: str, alert_id: str, model_version: str, alert_ms: int, horizon_s: float
) -> Pending:
    """The pending entry of a new alert of ``head`` whose horizon is ``horizon_s`` seconds."""
    due_ms = alert_ms + int(horizon_s * 1000)
    return Pending(HEADS.index(head), bytes.fromhex(alert_id), model_version, alert_ms, due_ms)


def add(
    waiting: Sequence[Pending], new: Pending, by: bytes = b""
) -> tuple[tuple[Pending, ...], list[Resolved]]:
    """``waiting`` plus ``new``, at most MAX_PENDING; the pushed-out oldest resolved ``unknown``."""
    kept = (*waiting, new)
    over = kept[: max(0, len(kept) - MAX_PENDING)]
    return kept[len(over) :], [Resolved(p, "unknown", new.alert_ms, by) for p in over]


def resolve_on_event(
    waiting: Sequence[Pending], *, ts_ms: int, purchase: bool, by: bytes = b""
) -> tuple[tuple[Pending, ...], list[Resolved]]:
    """Resolve what an event of the user at ``ts_ms`` decides; (still pending, resolved)."""
    left: list[Pending] = []
    done: list[Resolved] = []
    for p in waiting:
        if ts_ms <= p.alert_ms:  # not after the alert (its own event, a tie): decides nothing
            left.append(p)
        elif HEADS[p.head] == "propensity":
            if ts_ms > p.due_ms:
                done.append(Resolved(p, "false", p.due_ms, by))
            elif purchase:
                done.append(Resolved(p, "true", ts_ms, by))
            else:
                left.append(p)
        else:  # churn: any later event decides it, by whether it came within D
            outcome: Outcome = "true" if ts_ms > p.due_ms else "false"
            done.append(Resolved(p, outcome, p.due_ms if outcome == "true" else ts_ms, by))
    return tuple(left), done


def resolve_on_clock(
    waiting: Sequence[Pending], *, now_ms: int, by: bytes = b""
) -> tuple[tuple[Pending, ...], list[Resolved]]:
    """Resolve what the sweep's clock at ``now_ms`` decides: horizons passed with no event."""
    left = tuple(p for p in waiting if now_ms <= p.due_ms)
    done = [
        Resolved(p, "false" if HEADS[p.head] == "propensity" else "true", p.due_ms, by)
        for p in waiting
        if now_ms > p.due_ms
    ]
    return left, done


def next_due(waiting: Sequence[Pending]) -> int | None:
    """The earliest horizon end among ``waiting`` (the sweep asks for a resolution past it)."""
    return min((p.due_ms for p in waiting), default=None)


def outcome_record(
    done: Resolved, user_id: str, trigger: Literal["event", "clock"]
) -> dict[str, Any]:
    """The document of schemas/alert_outcome.schema.json (``user_id``: already public).

    ``resolved_by``: ``event`` (the user's event), ``clock`` (the sweep's), ``limit`` (pushed
    out by a newer alert past MAX_PENDING: outcome ``unknown``).
    """
    p = done.alert
    return {
        "schema_version": OUTCOME_SCHEMA_VERSION,
        "alert_id": p.alert_id.hex(),
        "alert_type": HEADS[p.head],
        "user_id": user_id,
        "model_version": p.model_version,
        "outcome": done.outcome,
        "alert_time": format_timestamp(p.alert_ms),
        "resolved_time": format_timestamp(done.resolved_ms),
        "seconds_to_outcome": max(0, done.resolved_ms - p.alert_ms) / 1000.0,
        "resolved_by": "limit" if done.outcome == "unknown" else trigger,
    }
