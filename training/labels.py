"""Labels, censoring and the time-based split, as /work/shared/DESIGN.md defines them.

- Propensity at event t: a purchase by the same user in (t, t+H]. The event at t, even a purchase,
  is input only: the window is open at t, so a purchase is never its own label.
- Churn at event t: no event by the user in (t, t+D].
- Right-censoring: a row whose window (t, t+horizon] ends past the last event time of the whole
  data set is left out of that head's training and evaluation (we cannot know its label).
- Robust time range: the data's range is its 1 %..99 % event-time quantiles widened by 10 % of
  that span on each side (and never past the real first/last event). Events outside it (real files
  carry a few timestamps weeks off) are dropped and counted in the summary, so a handful of
  outliers can neither stretch the span nor move the cuts.
- Split by time at event-count quantiles: the cuts fall at the 70 % / 85 % quantiles of the times
  of *labellable* events (t <= end - max(H, D)), so each split holds its share of events however
  the events cluster in time. Label windows of late training rows may reach into later windows
  (outcomes, not inputs).
- Split by user: a seeded share of users (15 % by default) is held out entirely: every one of
  their labelled events is a test row of "users never seen in training"; the other users' rows
  are split by time as above, and their test rows are "the future of seen users".

>>> import numpy as np
>>> ts = np.array([0, 10, 20, 100], np.int64) * 1000
>>> buy = np.array([False, False, True, False])
>>> propensity_labels(ts, buy, horizon_ms=15_000, end_ms=100_000)
(array([0., 1., 0., 0.], dtype=float32), array([ True,  True,  True, False]))
>>> churn_labels(ts, horizon_ms=15_000, end_ms=100_000)
(array([0., 0., 1., 1.], dtype=float32), array([ True,  True,  True, False]))
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np

from schemas.event import Event
from training.featurizer import featurize_sequence

TRAIN, VALID, TEST = 0, 1, 2
SPLIT_NAMES: Final = ("train", "validation", "test")
DAY_S: Final = 86_400.0

# Default horizons (seconds) per dataset format: (propensity H, churn D).
DEFAULT_HORIZONS: Final[dict[str, tuple[float, float]]] = {
    "generic": (1 * DAY_S, 3 * DAY_S),  # the simulator's output
    "taobao": (30 * 60.0, 20 * 60.0),  # the 80-minute slice
    "cdnow": (90 * DAY_S, 180 * DAY_S),  # purchases only, over 18 months
    "retailrocket": (1 * DAY_S, 7 * DAY_S),
    "rees46": (1 * DAY_S, 7 * DAY_S),
}
# Taobao histories of two days or more (the nine-day file): a purchase within a day (shoppers come
# back daily; an hour would be mostly "buys in this session") and session-exit churn (silent for
# 30 min, the usual session gap), which a nine-day span labels on nearly every event.
MULTI_DAY_TAOBAO: Final = (1 * DAY_S, 30 * 60.0)


def default_horizons(fmt: str, span_seconds: float) -> tuple[float, float]:
    """(H, D) for a format, given the robust time span of the data in seconds.

    >>> default_horizons("taobao", 80 * 60), default_horizons("taobao", 9 * DAY_S)
    ((1800.0, 1200.0), (86400.0, 1800.0))
    """
    if fmt == "taobao" and span_seconds >= 2 * DAY_S:
        return MULTI_DAY_TAOBAO
    return DEFAULT_HORIZONS[fmt]


class LabelError(ValueError):
    """A horizon or split that the data cannot support; the message is one line for the user."""


def propensity_labels(
    ts: np.ndarray, purchase: np.ndarray, horizon_ms: int, end_ms: int
) -> tuple[np.ndarray, np.ndarray]:
    """One user's propensity labels ``(T,)`` and mask (False = censored); ``ts`` sorted."""
    buy_ts = ts[purchase]  # (P,)
    # Purchases strictly after t and at most t+H: count in (t, t+H] via two binary searches.
    first_after = np.searchsorted(buy_ts, ts, side="right")
    last_within = np.searchsorted(buy_ts, ts + horizon_ms, side="right")
    labels = (last_within > first_after).astype(np.float32)
    return labels, ts + horizon_ms <= end_ms


def next_later_ts(ts: np.ndarray) -> np.ndarray:
    """For each event, the time of the user's next event strictly later (int64 max if none)."""
    nxt = np.searchsorted(ts, ts, side="right")  # (T,) index of the first event later than t
    padded = np.append(ts, np.iinfo(np.int64).max)
    return padded[nxt]


