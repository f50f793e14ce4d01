"""Control records: delete one user's state, in order with that user's events.

A Faust table write or delete must happen in the stream, with an event of the key's partition
current (worker/runtime/app.py), so both deletions travel the events topic, keyed by the user
id like the user's events (murmur2: the same partition as the state): the agent deletes the key
(RocksDB and a changelog tombstone, which is what the partition's next owner restores).

* ``forget``: an erasure request (``python -m worker forget USER``), unconditional.
* ``expire``: sent by the sweep for a user idle past ``STATE_RETENTION_HOURS``; applied only if
  the user's last event is still the one the sweep saw (an event in between keeps the user).
* ``resolve``: sent by the sweep for a user whose pending alert outcomes are due by its clock, or
  who got a sweep alert (worker/core/outcomes.py); deletes nothing.

A record is a control record when it carries the header ``clickscore-control`` (the action); the
value is empty (``forget``), the last event id (``expire``) or a JSON clock request (``resolve``).
Events never carry that header.

>>> key, value, headers = control_record("expire", "u1", "e9")
>>> parse_control(key, dict(headers)[CONTROL_HEADER], value)
Control(user_id='u1', action='expire', last_event_id='e9', request=None)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

from worker.core.outcomes import ClockRequest, parse_clock_request
from worker.core.state import UserState

CONTROL_HEADER = "clickscore-control"
Action = Literal["forget", "expire", "resolve"]
MAX_ID_BYTES = 1024  # an event id is far shorter; a longer value is not ours


class ControlError(ValueError):
    """A record with the control header that is not a valid control record (a dead letter)."""


@dataclass(frozen=True)
class Control:
    """One control record: which user, what to do, and (expire) the last event it applies to."""

    user_id: str
    action: Action
    last_event_id: str | None = None
    request: ClockRequest | None = None  # resolve: worker/core/outcomes.py

    def applies_to(self, state: UserState | None) -> bool:
        """Whether to delete ``state``: always to forget; to expire, only if still idle."""
        if self.action == "forget":
            return True
        if self.action == "resolve":
            return False  # resolves outcomes (worker/core/micro_batch.py), deletes nothing
        return state is not None and state.last_event_id == self.last_event_id


def control_record(
    action: Action, user_id: str, last_event_id: str | None = None
) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    """(key, value, headers) of a control record for ``user_id``."""
    value = (last_event_id or "").encode("utf-8") if action == "expire" else b""
    return user_id.encode("utf-8"), value, [(CONTROL_HEADER, action.encode("ascii"))]


def resolve_record(user_id: str, request: bytes) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    """(key, value, headers) of a ``resolve`` record (``request``: outcomes.clock_request)."""
    return user_id.encode("utf-8"), request, [(CONTROL_HEADER, b"resolve")]


def parse_control(key: bytes | None, action: bytes, value: bytes | None) -> Control:
    """The control record in a Kafka record, or :class:`ControlError` saying what is wrong."""
    name = action.decode("ascii", "replace")
    if name not in get_args(Action):
        raise ControlError(f"unknown control action {name[:40]!r}")
    if not key:
        raise ControlError(f"{name}: the record has no key (the user id)")
    try:
        user = key.decode("utf-8")
        last = (value or b"").decode("utf-8")
    except UnicodeDecodeError:
        raise ControlError(f"{name}: key or value is not UTF-8") from None
    if name == "expire" and not 0 < len(value or b"") <= MAX_ID_BYTES:
        raise ControlError("expire: the value must be the user's last event id")
    if name == "forget":
        return Control(user, "forget")
    if name == "resolve":
        if len(value or b"") > MAX_ID_BYTES * 2:
            raise ControlError("resolve: the value is too long")
        try:
            return Control(user, "resolve", request=parse_clock_request(value or b""))
        except ValueError as exc:
            raise ControlError(str(exc)) from None
    return Control(user, "expire", last)


def control_header(headers: object) -> bytes | None:
    """The control header's value among a record's headers (a list of pairs or a mapping)."""
    if not headers:
        return None
    pairs = headers.items() if isinstance(headers, dict) else headers
    for name, value in pairs:  # type: ignore[attr-defined]
        if name == CONTROL_HEADER:
            return bytes(value or b"")
    return None
