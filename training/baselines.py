"""Baselines on the same rows and split: logistic regression and gradient boosting on rich
per-event history features, and one trivial rule per head.

The features are every column the network gets (the featurizer's event row and its running
aggregates: counts per type, decayed counts, time since cart/purchase, spend, session, revisits)
plus exact offline extras a streaming model could not keep in O(1) state: trailing-window counts
(10 min, 1 h, 1 day) per event type, the last gaps, distinct items and categories so far, how
often the item and category were seen before, hour of day. Every feature at event t uses the
user's events up to and including t only (no look-ahead). The
rules ("a cart event in the last hour" for propensity, "time since the previous event" for churn)
are scores, not probabilities, so each is mapped to one by isotonic regression fitted on
validation rows -- fair for the Brier score and thresholds, and it cannot change their ranking.
Each learned baseline gets a small grid, chosen on validation PR-AUC.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Final

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from schemas.event import EVENT_TYPES
from training.featurizer import FEATURE_NAMES as ROW_NAMES
from training.featurizer import LOG_PRICE, N_TYPES, TYPE_OFFSET
from training.labels import LabelError, UserRows

CART: Final = EVENT_TYPES.index("add_to_cart")
PURCHASE: Final = EVENT_TYPES.index("purchase")
VIEW: Final = EVENT_TYPES.index("view")
MIN_MS, HOUR_MS, DAY_MS = 60_000, 3_600_000, 86_400_000
MAX_FIT_ROWS: Final = 200_000  # baselines fit on a seeded sample of training rows beyond this
WINDOWS: Final = (("10m", 10 * MIN_MS), ("1h", HOUR_MS), ("1d", DAY_MS))
EXTRA_NAMES: Final = (
    *(f"log_{kind}_{w}" for kind in ("events", "views", "carts", "buys") for w, _ in WINDOWS),
    "log_gap_2", "log_gap_3", "log_mean_gap_5", "log_distinct_items", "log_distinct_categories",
    "log_item_seen_before", "log_category_seen_before", "item_carted_before", "log_age",
    "log_since_purchase", "log_spend", "hour", "cart_in_last_hour",
)  # fmt: skip
# Every column of the featurizer's row (event and running aggregates), then exact offline extras.
FEATURE_NAMES: Final = (*ROW_NAMES, *EXTRA_NAMES)

Scorer = Callable[[np.ndarray], np.ndarray]


def _count_since(ts: np.ndarray, which: np.ndarray, window_ms: int) -> np.ndarray:
    """For each event, how many ``which`` events of the user fall in [t - window, t]."""
    sel = ts[which]
    return np.searchsorted(sel, ts, side="right") - np.searchsorted(
        sel, ts - window_ms, side="left"
    )


def _seen_before(keys: np.ndarray, which: np.ndarray | None = None) -> np.ndarray:
    """For each event, how many earlier events (of ``which``) had the same key (-1: none)."""
    counts: dict[int, int] = {}
    out = np.zeros(len(keys), np.float32)
    for i, k in enumerate(keys.tolist()):
        if k < 0:
            continue
        out[i] = counts.get(k, 0)
        if which is None or which[i]:
            counts[k] = counts.get(k, 0) + 1
    return out


def _distinct_so_far(keys: np.ndarray) -> np.ndarray:
    seen: set[int] = set()
    out = np.zeros(len(keys), np.float32)
    for i, k in enumerate(keys.tolist()):
        if k >= 0:
            seen.add(k)
        out[i] = len(seen)
    return out


def user_features(u: UserRows) -> np.ndarray:
    """Features ``(T, len(FEATURE_NAMES))`` for every event of one user, past and present only."""
    ts, x, n = u.ts, u.x, len(u.ts)
    types = x[:, TYPE_OFFSET : TYPE_OFFSET + N_TYPES]  # (T, 10) one-hot of the current event
    kinds = {"events": np.ones(n, bool), "views": types[:, VIEW] > 0,
             "carts": types[:, CART] > 0, "buys": types[:, PURCHASE] > 0}  # fmt: skip
    cols = [np.log1p(_count_since(ts, sel, w)) for sel in kinds.values() for _, w in WINDOWS]
    gaps = np.diff(ts, prepend=ts[:1]) / 1000.0  # (T,) seconds since the previous event
    for lag in (1, 2):
        cols.append(np.log1p(np.concatenate([np.zeros(lag), gaps[:-lag]])[:n]))
    mean5 = np.convolve(gaps, np.ones(5) / 5.0)[:n]
    cols.append(np.log1p(mean5))
    item = u.item if u.item is not None else np.full(n, -1)
    cat = u.category if u.category is not None else np.full(n, -1)
    cols += [np.log1p(_distinct_so_far(item)), np.log1p(_distinct_so_far(cat))]
    cols += [np.log1p(_seen_before(item)), np.log1p(_seen_before(cat))]
    cols.append((_seen_before(item, kinds["carts"]) > 0).astype(np.float32))
    price = np.expm1(x[:, LOG_PRICE] * 10.0)  # the featurizer stores log1p(price) / 10
    last_buy = np.maximum.accumulate(np.where(kinds["buys"], ts, -1))
    since_buy = np.where(last_buy >= 0, (ts - last_buy) / 1000.0, 1e9)
    hour = (ts // HOUR_MS) % 24
    cols += [np.log1p((ts - ts[0]) / 1000.0), np.log1p(since_buy),
             np.log1p(np.cumsum(np.where(kinds["buys"], price, 0.0))), hour / 23.0,
             (_count_since(ts, kinds["carts"], HOUR_MS) > 0).astype(np.float32)]  # fmt: skip
    return np.column_stack([x, *cols]).astype(np.float32)


def all_features(users: Sequence[UserRows]) -> np.ndarray:
    """Features for every event of every user, concatenated in user order ``(N, K)``."""
    return np.concatenate([user_features(u) for u in users])


def _sample(n: int, seed: int) -> np.ndarray:
    if n <= MAX_FIT_ROWS:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, MAX_FIT_ROWS, replace=False))


def _pr_auc(y: np.ndarray, p: np.ndarray) -> float:
    return float(average_precision_score(y, p)) if len(np.unique(y)) == 2 else 0.0


def _tuned(
    makers: list[tuple[dict, Callable[[], object]]],
    xt: np.ndarray,
    yt: np.ndarray,
    xv: np.ndarray,
    yv: np.ndarray,
) -> tuple[Scorer, dict]:
    """Fit every candidate on training rows and keep the best by validation PR-AUC."""
    best: tuple[float, Scorer, dict] | None = None
    for params, make in makers:
        model = make()
        model.fit(xt, yt)  # type: ignore[attr-defined]
        score = _pr_auc(yv, model.predict_proba(xv)[:, 1])  # type: ignore[attr-defined]
        if best is None or score > best[0]:
            best = (score, lambda z, m=model: m.predict_proba(z)[:, 1], params)  # type: ignore[misc]
    assert best is not None
    return best[1], {**best[2], "validation_pr_auc": round(best[0], 5)}


def fit_learned(
    xt: np.ndarray, yt: np.ndarray, xv: np.ndarray, yv: np.ndarray, seed: int, grid: bool = True
) -> dict[str, tuple[Scorer, dict]]:
    """Logistic regression and HistGradientBoosting, each tuned on a small grid (or the middle
    candidate only, ``grid=False``, for the seconds-long test preset)."""
    keep = _sample(len(yt), seed)
    xt, yt = xt[keep], yt[keep]
    logreg = [
        (
            {"C": c},
            lambda c=c: make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=500)),
        )
        for c in ((0.01, 0.1, 1.0) if grid else (0.1,))
    ]
    hgb = [
        (
            {"learning_rate": lr, "max_leaf_nodes": leaves},
            lambda lr=lr, leaves=leaves: HistGradientBoostingClassifier(
                learning_rate=lr,
                max_leaf_nodes=leaves,
                max_iter=200,
                early_stopping=True,  # on a 10 % slice of the training rows, not on validation
                random_state=seed,
            ),
        )
        for lr in ((0.05, 0.15) if grid else (0.1,))
        for leaves in ((15, 31) if grid else (15,))
    ]
    if len(np.unique(yt)) < 2 or len(np.unique(yv)) < 2:
        raise LabelError(
            "the training or validation rows of a head have one class only (every label the "
            "same): the data is too small or too short for these horizons"
        )
    return {
        "logreg": _tuned(logreg, xt, yt, xv, yv),  # type: ignore[arg-type]
        "hgb": _tuned(hgb, xt, yt, xv, yv),  # type: ignore[arg-type]
    }


def rule_score(features: np.ndarray, head: str) -> np.ndarray:
    """The trivial rule's raw score: cart in the last hour (propensity), log gap (churn)."""
    col = "cart_in_last_hour" if head == "propensity" else "log_gap"
    return features[:, FEATURE_NAMES.index(col)]


def fit_rule(features_valid: np.ndarray, y_valid: np.ndarray, head: str) -> tuple[Scorer, dict]:
    """Map the rule's score to a probability with isotonic regression fitted on validation."""
    iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0)
    iso.fit(rule_score(features_valid, head), y_valid)
    name = "cart event in the last hour" if head == "propensity" else "time since previous event"
    return (lambda z: iso.predict(rule_score(z, head))), {"rule": name, "calibrated": "isotonic"}