def churn_labels(ts: np.ndarray, horizon_ms: int, end_ms: int) -> tuple[np.ndarray, np.ndarray]:
    """One user's churn labels ``(T,)`` at elapsed 0 and mask (False = censored)."""
    labels = (next_later_ts(ts) > ts + horizon_ms).astype(np.float32)
    return labels, ts + horizon_ms <= end_ms


def augmented_churn(
    ts: np.ndarray, horizon_ms: int, end_ms: int, rng: np.random.Generator, p_zero: float = 0.5
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Churn rows at a sampled elapsed time: ``(elapsed_s, label, mask)``, each ``(T,)``.

    Elapsed e is 0 with probability ``p_zero``, else log-uniform in [1 min, 2D]; a sample that
    reaches the next event (the user would no longer be silent) falls back to 0. The label is "no
    event in (t+e, t+e+D]"; rows with t+e+D past the data end are censored.
    """
    n = len(ts)
    lo, hi = np.log(60_000.0), np.log(max(2.0 * horizon_ms, 120_000.0))
    e_ms = np.exp(rng.uniform(lo, hi, n)).astype(np.int64)
    e_ms[rng.random(n) < p_zero] = 0
    nxt = next_later_ts(ts)
    e_ms[ts + e_ms >= nxt] = 0  # still silent at t+e, or we score at the event itself
    labels = (nxt > ts + e_ms + horizon_ms).astype(np.float32)
    mask = ts + e_ms + horizon_ms <= end_ms
    return (e_ms / 1000.0).astype(np.float32), labels, mask


@dataclass(frozen=True)
class Split:
    """Cut points (epoch ms): train = t < valid_start, validation < test_start, test after."""

    start_ms: int
    valid_start_ms: int
    test_start_ms: int
    end_ms: int

    def of(self, ts: np.ndarray) -> np.ndarray:
        """Split id per event time ``(T,)`` int8: TRAIN, VALID or TEST."""
        return np.searchsorted([self.valid_start_ms, self.test_start_ms], ts, side="right").astype(
            np.int8
        )


def robust_range(ts: np.ndarray, q: float = 0.01, margin: float = 0.1) -> tuple[int, int]:
    """First and last event inside the bulk: time quantiles ``q``..``1-q`` widened by ``margin``.

    >>> ts = np.array([-9_000_000, *range(0, 1000, 10), 5_000_000])  # two stray timestamps
    >>> robust_range(ts)
    (0, 990)
    """
    lo, hi = np.quantile(ts, [q, 1.0 - q])
    pad = (hi - lo) * margin
    inside = ts[(ts >= lo - pad) & (ts <= hi + pad)]
    return int(inside.min()), int(inside.max())  # the first and last events kept


def quantile_split(
    ts: np.ndarray,
    end_ms: int,
    longest_horizon_ms: int,
    fractions: tuple[float, float] = (0.7, 0.15),
) -> Split:
    """Cuts at event-count quantiles of the labellable event times (t <= end - longest horizon)."""
    start = int(ts.min())
    labellable = np.sort(ts[ts <= end_ms - longest_horizon_ms])
    if len(labellable) < 3 or labellable[0] == labellable[-1]:
        raise LabelError(
            f"horizon {longest_horizon_ms / 1000:g} s is longer than the data's time span "
            f"({(end_ms - start) / 1000:g} s): too few events could get a label; "
            "use a shorter horizon"
        )
    n = len(labellable)
    valid = int(labellable[min(n - 1, int(n * fractions[0]))])
    test = int(labellable[min(n - 1, int(n * (fractions[0] + fractions[1])))])
    return Split(start, valid, max(test, valid + 1), end_ms)


@dataclass
class UserRows:
    """One user's inputs and labels, all ``(T, ...)`` in time order."""

    user_id: str
    ts: np.ndarray  # (T,) int64 ms
    x: np.ndarray  # (T, F) float32
    purchase: np.ndarray  # (T,) bool
    y_prop: np.ndarray  # (T,) float32
    m_prop: np.ndarray  # (T,) bool, False = censored
    y_churn: np.ndarray  # (T,) float32, at elapsed 0
    m_churn: np.ndarray  # (T,) bool
    split: np.ndarray  # (T,) int8
    seen_in_train: bool
    held_out: bool = False  # in the user split's test group: every event is a test row
    item: np.ndarray | None = None  # (T,) int64 crc32 of item_id, -1 if none (baselines only)
    category: np.ndarray | None = None  # (T,) int64 crc32 of category_id, -1 if none


@dataclass
class LabelledData:
    """Every user's rows plus the horizons and split used to build them."""

    users: list[UserRows]
    split: Split
    propensity_ms: int
    churn_ms: int
    users_in_data: int = 0  # before any subsampling
    out_of_range: int = 0  # events outside the robust time range, dropped

    def summary(self) -> dict[str, object]:
        """Data summary for the manifest and report: sizes, time span, label rates per split."""
        out: dict[str, object] = {
            "events": int(sum(len(u.ts) for u in self.users)),
            "users": len(self.users),
            "users_in_data": self.users_in_data or len(self.users),
            "start": int(self.split.start_ms),
            "end": int(self.split.end_ms),
            "span_days": round((self.split.end_ms - self.split.start_ms) / 86_400_000, 3),
            "cuts_ms": [self.split.valid_start_ms, self.split.test_start_ms],
            "horizons_seconds": [self.propensity_ms / 1000, self.churn_ms / 1000],
            "out_of_range_events": self.out_of_range,
            "held_out_users": sum(u.held_out for u in self.users),
        }
        for sid, name in enumerate(SPLIT_NAMES):
            rows: dict[str, object] = {}
            for head in ("prop", "churn"):
                y = np.concatenate(
                    [getattr(u, f"y_{head}")[_sel(u, head, sid)] for u in self.users]
                    + [np.zeros(0, np.float32)]
                )
                rows[f"{head}_rows"] = len(y)
                rows[f"{head}_rate"] = round(float(y.mean()), 4) if len(y) else None
            out[name] = rows
        return out


def _sel(u: UserRows, head: str, sid: int) -> np.ndarray:
    return np.asarray(getattr(u, f"m_{head}") & (u.split == sid))


def build_labels(
    events: Sequence[Event],
    propensity_seconds: float,
    churn_seconds: float,
    fractions: tuple[float, float] = (0.7, 0.15),
    max_users: int | None = None,
    seed: int = 0,
    holdout_users: float = 0.15,
) -> LabelledData:
    """Group events by user, featurize, label and split them (see the module docstring).

    ``max_users`` keeps a seeded random subset of users (all their events) -- chosen before
    featurizing, which is the slow part; the range and cuts still come from all events.
    """
    if not events:
        raise LabelError("no events to label")
    if propensity_seconds <= 0 or churn_seconds <= 0:
        raise LabelError("horizons must be positive numbers of seconds")
    h_ms, d_ms = int(propensity_seconds * 1000), int(churn_seconds * 1000)
    all_ts = np.fromiter((e.ts_ms for e in events), np.int64, len(events))
    start, end = robust_range(all_ts)
    kept = [e for e in events if start <= e.ts_ms <= end]
    in_range = all_ts[(all_ts >= start) & (all_ts <= end)]
    by_user: dict[str, list[Event]] = {}
    for e in kept:
        by_user.setdefault(e.user_id, []).append(e)
    order = list(by_user)
    rng = np.random.default_rng(seed)
    held = set(rng.permutation(sorted(order))[: round(len(order) * holdout_users)].tolist())
    seen_ts = np.fromiter((e.ts_ms for e in kept if e.user_id not in held), np.int64)
    split = quantile_split(seen_ts if len(seen_ts) else in_range, end, max(h_ms, d_ms), fractions)
    chosen = order
    if max_users is not None and len(chosen) > max_users:
        keep = rng.choice(len(chosen), max_users, replace=False)
        chosen = [chosen[i] for i in sorted(keep.tolist())]
    users = [_user_rows(uid, by_user[uid], split, h_ms, d_ms, uid in held) for uid in chosen]
    return LabelledData(
        users, split, h_ms, d_ms, users_in_data=len(by_user), out_of_range=len(events) - len(kept)
    )


def _user_rows(
    uid: str, evs: list[Event], split: Split, h_ms: int, d_ms: int, held_out: bool
) -> UserRows:
    """One user's featurized, labelled and split rows."""
    evs.sort(key=lambda e: e.ts_ms)  # stable: equal times keep the input order
    ts = np.fromiter((e.ts_ms for e in evs), np.int64, len(evs))
    purchase = np.fromiter((e.event_type == "purchase" for e in evs), bool, len(evs))
    y_prop, m_prop = propensity_labels(ts, purchase, h_ms, split.end_ms)
    y_churn, m_churn = churn_labels(ts, d_ms, split.end_ms)
    sid = np.full(len(ts), TEST, np.int8) if held_out else split.of(ts)
    seen = not held_out and bool((sid == TRAIN).any())
    item = np.fromiter((_hash(e.item_id) for e in evs), np.int64, len(evs))
    category = np.fromiter((_hash(e.category_id) for e in evs), np.int64, len(evs))
    return UserRows(uid, ts, featurize_sequence(evs), purchase, y_prop, m_prop, y_churn, m_churn,
                    sid, seen, held_out, item, category)  # fmt: skip


def _hash(value: str | None) -> int:
    return -1 if value is None else zlib.crc32(value.encode("utf-8"))
