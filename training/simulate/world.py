"""The simulated shop: settings, a long-tailed catalogue with stable prices, the weekly rhythm."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np

DAY_MS: Final = 86_400_000
EPOCH_WEEKDAY: Final = 3  # 1970-01-01 was a Thursday (Monday = 0)

# Relative visit rate by UTC hour (mean 1): quiet at night, a lunch bump, the evening peak.
_HOURLY = np.array(
    [0.35, 0.22, 0.15, 0.12, 0.12, 0.18, 0.35, 0.6, 0.85, 1.0, 1.1, 1.2,
     1.35, 1.3, 1.15, 1.1, 1.15, 1.3, 1.55, 1.8, 1.95, 1.85, 1.35, 0.77],
)  # fmt: skip
HOUR_RATE: Final = _HOURLY / _HOURLY.mean()
WEEKDAY_RATE: Final = np.array([0.95, 0.92, 0.93, 0.97, 1.03, 1.12, 1.08])  # Mon..Sun
RHYTHM_MAX: Final = float(HOUR_RATE.max() * WEEKDAY_RATE.max())


@dataclass(frozen=True)
class SimConfig:
    """What to simulate; every field is checked at construction, and an error names the bad one."""

    users: int = 2000
    days: int = 14
    seed: int = 0
    start_ms: int = 1_767_571_200_000  # 2026-01-05T00:00Z, a Monday
    items: int = 5000
    categories: int = 60
    churn_fraction: float = 0.3  # users who stop for good within the period
    new_user_fraction: float = 0.2  # users whose first visit comes after the start

    def __post_init__(self) -> None:
        for name, low in (("users", 1), ("days", 1), ("seed", 0), ("start_ms", 0)):
            if getattr(self, name) < low:
                raise ValueError(f"SimConfig.{name}={getattr(self, name)}: must be >= {low}")
        if not 1 <= self.categories <= self.items:
            raise ValueError(
                f"SimConfig.categories={self.categories}: must be within [1, items={self.items}]"
            )
        for name in ("churn_fraction", "new_user_fraction"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"SimConfig.{name}={getattr(self, name)}: must be within [0, 1]")


def rng_for(seed: int, *key: int) -> np.random.Generator:
    """An independent stream per (seed, purpose, user): a user's events do not depend on others."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key))


def rhythm(t_days: np.ndarray, start_ms: int, shift_hours: float | np.ndarray) -> np.ndarray:
    """Relative visit rate at each time (days since start), for a user whose day is shifted."""
    absolute = start_ms / DAY_MS + t_days
    hour = np.floor((absolute % 1.0) * 24.0 + shift_hours).astype(np.int64) % 24
    weekday = (np.floor(absolute).astype(np.int64) + EPOCH_WEEKDAY) % 7
    return HOUR_RATE[hour] * WEEKDAY_RATE[weekday]


def _zipf(n: int, exponent: float) -> np.ndarray:
    weights = 1.0 / np.arange(1, n + 1, dtype=np.float64) ** exponent
    return weights / weights.sum()


def _cumulative(weights: np.ndarray) -> np.ndarray:
    cum = np.cumsum(weights / weights.sum())
    cum[-1] = 1.0  # exact, so searchsorted never runs past the end
    return cum


@dataclass(frozen=True)
class Catalog:
    """Items ordered by category; long-tailed popularity; one stable price per item.

    Items of category ``c`` are ``category_start[c] : category_start[c + 1]``.
    """

    item_ids: list[str]
    category_ids: list[str]
    item_category: np.ndarray  # (N,) int
    prices: list[float]
    category_cum: np.ndarray  # (C,) cumulative category popularity
    item_cum: np.ndarray  # (N,) cumulative item popularity over the whole shop
    in_category_cum: np.ndarray  # (N,) category index + cumulative popularity within the category
    category_start: np.ndarray  # (C + 1,)

    @classmethod
    def build(cls, items: int, categories: int, rng: np.random.Generator) -> Catalog:
        """A shop of ``items`` items in ``categories`` categories (Zipf-like popularity)."""
        category_weight = _zipf(categories, 0.9)
        # Every category gets at least one item; popular categories get more.
        extra = rng.choice(categories, size=items - categories, p=_zipf(categories, 0.7))
        item_category = np.sort(np.concatenate([np.arange(categories), extra]))
        item_weight = _zipf(items, 0.8)[rng.permutation(items)]
        category_start = np.searchsorted(item_category, np.arange(categories + 1))
        in_category = np.empty(items, dtype=np.float64)
        for c in range(categories):
            lo, hi = category_start[c], category_start[c + 1]
            in_category[lo:hi] = c + _cumulative(item_weight[lo:hi])
        # Categories have price levels (median ~20); an item sits near its category's level.
        level = np.exp(rng.normal(3.0, 0.9, size=categories))
        price = level[item_category] * np.exp(rng.normal(0.0, 0.35, size=items))
        return cls(
            item_ids=[f"i{n}" for n in rng.permutation(items)],
            category_ids=[f"c{c}" for c in range(categories)],
            item_category=item_category,
            prices=[round(max(0.5, float(p)), 2) for p in price],
            category_cum=_cumulative(category_weight),
            item_cum=_cumulative(item_weight),
            in_category_cum=in_category,
            category_start=category_start,
        )

    def popular_categories(self, u: np.ndarray) -> np.ndarray:
        """Categories drawn by popularity, one per uniform in ``u``."""
        return np.searchsorted(self.category_cum, u, side="right")

    def popular_items(self, u: np.ndarray) -> np.ndarray:
        """Items drawn by shop-wide popularity, one per uniform in ``u``."""
        return np.searchsorted(self.item_cum, u, side="right")

    def items_in(self, categories: np.ndarray, u: np.ndarray) -> np.ndarray:
        """Items drawn by popularity within each given category (one per pair)."""
        return np.searchsorted(self.in_category_cum, categories + u, side="right")

    def any_items_in(self, categories: np.ndarray, u: np.ndarray) -> np.ndarray:
        """Items drawn uniformly within each given category (one per pair): the long tail."""
        start, stop = self.category_start[categories], self.category_start[categories + 1]
        return start + np.minimum((u * (stop - start)).astype(np.int64), stop - start - 1)
