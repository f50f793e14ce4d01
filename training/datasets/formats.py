"""What each supported source format looks like, and how one of its rows becomes a wire event.

A row arrives as ``{column: value}`` (strings from CSV/text, typed values from Parquet). Each format
maps it to a wire-shaped dict (the JSON fields of ``clickstream_event.schema.json``); the reader
then validates that dict with :func:`schemas.event.decode_event`, so every source obeys the same
rules as the Kafka wire. A value that cannot even be converted raises :class:`RowError`.

>>> spec = FORMATS_BY_NAME["taobao"]
>>> row = {"user_id": "1", "item_id": "7", "category_id": "3", "behavior_type": "buy",
...        "timestamp": "1511658000"}
>>> spec.to_wire(row, "f:0")["event_type"], spec.to_wire(row, "f:0")["timestamp"]
('purchase', 1511658000000)
"""

from __future__ import annotations

import calendar
import functools
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Literal

from training.datasets.errors import RowError

Row = Mapping[str, Any]
Wire = dict[str, Any]

_INTEGER = re.compile(r"\s*-?[0-9]+\s*")  # ASCII digits only: str.isdigit() also accepts "²"


@dataclass(frozen=True)
class FormatSpec:
    """A source format: its columns, how text files split fields, and its row converter."""

    name: str
    required: tuple[str, ...]
    delimiter: Literal["comma", "whitespace"]
    to_wire: Callable[[Row, str], Wire]


def _text(value: Any) -> str | None:
    """An id-like value as a string, kept exactly (ids may hold spaces); empty means absent."""
    if value.__class__ is str:  # the common case (all CSV values), checked first: it is hot
        return value or None
    return None if value is None else str(value)


def _number(value: Any, column: str) -> float | None:
    if not value and value != 0:  # "" or None; a numeric 0 is a number
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise RowError(f"schema: {column} {_show(value)} is not a number") from None
    if not math.isfinite(number):
        # JSON has no NaN: left unchecked it would silently become null.
        raise RowError(f"schema: {column} {_show(value)} is not a finite number")
    return number


