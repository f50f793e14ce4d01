"""The clickstream event as code: a fast decoder that mirrors ``clickstream_event.schema.json``.

The worker decodes every record with :func:`decode_event`; training's readers build the same
:class:`Event`. A test checks that this decoder and the JSON Schema accept the same documents.

>>> e = decode_event(
...     b'{"event_id":"e1","user_id":"u1","event_type":"view","timestamp":"2026-01-02T03:04:05Z"}'
... )
>>> (e.user_id, e.event_type, e.ts_ms)
('u1', 'view', 1767323045000)
>>> decode_event(b'{"user_id":"u1"}')
Traceback (most recent call last):
...
schemas.event.EventError: schema: Object missing required field `event_id`
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Final, Literal

import msgspec

EVENT_TYPES: Final[tuple[str, ...]] = (
    "view",
    "search",
    "click",
    "add_to_cart",
    "remove_from_cart",
    "wishlist",
    "checkout",
    "purchase",
    "review",
    "share",
)
_EVENT_TYPE_SET: Final = frozenset(EVENT_TYPES)

MAX_TS_MS: Final = 32_503_680_000_000  # 3000-01-01: anything later is a producer bug, not a time
MIN_TS_MS: Final = -62_135_596_800_000  # 0001-01-01T00:00:00Z, the earliest time a datetime holds
# The schema's pattern, but ASCII digits only and no trailing newline (\Z, not $); field ranges are
# checked by datetime and _offset_ok, as the schema's date-time format check does.
_RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?(?P<tz>[Zz]|[+-]\d{2}:\d{2})\Z", re.ASCII
)
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MS: Final = timedelta(milliseconds=1)

Reason = Literal[
    "not_json",
    "not_utf8",
    "not_object",
    "schema",
    "too_large",
    "bad_timestamp",
    "unknown_event_type",
    "empty_key",
    "key_mismatch",
    "internal",
]

_Id = Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
_OptStr = Annotated[str, msgspec.Meta(max_length=256)] | None


class EventError(ValueError):
    """A record that is not a valid event; ``reason`` is a bounded code (metric label, DLQ)."""

    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason: Reason = reason
        self.detail = detail


class Event(msgspec.Struct, frozen=True, kw_only=True):
    """A validated event; ``ts_ms`` is epoch milliseconds (UTC) whatever the wire form was."""

    event_id: str
    user_id: str
    event_type: str
    ts_ms: int
    session_id: str | None = None
    item_id: str | None = None
    category_id: str | None = None
    price: float | None = None
    quantity: int | None = None


class _WireEvent(msgspec.Struct, kw_only=True):
    # Mirrors the JSON Schema field by field; unknown fields are ignored, as the schema allows.
    event_id: _Id
    user_id: _Id
    event_type: str
    timestamp: int | float | str  # float: JSON Schema counts 1.0 as an integer, so we do too
    session_id: _OptStr = None
    item_id: _OptStr = None
    category_id: _OptStr = None
    price: Annotated[float, msgspec.Meta(ge=0, le=1e9)] | None = None
    quantity: int | float | None = None


_decoder: Final = msgspec.json.Decoder(_WireEvent)
_encoder: Final = msgspec.json.Encoder()


def decode_event(raw: bytes, *, max_bytes: int = 1 << 20) -> Event:
    """Decode and validate one JSON event, or raise :class:`EventError` with the reason."""
    try:
        return _decode_event(raw, max_bytes)
    except RecursionError:
        # msgspec raises this (not a DecodeError) for JSON nested ~1000 deep: a 2 KB record.
        # Every caller (worker, replay, training's readers) must get the one error type.
        raise EventError("not_json", "JSON nested too deeply to decode") from None


def _decode_event(raw: bytes, max_bytes: int) -> Event:
    if len(raw) > max_bytes:
        raise EventError("too_large", f"{len(raw)} bytes > limit {max_bytes}")
    try:
        wire = _decoder.decode(raw)
    except msgspec.ValidationError as exc:
        raise EventError(*_classify_validation(raw, str(exc))) from None
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        # msgspec reports bad UTF-8 inside a string as UnicodeDecodeError, not DecodeError.
        raise EventError(*_classify_decode(raw, str(exc))) from None
    if wire.event_type not in _EVENT_TYPE_SET:
        raise EventError(
            "unknown_event_type", f"event_type {wire.event_type[:64]!r} is not in the vocabulary"
        )
    return Event(
        event_id=wire.event_id,
        user_id=wire.user_id,
        event_type=wire.event_type,
        ts_ms=parse_timestamp(wire.timestamp),
        session_id=wire.session_id,
        item_id=wire.item_id,
        category_id=wire.category_id,
        price=wire.price,
        quantity=_quantity(wire.quantity),
    )


def parse_timestamp(value: int | float | str) -> int:
    """Epoch milliseconds from an RFC 3339 string with offset, or from integer epoch milliseconds.

    Sub-millisecond digits are dropped (floor), exactly: no float arithmetic on the way.
    """
    if isinstance(value, float):
        if not value.is_integer():
            raise EventError("bad_timestamp", f"epoch milliseconds {value} is not an integer")
        value = int(value)
    if isinstance(value, int):
        if not 0 <= value <= MAX_TS_MS:
            raise EventError("bad_timestamp", f"epoch milliseconds {value} out of range")
        return value
    match = _RFC3339.match(value)
    if not match or not _offset_ok(match["tz"]):
        raise EventError("bad_timestamp", f"{value[:64]!r} is not RFC 3339 with an offset")
    try:
        parsed = datetime.fromisoformat(value.replace("z", "Z").replace("t", "T"))
    except ValueError as exc:
        raise EventError("bad_timestamp", f"{value[:64]!r}: {exc}") from None
    return (parsed - _EPOCH) // _MS


def _offset_ok(tz: str) -> bool:
    # datetime accepts offsets such as +01:60; RFC 3339 wants hours 00-23 and minutes 00-59.
    return tz in ("Z", "z") or (int(tz[1:3]) <= 23 and int(tz[4:6]) <= 59)


def format_timestamp(ts_ms: int) -> str:
    """RFC 3339 in UTC with milliseconds, e.g. ``2026-01-02T03:04:05.000Z``."""
    moment = _EPOCH + ts_ms * _MS  # exact, where fromtimestamp(ts_ms / 1000) goes through a float
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def encode_event(event: Event) -> bytes:
    """The wire form (timestamp as epoch milliseconds; absent optional fields left out)."""
    doc: dict[str, object] = {
        "event_id": event.event_id,
        "user_id": event.user_id,
        "event_type": event.event_type,
        "timestamp": event.ts_ms,
    }
    for name in ("session_id", "item_id", "category_id", "price", "quantity"):
        value = getattr(event, name)
        if value is not None:
            doc[name] = value
    return _encoder.encode(doc)


def _quantity(value: int | float | None) -> int | None:
    # JSON Schema counts 2.0 as an integer, so the decoder does too.
    if value is None:
        return None
    if isinstance(value, float) and not value.is_integer():
        raise EventError("schema", f"Expected `int`, got a fraction - at `$.quantity` ({value})")
    if not 0 <= value <= 1_000_000:
        raise EventError("schema", f"quantity {value} out of range [0, 1000000] - at `$.quantity`")
    return int(value)


def _classify_validation(raw: bytes, message: str) -> tuple[Reason, str]:
    # msgspec checks types while it parses, so a broken document can fail on a field before the
    # parser reaches its syntax error; on this (rare) path, find out whether it is JSON at all.
    try:
        msgspec.json.decode(raw)
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        return _classify_decode(raw, str(exc))
    if "Expected `object`" in message and "at `$" not in message:
        return "not_object", message
    if "`$.timestamp`" in message:
        return "bad_timestamp", message
    return "schema", message


def _classify_decode(raw: bytes, message: str) -> tuple[Reason, str]:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return "not_utf8", f"invalid UTF-8 at byte {exc.start}"
    return "not_json", message
