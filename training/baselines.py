"""Baselines on the same rows and split: logistic regression and gradient boosting on hand-made
recency / frequency / monetary / session features, and one trivial rule per head.

Every feature at event t uses the user's events up to and including t only (no look-ahead). The
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
from training.featurizer import LOG_GAP, LOG_PRICE, N_TYPES, SESSION_DEPTH, TYPE_OFFSET
from training.labels import LabelError, UserRows

CART: Final = EVENT_TYPES.index("add_to_cart")
PURCHASE: Final = EVENT_TYPES.index("purchase")
HOUR_MS, DAY_MS = 3_600_000, 86_400_000
MAX_FIT_ROWS: Final = 200_000  # baselines fit on a seeded sample of training rows beyond this
FEATURE_NAMES: Final = (
    "log_gap", "is_first", "log_events", "log_events_1h", "log_events_24h", "log_purchases",
    "log_spend", "log_since_purchase", "has_purchased", "carts_1h", "cart_in_last_hour",
    "session_depth", "log_age", *(f"now_{t}" for t in EVENT_TYPES),
)  # fmt: skip

Scorer = Callable[[np.ndarray], np.ndarray]


def _count_since(ts: np.ndarray, which: np.ndarray, window_ms: int) -> np.ndarray:
    """For each event, how many ``which`` events of the user fall in [t - window, t]."""
    sel = ts[which]
    return np.searchsorted(sel, ts, side="right") - np.searchsorted(
        sel, ts - window_ms, side="left"
    )


def user_features(u: UserRows) -> np.ndarray:
    """Hand-made features ``(T, len(FEATURE_NAMES))`` for every event of one user, past only."""
    ts, x = u.ts, u.x
    n = len(ts)
    types = x[:, TYPE_OFFSET : TYPE_OFFSET + N_TYPES]  # (T, 10) one-hot of the current event
    is_cart, is_buy = types[:, CART] > 0, types[:, PURCHASE] > 0
    price = np.expm1(x[:, LOG_PRICE] * 10.0)  # the featurizer stores log1p(price) / 10
    spend = np.cumsum(np.where(is_buy, price, 0.0))
    buys = np.cumsum(is_buy)
    last_buy = np.maximum.accumulate(np.where(is_buy, ts, -1))  # time of the latest purchase so far
    since_buy = np.where(last_buy >= 0, (ts - last_buy) / 1000.0, 1e9)
    carts_1h = _count_since(ts, is_cart, HOUR_MS)
    cols = [
        x[:, LOG_GAP],
        (np.arange(n) == 0).astype(np.float32),
        np.log1p(np.arange(1, n + 1)),
        np.log1p(_count_since(ts, np.ones(n, bool), HOUR_MS)),
        np.log1p(_count_since(ts, np.ones(n, bool), DAY_MS)),
        np.log1p(buys),
        np.log1p(spend),
        np.log1p(since_buy),
        (buys > 0).astype(np.float32),
        carts_1h,
        (carts_1h > 0).astype(np.float32),
        x[:, SESSION_DEPTH],
        np.log1p((ts - ts[0]) / 1000.0),
    ]
    return np.column_stack([*cols, types]).astype(np.float32)


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
