"""The one featurizer: event -> feature row. Training and the worker both import this module.

A feature row depends on the event and on a small per-user :class:`FeatureContext` (the previous
event's time, item, category and session), so streaming and offline featurization agree exactly
when both replay a user's events in the same order. Change anything here and bump
``FEATURIZER_VERSION``: the worker refuses a model whose manifest names another version.

>>> from schemas.event import Event
>>> ctx = FeatureContext()
>>> e1 = Event(event_id="1", user_id="u", event_type="view", ts_ms=0, item_id="i9", price=9.0)
>>> row, ctx = featurize(e1, ctx)
>>> row.shape, row.dtype.name, float(row[TYPE_OFFSET + 0]), float(row[IS_FIRST])
((32,), 'float32', 1.0, 1.0)
>>> e2 = Event(event_id="2", user_id="u", event_type="add_to_cart", ts_ms=60_000, item_id="i9")
>>> row, ctx = featurize(e2, ctx)
>>> float(row[SAME_ITEM]), round(float(row[LOG_GAP]), 4), float(row[IS_FIRST])
(1.0, 0.4111, 0.0)
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

FEATURIZER_VERSION: Final = 1

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
FEATURE_DIM: Final = HAS_ITEM + 1

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
)
assert len(FEATURE_NAMES) == FEATURE_DIM

_TYPE_INDEX: Final = {t: i for i, t in enumerate(EVENT_TYPES)}


class FeatureContext(msgspec.Struct, frozen=True):
    """What the featurizer remembers about a user between events (part of the worker's state)."""

    last_ts_ms: int | None = None
    last_item: str | None = None
    last_category: str | None = None
    last_session: str | None = None
    session_events: int = 0


def featurize(event: Event, ctx: FeatureContext) -> tuple[np.ndarray, FeatureContext]:
    """Return the event's feature row (float32, ``FEATURE_DIM``) and the user's next context."""
    row = np.zeros(FEATURE_DIM, dtype=np.float32)
    row[TYPE_OFFSET + _TYPE_INDEX[event.event_type]] = 1.0
    first = ctx.last_ts_ms is None
    # Out-of-order events (gap < 0) count as simultaneous: the model never sees negative time.
    gap_ms = 0 if ctx.last_ts_ms is None else max(0, event.ts_ms - ctx.last_ts_ms)
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
    return row, FeatureContext(
        last_ts_ms=event.ts_ms if first else max(event.ts_ms, ctx.last_ts_ms or 0),
        last_item=event.item_id,
        last_category=event.category_id,
        last_session=event.session_id,
        session_events=session_events,
    )


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
