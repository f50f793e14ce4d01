"""The one featurizer: event -> feature row. Training and the worker both import this module.

A feature row depends on the event and on a small per-user :class:`FeatureContext`, so streaming
and offline featurization agree exactly when both replay a user's events in the same order. The
row has two blocks:

- the event itself (columns ``[0, AGG_OFFSET)``): type, gap, price, time of day, same item or
  category as the previous event, session start and depth, a hashed category bucket;
- running aggregates of the user's history up to and including the event (``[AGG_OFFSET,
  FEATURE_DIM)``): counts per event type, exponentially decayed counts (10 min, 1 h, 1 day),
  time since the last cart and purchase, spend, session duration, history age, and revisits of an
  item or category among the last ``SKETCH`` distinct ones. They are what a data scientist's
  baseline sees, computed incrementally in O(1) state, so the network sees at least that much.

Change anything here and bump ``FEATURIZER_VERSION``: the worker refuses a model whose manifest
names another version.

>>> from schemas.event import Event
>>> ctx = FeatureContext()
>>> e1 = Event(event_id="1", user_id="u", event_type="view", ts_ms=0, item_id="i9", price=9.0)
>>> row, ctx = featurize(e1, ctx)
>>> row.shape, row.dtype.name, float(row[TYPE_OFFSET + 0]), float(row[IS_FIRST])
((58,), 'float32', 1.0, 1.0)
>>> e2 = Event(event_id="2", user_id="u", event_type="add_to_cart", ts_ms=60_000, item_id="i9")
>>> row, ctx = featurize(e2, ctx)
>>> float(row[SAME_ITEM]), round(float(row[LOG_GAP]), 4), float(row[IS_FIRST])
(1.0, 0.4111, 0.0)
>>> float(row[AGG_OFFSET + AGG_NAMES.index("item_revisit")]), ctx.type_counts[:4]
(1.0, (1, 0, 0, 1))
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Final

import msgspec
import numpy as np

from schemas.event import EVENT_TYPES, Event

FEATURIZER_VERSION: Final = 2

N_TYPES: Final = len(EVENT_TYPES)
CATEGORY_BUCKETS: Final = 8
# A gap this long starts a new session when producers send none.
SESSION_GAP_MS: Final = 30 * 60 * 1000

TYPE_OFFSET: Final = 0
LOG_GAP: Final = N_TYPES  # log1p(seconds since the user's previous event) / 10
IS_FIRST: Final = LOG_GAP + 1
LOG_PRICE: Final = IS_FIRST + 1  # log1p(price) / 10
HAS_PRICE: Final = LOG_PRICE + 1
LOG_QTY: Final = HAS_PRICE + 1
HOUR_SIN: Final = LOG_QTY + 1
HOUR_COS: Final = HOUR_SIN + 1
WEEKDAY_SIN: Final = HOUR_COS + 1
WEEKDAY_COS: Final = WEEKDAY_SIN + 1
SAME_ITEM: Final = WEEKDAY_COS + 1
SAME_CATEGORY: Final = SAME_ITEM + 1
NEW_SESSION: Final = SAME_CATEGORY + 1
SESSION_DEPTH: Final = NEW_SESSION + 1  # log1p(events so far in this session) / 5
CATEGORY_OFFSET: Final = SESSION_DEPTH + 1
HAS_ITEM: Final = CATEGORY_OFFSET + CATEGORY_BUCKETS
AGG_OFFSET: Final = HAS_ITEM + 1

# Decayed counts: (event type or None = any, time constant in seconds).
DECAYS: Final[tuple[tuple[str | None, float], ...]] = (
    (None, 600.0),
    (None, 3600.0),
    (None, 86400.0),
    ("add_to_cart", 3600.0),
    ("add_to_cart", 86400.0),
    ("purchase", 86400.0),
)
SKETCH: Final = 8  # distinct recent items (and categories) remembered, as crc32 hashes
AGG_NAMES: Final[tuple[str, ...]] = (
    "log_events",
    *(f"log_count_{t}" for t in EVENT_TYPES),
    *(f"log_decayed_{t or 'any'}_{int(tau)}s" for t, tau in DECAYS),
    "log_since_cart",
    "has_cart",
    "log_since_purchase",
    "has_purchase",
    "log_spend",
    "item_revisit",
    "category_revisit",
    "log_session_seconds",
    "log_age",
)
FEATURE_DIM: Final = AGG_OFFSET + len(AGG_NAMES)

FEATURE_NAMES: Final[tuple[str, ...]] = (
    *(f"type_{t}" for t in EVENT_TYPES),
    "log_gap",
    "is_first",
    "log_price",
    "has_price",
    "log_quantity",
    "hour_sin",
    "hour_cos",
    "weekday_sin",
    "weekday_cos",
    "same_item",
    "same_category",
    "new_session",
    "session_depth",
    *(f"category_bucket_{i}" for i in range(CATEGORY_BUCKETS)),
    "has_item",
    *AGG_NAMES,
)
assert len(FEATURE_NAMES) == FEATURE_DIM

_TYPE_INDEX: Final = {t: i for i, t in enumerate(EVENT_TYPES)}
_AGG: Final = {name: AGG_OFFSET + i for i, name in enumerate(AGG_NAMES)}


class FeatureContext(msgspec.Struct, frozen=True, array_like=True):
    """What the featurizer remembers about a user between events (part of the worker's state).

    Encoded as a msgpack array (no field names): it is in every user's state record.
    """

    last_ts_ms: int | None = None
    last_item: str | None = None
    last_category: str | None = None
    last_session: str | None = None
    session_events: int = 0
    # Running aggregates (feature block two); all O(1) in the length of the history.
    first_ts_ms: int | None = None
    session_start_ms: int | None = None
    last_cart_ms: int | None = None
    last_purchase_ms: int | None = None
    type_counts: tuple[int, ...] = ()
    decayed: tuple[float, ...] = ()
    spend: float = 0.0
    items: tuple[int, ...] = ()  # crc32 of the last SKETCH distinct items, newest last
    categories: tuple[int, ...] = ()


def featurize(event: Event, ctx: FeatureContext) -> tuple[np.ndarray, FeatureContext]:
    """Return the event's feature row (float32, ``FEATURE_DIM``) and the user's next context."""
    row = np.zeros(FEATURE_DIM, dtype=np.float32)
    row[TYPE_OFFSET + _TYPE_INDEX[event.event_type]] = 1.0
    first = ctx.last_ts_ms is None
    # Out-of-order events (gap < 0) count as simultaneous: the model never sees negative time.
    gap_ms = 0 if ctx.last_ts_ms is None else max(0, event.ts_ms - ctx.last_ts_ms)
    now_ms = event.ts_ms if ctx.last_ts_ms is None else ctx.last_ts_ms + gap_ms  # never backwards
    row[LOG_GAP] = math.log1p(gap_ms / 1000.0) / 10.0
    row[IS_FIRST] = float(first)
    if event.price is not None:
        row[LOG_PRICE] = math.log1p(event.price) / 10.0
        row[HAS_PRICE] = 1.0
    if event.quantity is not None:
        row[LOG_QTY] = math.log1p(event.quantity)
    when = datetime.fromtimestamp(event.ts_ms / 1000.0, tz=UTC)  # UTC: the shop's zone is unknown
    hour = (when.hour + when.minute / 60.0) * (2.0 * math.pi / 24.0)
    weekday = when.weekday() * (2.0 * math.pi / 7.0)
    row[HOUR_SIN], row[HOUR_COS] = math.sin(hour), math.cos(hour)
    row[WEEKDAY_SIN], row[WEEKDAY_COS] = math.sin(weekday), math.cos(weekday)
    if event.item_id is not None:
        row[HAS_ITEM] = 1.0
        row[SAME_ITEM] = float(event.item_id == ctx.last_item)
    if event.category_id is not None:
        row[SAME_CATEGORY] = float(event.category_id == ctx.last_category)
        row[CATEGORY_OFFSET + _bucket(event.category_id, CATEGORY_BUCKETS)] = 1.0
    new_session = first or _starts_session(event, ctx, gap_ms)
    row[NEW_SESSION] = float(new_session)
    session_events = 1 if new_session else ctx.session_events + 1
    row[SESSION_DEPTH] = math.log1p(session_events) / 5.0
    ctx = msgspec.structs.replace(
        ctx,
        last_ts_ms=now_ms,
        last_item=event.item_id,
        last_category=event.category_id,
        last_session=event.session_id,
        session_events=session_events,
        session_start_ms=now_ms if new_session else ctx.session_start_ms,
    )
    return row, _aggregate(row, event, ctx, gap_ms / 1000.0, now_ms)


def _aggregate(
    row: np.ndarray, event: Event, ctx: FeatureContext, gap_s: float, now_ms: int
) -> FeatureContext:
    """Update the running aggregates with ``event``, write block two of ``row``, return context."""
    kind = event.event_type
    counts = list(ctx.type_counts or (0,) * N_TYPES)
    counts[_TYPE_INDEX[kind]] += 1
    decayed = tuple(
        v * math.exp(-gap_s / tau) + float(t is None or t == kind)
        for v, (t, tau) in zip(ctx.decayed or (0.0,) * len(DECAYS), DECAYS, strict=True)
    )
    first_ms = now_ms if ctx.first_ts_ms is None else ctx.first_ts_ms
    cart_ms = now_ms if kind == "add_to_cart" else ctx.last_cart_ms
    buy_ms = now_ms if kind == "purchase" else ctx.last_purchase_ms
    spend = ctx.spend + (event.price or 0.0) * (event.quantity or 1) * (kind == "purchase")
    item_seen, items = _sketch(ctx.items, event.item_id)
    category_seen, categories = _sketch(ctx.categories, event.category_id)
    row[_AGG["log_events"]] = math.log1p(sum(counts)) / 5.0
    for i, c in enumerate(counts):
        row[AGG_OFFSET + 1 + i] = math.log1p(c) / 5.0
    for i, v in enumerate(decayed):
        row[AGG_OFFSET + 1 + N_TYPES + i] = math.log1p(v) / 5.0
    for name, since in (("cart", cart_ms), ("purchase", buy_ms)):
        if since is not None:
            row[_AGG[f"log_since_{name}"]] = math.log1p((now_ms - since) / 1000.0) / 10.0
            row[_AGG[f"has_{name}"]] = 1.0
    row[_AGG["log_spend"]] = math.log1p(spend) / 10.0
    row[_AGG["item_revisit"]], row[_AGG["category_revisit"]] = item_seen, category_seen
    session_s = (now_ms - (ctx.session_start_ms or now_ms)) / 1000.0
    row[_AGG["log_session_seconds"]] = math.log1p(session_s) / 10.0
    row[_AGG["log_age"]] = math.log1p((now_ms - first_ms) / 1000.0) / 10.0
    return msgspec.structs.replace(
        ctx, first_ts_ms=first_ms, last_cart_ms=cart_ms, last_purchase_ms=buy_ms,
        type_counts=tuple(counts), decayed=decayed, spend=spend, items=items,
        categories=categories,
    )  # fmt: skip


def _sketch(recent: tuple[int, ...], value: str | None) -> tuple[float, tuple[int, ...]]:
    """Was ``value`` among the recent distinct values? And the updated bounded sketch."""
    if value is None:
        return 0.0, recent
    h = zlib.crc32(value.encode("utf-8"))
    seen = h in recent
    return float(seen), (*(r for r in recent if r != h), h)[-SKETCH:]


def featurize_sequence(events: Iterable[Event]) -> np.ndarray:
    """Feature rows ``(T, FEATURE_DIM)`` for one user's events, in the order given."""
    ctx = FeatureContext()
    rows = []
    for event in events:
        row, ctx = featurize(event, ctx)
        rows.append(row)
    if not rows:
        return np.zeros((0, FEATURE_DIM), dtype=np.float32)
    return np.stack(rows)


def _starts_session(event: Event, ctx: FeatureContext, gap_ms: int) -> bool:
    if event.session_id is not None and ctx.last_session is not None:
        return event.session_id != ctx.last_session
    return gap_ms > SESSION_GAP_MS


def _bucket(value: str, buckets: int) -> int:
    # crc32, not hash(): Python's str hash is salted per process; training and serving must agree.
    return zlib.crc32(value.encode("utf-8")) % buckets
