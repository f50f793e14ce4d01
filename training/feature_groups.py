"""The featurizer's columns in groups a shop understands, and each group's words for an alert.

An alert's reasons (worker/core/reasons.py) switch one group off at a time and re-score. The
groups partition ``FEATURE_NAMES`` (every column in exactly one group; a test checks it), so a new
column must be placed here when the featurizer gains it. "Off" is zero: the featurizer builds every
column so that zero is what an event without that information gives (one-hot off, ``log1p`` of a
zero count, ``has_*`` flags clear, no price), so an occluded row is a row the model could have seen.
The words are built from the event and the user's feature context after the event.

>>> from schemas.event import Event
>>> from training.featurizer import FeatureContext, featurize
>>> ctx = FeatureContext()
>>> for i in range(3):
...     e = Event(event_id=str(i), user_id="u", event_type="add_to_cart", ts_ms=i * 60_000)
...     _, ctx = featurize(e, ctx)
>>> describe("cart", e, ctx)
'3 add_to_cart, the last one just now'
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Final

from schemas.event import EVENT_TYPES, Event
from training.featurizer import AGG_NAMES, DECAYS, FEATURE_NAMES, FeatureContext

_COUNT = {t: f"log_count_{t}" for t in EVENT_TYPES}
_DECAYED = [f"log_decayed_{t or 'any'}_{int(tau)}s" for t, tau in DECAYS]

GROUPS: Final[dict[str, tuple[str, ...]]] = {
    "event_type": tuple(f"type_{t}" for t in EVENT_TYPES),
    "cart": (
        _COUNT["add_to_cart"], _COUNT["remove_from_cart"], _DECAYED[3], _DECAYED[4],
        "log_since_cart", "has_cart",
    ),
    "intent": (_COUNT["wishlist"], _COUNT["checkout"]),
    "purchases": (
        _COUNT["purchase"], _DECAYED[5], "log_since_purchase", "has_purchase", "log_spend",
    ),
    "recent_activity": ("log_gap", _DECAYED[0], _DECAYED[1], _DECAYED[2]),
    "revisits": ("same_item", "same_category", "item_revisit", "category_revisit"),
    "session": ("new_session", "session_depth", "log_session_seconds"),
    "history": (
        "is_first", "log_events", "log_age", _COUNT["view"], _COUNT["search"], _COUNT["click"],
        _COUNT["review"], _COUNT["share"],
    ),
    "price": ("log_price", "has_price", "log_quantity"),
    "time_of_day": ("hour_sin", "hour_cos", "weekday_sin", "weekday_cos"),
    "category": (*(n for n in FEATURE_NAMES if n.startswith("category_bucket_")), "has_item"),
}  # fmt: skip

GROUP_COLUMNS: Final[dict[str, tuple[int, ...]]] = {
    name: tuple(FEATURE_NAMES.index(c) for c in columns) for name, columns in GROUPS.items()
}
_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def _ago(now_ms: int | None, then_ms: int | None) -> str:
    """'just now', '12 min ago', '3 h ago', '2 days ago' (event time, not wall time)."""
    if now_ms is None or then_ms is None:
        return "some time ago"
    s = max(0, now_ms - then_ms) / 1000.0
    if s < 60:
        return "just now"
    if s < 3600:
        return f"{s / 60:.0f} min ago"
    return f"{s / 3600:.0f} h ago" if s < 86400 else f"{s / 86400:.0f} days ago"


def _n(count: float, noun: str) -> str:
    """'1 event', '3 events' (and 'about 2 events' once rounded)."""
    return f"{count:.0f} {noun}" + ("" if round(count) == 1 else "s")


def _count(ctx: FeatureContext, kind: str) -> int:
    return ctx.type_counts[EVENT_TYPES.index(kind)] if ctx.type_counts else 0


def _cart(e: Event | None, c: FeatureContext) -> str:
    n = _count(c, "add_to_cart")
    if not n:
        return "no add_to_cart yet"
    return f"{n} add_to_cart, the last one {_ago(c.last_ts_ms, c.last_cart_ms)}"


def _intent(e: Event | None, c: FeatureContext) -> str:
    return f"{_count(c, 'wishlist')} wishlist and {_count(c, 'checkout')} checkout so far"


def _purchases(e: Event | None, c: FeatureContext) -> str:
    n = _count(c, "purchase")
    if not n:
        return "no purchase yet"
    spent = f"spent {c.spend:.2f}, the last {_ago(c.last_ts_ms, c.last_purchase_ms)}"
    return f"{_n(n, 'purchase')} ({spent})"


def _recent(e: Event | None, c: FeatureContext) -> str:
    ten_min = c.decayed[0] if c.decayed else 0.0  # decayed with a 10-minute time constant
    return f"about {_n(ten_min, 'event')} in the last 10 minutes"


def _revisits(e: Event | None, c: FeatureContext) -> str:
    item = "an item" if e is None or e.item_id is None else f"item {e.item_id}"
    return f"came back to {item} seen among the last few"


def _session(e: Event | None, c: FeatureContext) -> str:
    minutes = ((c.last_ts_ms or 0) - (c.session_start_ms or c.last_ts_ms or 0)) / 60000.0
    return f"{_n(c.session_events, 'event')} in this visit over {minutes:.0f} min"


def _history(e: Event | None, c: FeatureContext) -> str:
    days = ((c.last_ts_ms or 0) - (c.first_ts_ms or c.last_ts_ms or 0)) / 86_400_000.0
    return f"history of {_n(sum(c.type_counts), 'event')} over {days:.1f} days"


def _price(e: Event | None, c: FeatureContext) -> str:
    if e is None or e.price is None:
        return "no price on the event"
    return f"price {e.price:.2f}" + (f" x {e.quantity}" if e.quantity else "")


def _time(e: Event | None, c: FeatureContext) -> str:
    when = datetime.fromtimestamp((c.last_ts_ms or 0) / 1000.0, tz=UTC)
    return f"at {when:%H:%M} UTC on a {_DAYS[when.weekday()]}"


def _category(e: Event | None, c: FeatureContext) -> str:
    if e is None or e.category_id is None:
        return "the item's category"
    return f"category {e.category_id}"


def _event_type(e: Event | None, c: FeatureContext) -> str:
    return "the last event's type" if e is None else f"this event is a {e.event_type}"


_WORDS: Final[dict[str, Callable[[Event | None, FeatureContext], str]]] = {
    "event_type": _event_type,
    "cart": _cart,
    "intent": _intent,
    "purchases": _purchases,
    "recent_activity": _recent,
    "revisits": _revisits,
    "session": _session,
    "history": _history,
    "price": _price,
    "time_of_day": _time,
    "category": _category,
}
assert set(_WORDS) == set(GROUPS)
assert set(AGG_NAMES) <= {c for cols in GROUPS.values() for c in cols}


def describe(group: str, event: Event | None, ctx: FeatureContext) -> str:
    """Plain words for ``group`` from the event (None for a sweep) and the context after it."""
    return _WORDS[group](event, ctx)
