"""The featurizer's running aggregates: exact values on a hand-made history, bounded context."""

from __future__ import annotations

import math

import msgspec

from schemas.event import Event
from training.featurizer import AGG_NAMES, AGG_OFFSET, SKETCH, FeatureContext, featurize

MIN = 60_000


def _col(name: str) -> int:
    return AGG_OFFSET + AGG_NAMES.index(name)


def _ev(i: int, minute: int, kind: str, item: str, price: float | None = None) -> Event:
    return Event(event_id=f"e{i}", user_id="u", event_type=kind, ts_ms=minute * MIN,
                 item_id=item, category_id="c", price=price)  # fmt: skip


def test_aggregates_on_a_hand_made_history() -> None:
    ctx = FeatureContext()
    history = [(0, "view", "a", None), (10, "add_to_cart", "a", None),
               (70, "purchase", "a", 20.0), (130, "view", "b", None)]  # fmt: skip
    for i, (minute, kind, item, price) in enumerate(history):
        row, ctx = featurize(_ev(i, minute, kind, item, price), ctx)
    # At minute 130: 4 events, one cart 120 min ago, one purchase 60 min ago, spend 20.
    assert math.isclose(row[_col("log_events")], math.log1p(4) / 5, rel_tol=1e-6)
    assert math.isclose(row[_col("log_since_cart")], math.log1p(7200) / 10, rel_tol=1e-6)
    assert math.isclose(row[_col("log_since_purchase")], math.log1p(3600) / 10, rel_tol=1e-6)
    assert math.isclose(row[_col("log_spend")], math.log1p(20.0) / 10, rel_tol=1e-6)
    assert row[_col("item_revisit")] == 0.0 and row[_col("category_revisit")] == 1.0
    hourly = sum(math.exp(-(130 - m) / 60) for m, *_ in history)  # decayed count, tau 1 h
    assert math.isclose(row[_col("log_decayed_any_3600s")], math.log1p(hourly) / 5, rel_tol=1e-5)
    assert math.isclose(row[_col("log_age")], math.log1p(130 * 60) / 10, rel_tol=1e-6)


def test_context_stays_bounded_however_long_the_history() -> None:
    ctx = FeatureContext()
    sizes = []
    for i in range(2000):
        _, ctx = featurize(_ev(i, i, "view", f"item{i}"), ctx)
        sizes.append(len(msgspec.msgpack.encode(ctx)))
    assert len(ctx.items) == SKETCH and max(sizes[100:]) - min(sizes[100:]) <= 16