def _integer(value: Any, column: str) -> int | float | None:
    """An integer, or the float it parses to (the wire validator then rejects the fraction)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and _INTEGER.fullmatch(value):
        return int(value)
    number = _number(value, column)
    return int(number) if number is not None and number.is_integer() else number


def _show(value: Any) -> str:
    return repr(value if not isinstance(value, str) else value[:64])


def _epoch_ms(value: Any, column: str, *, unit_ms: int = 1) -> int | str:
    """Epoch ms from an integer (in ``unit_ms``) or a datetime; RFC 3339 text goes on as is."""
    if isinstance(value, datetime):
        aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        return int(aware.timestamp() * 1000)
    if isinstance(value, int) and not isinstance(value, bool):
        return value * unit_ms
    if isinstance(value, str):
        if _INTEGER.fullmatch(value):
            return int(value) * unit_ms
        if unit_ms == 1:
            return value.strip()
    raise RowError(f"bad_timestamp: {column} {_show(value)} is not an epoch time")


def _mapped(value: Any, mapping: Mapping[str, str], column: str) -> str:
    text = (_text(value) or "").strip()
    try:
        return mapping[text]
    except KeyError:
        raise RowError(
            f"unknown_event_type: {column} {_show(text)} is not one of {', '.join(mapping)}"
        ) from None


def _generic(row: Row, default_id: str) -> Wire:
    get = row.get
    wire: Wire = {
        "event_id": _text(get("event_id")) or default_id,
        "user_id": _text(row["user_id"]),
        "event_type": _text(row["event_type"]),
        "timestamp": _epoch_ms(row["timestamp"], "timestamp"),
        "session_id": _text(get("session_id")),
        "item_id": _text(get("item_id")),
        "category_id": _text(get("category_id")),
    }
    # Absent numbers stay out of the dict: cheaper than converting and encoding a null.
    price, quantity = get("price"), get("quantity")
    if price or price == 0:
        wire["price"] = _number(price, "price")
    if quantity or quantity == 0:
        wire["quantity"] = _integer(quantity, "quantity")
    return wire


_TAOBAO_TYPES: Final = {"pv": "view", "cart": "add_to_cart", "fav": "wishlist", "buy": "purchase"}


def _taobao(row: Row, default_id: str) -> Wire:
    return {
        "event_id": default_id,
        "user_id": _text(row["user_id"]),
        "event_type": _mapped(row["behavior_type"], _TAOBAO_TYPES, "behavior_type"),
        "timestamp": _epoch_ms(row["timestamp"], "timestamp", unit_ms=1000),  # epoch seconds
        "item_id": _text(row["item_id"]),
        "category_id": _text(row["category_id"]),
    }


@functools.lru_cache(maxsize=4096)  # a few hundred distinct days in a whole file
def _cdnow_date(value: Any) -> int:
    """Midnight UTC of a YYYYMMDD date, in epoch ms (CDNOW records days, not times)."""
    text = str(value).strip()
    try:
        if len(text) != 8 or not text.isdigit():
            raise ValueError
        day = datetime(int(text[:4]), int(text[4:6]), int(text[6:]), tzinfo=UTC)
    except ValueError:
        raise RowError(f"bad_timestamp: date {_show(value)} is not YYYYMMDD") from None
    return calendar.timegm(day.timetuple()) * 1000


def _cdnow(row: Row, default_id: str) -> Wire:
    return {
        "event_id": default_id,
        "user_id": _text(row["customer_id"]),
        "event_type": "purchase",
        "timestamp": _cdnow_date(row["date"]),
        "price": _number(row["dollar_value"], "dollar_value"),
        "quantity": _integer(row["number_of_cds"], "number_of_cds"),
    }


_RETAILROCKET_TYPES: Final = {"view": "view", "addtocart": "add_to_cart", "transaction": "purchase"}


def _retailrocket(row: Row, default_id: str) -> Wire:
    return {
        "event_id": default_id,
        "user_id": _text(row["visitorid"]),
        "event_type": _mapped(row["event"], _RETAILROCKET_TYPES, "event"),
        "timestamp": _epoch_ms(row["timestamp"], "timestamp"),  # already epoch ms
        "item_id": _text(row["itemid"]),
    }


_REES46_TYPES: Final = {
    "view": "view",
    "cart": "add_to_cart",
    "remove_from_cart": "remove_from_cart",
    "purchase": "purchase",
}


def _rees46_time(value: Any) -> int | str:
    # "2019-10-01 00:00:00 UTC" -> "2019-10-01 00:00:00Z", which the RFC 3339 parser accepts.
    if isinstance(value, str) and value.endswith(" UTC"):
        return value[:-4] + "Z"
    return _epoch_ms(value, "event_time")


def _rees46(row: Row, default_id: str) -> Wire:
    return {
        "event_id": default_id,
        "user_id": _text(row["user_id"]),
        "event_type": _mapped(row["event_type"], _REES46_TYPES, "event_type"),
        "timestamp": _rees46_time(row["event_time"]),
        "session_id": _text(row.get("user_session")),
        "item_id": _text(row["product_id"]),
        "category_id": _text(row.get("category_id")),
        "price": _number(row.get("price"), "price"),
    }


_SPECS: Final = (
    FormatSpec("generic", ("user_id", "event_type", "timestamp"), "comma", _generic),
    FormatSpec(
        "taobao",
        ("user_id", "item_id", "category_id", "behavior_type", "timestamp"),
        "comma",
        _taobao,
    ),
    FormatSpec(
        "cdnow", ("customer_id", "date", "number_of_cds", "dollar_value"), "whitespace", _cdnow
    ),
    FormatSpec(
        "retailrocket", ("timestamp", "visitorid", "event", "itemid"), "comma", _retailrocket
    ),
    FormatSpec("rees46", ("event_time", "event_type", "product_id", "user_id"), "comma", _rees46),
)

FORMATS: Final[tuple[str, ...]] = tuple(spec.name for spec in _SPECS)
FORMATS_BY_NAME: Final[dict[str, FormatSpec]] = {spec.name: spec for spec in _SPECS}

GENERIC_COLUMNS: Final[tuple[str, ...]] = (
    "event_id",
    "user_id",
    "event_type",
    "timestamp",
    "session_id",
    "item_id",
    "category_id",
    "price",
    "quantity",
)
