"""Labels on hand-made sequences: windows, censoring, 'a purchase is never its own label', churn
augmentation, and the time-based split."""

from __future__ import annotations

import numpy as np
import pytest

from schemas.event import Event
from training.labels import (
    TEST,
    TRAIN,
    VALID,
    LabelError,
    augmented_churn,
    build_labels,
    churn_labels,
    default_horizons,
    propensity_labels,
    quantile_split,
    robust_range,
)

MIN = 60_000


def _ev(user: str, minute: float, kind: str = "view", i: list[int] = [0]) -> Event:  # noqa: B006
    i[0] += 1  # unique ids across a test module
    return Event(event_id=f"e{i[0]}", user_id=user, event_type=kind, ts_ms=int(minute * MIN))


def test_purchase_is_never_its_own_label() -> None:
    ts = np.array([0, 5, 10, 50]) * MIN
    buy = np.array([False, True, False, False])
    y, m = propensity_labels(ts, buy, horizon_ms=10 * MIN, end_ms=100 * MIN)
    # The view at 0 sees the purchase at 5; the purchase itself and later events do not.
    assert y.tolist() == [1, 0, 0, 0]
    assert m.all()


def test_propensity_window_is_open_at_t_and_closed_at_t_plus_h() -> None:
    ts = np.array([0, 10, 10, 20]) * MIN
    buy = np.array([False, False, True, False])
    y, _ = propensity_labels(ts, buy, horizon_ms=10 * MIN, end_ms=100 * MIN)
    # At 0 the purchase at exactly t+H counts (closed end); at 10 a simultaneous one does not.
    assert y.tolist() == [1, 0, 0, 0]


def test_censoring_when_window_passes_the_data_end() -> None:
    ts = np.array([0, 80, 91]) * MIN
    buy = np.array([False, False, False])
    _, m_prop = propensity_labels(ts, buy, horizon_ms=10 * MIN, end_ms=100 * MIN)
    y_churn, m_churn = churn_labels(ts, horizon_ms=20 * MIN, end_ms=100 * MIN)
    assert m_prop.tolist() == [True, True, False]
    assert m_churn.tolist() == [True, True, False]  # 80 + 20 = 100 is still observable
    assert y_churn[:2].tolist() == [1, 0]  # 0 -> next at 80 (silent 20 min); 80 -> next at 91


def test_churn_augmentation_keeps_the_user_silent_and_censors() -> None:
    rng = np.random.default_rng(0)
    ts = np.sort(rng.integers(0, 10_000, 300)) * MIN
    d = 60 * MIN
    end = int(ts[-1])
    elapsed, y, m = augmented_churn(ts, d, end, rng)
    e_ms = (elapsed.astype(np.float64) * 1000).round().astype(np.int64)
    nxt = np.append(ts, np.iinfo(np.int64).max)[np.searchsorted(ts, ts, side="right")]
    assert (ts + e_ms < nxt).all()  # never past the next event
    assert (e_ms == 0).mean() > 0.4 and (e_ms > 0).any()
    assert np.array_equal(y.astype(bool), nxt > ts + e_ms + d)
    assert np.array_equal(m, ts + e_ms + d <= end)


def test_quantile_split_cuts_at_event_counts_of_labellable_events() -> None:
    # 100 events in the first 100 ms, then a sparse tail: a time-range cut would put almost
    # every event in training; counts put 70 % / 15 % / 15 % of labellable events in each split.
    ts = np.array([*range(100), 500, 900, 1000], np.int64)
    split = quantile_split(ts, end_ms=1000, longest_horizon_ms=100)
    assert (split.valid_start_ms, split.test_start_ms) == (71, 86)
    assert split.of(np.array([0, 70, 71, 85, 86, 1000])).tolist() == [
        TRAIN, TRAIN, VALID, VALID, TEST, TEST,
    ]  # fmt: skip


def test_horizon_longer_than_the_data_is_one_clear_error() -> None:
    events = [_ev("a", 0), _ev("a", 30, "purchase")]
    with pytest.raises(LabelError, match="longer than the data's time span"):
        build_labels(events, propensity_seconds=3600, churn_seconds=60)


def test_stray_timestamps_are_dropped_and_cannot_move_the_cuts() -> None:
    clean = [_ev(f"u{i % 20}", i) for i in range(2000)]
    stray = [_ev("u1", -40 * 24 * 60), _ev("u2", -30 * 24 * 60), _ev("u3", 90 * 24 * 60)]
    both = sorted(clean + stray, key=lambda e: e.ts_ms)
    a = build_labels(clean, propensity_seconds=600, churn_seconds=600)
    b = build_labels(both, propensity_seconds=600, churn_seconds=600)
    assert (a.out_of_range, b.out_of_range) == (0, 3)
    assert b.split == a.split and b.summary()["out_of_range_events"] == 3
    assert robust_range(np.array([e.ts_ms for e in both])) == (0, 1999 * MIN)


def test_held_out_users_are_test_rows_on_every_event_and_never_trained_on() -> None:
    events = [_ev(f"u{i % 40}", i) for i in range(4000)]
    data = build_labels(events, propensity_seconds=600, churn_seconds=600, holdout_users=0.25)
    held = [u for u in data.users if u.held_out]
    assert len(held) == 10 and data.summary()["held_out_users"] == 10
    assert all((u.split == TEST).all() and not u.seen_in_train for u in held)
    others = [u for u in data.users if not u.held_out]
    assert all(u.seen_in_train and {TRAIN, VALID, TEST} <= set(u.split.tolist()) for u in others)


def test_build_labels_groups_users_and_splits_their_rows_by_time() -> None:
    # Span 0..1000 min, H = D = 100 min; no user held out: only the time split.
    events = sorted(
        [_ev("old", m) for m in (0, 10, 20, 700, 800)]
        + [_ev("old", 30, "purchase"), _ev("new", 790), _ev("new", 795, "purchase")]
        + [_ev("new", 800), _ev("late", 1000)],
        key=lambda e: e.ts_ms,
    )
    data = build_labels(events, propensity_seconds=6000, churn_seconds=6000, holdout_users=0.0)
    # Labellable times (<= 900 min): 0 10 20 30 700 790 795 800 800 -> cuts at 795 and 800.
    assert data.split.valid_start_ms == 795 * MIN and data.split.test_start_ms == 800 * MIN
    users = {u.user_id: u for u in data.users}
    assert users["old"].seen_in_train and users["new"].seen_in_train  # both have a train row
    assert users["old"].y_prop[:4].tolist() == [1, 1, 1, 0]  # purchase at 30 within 100 min
    assert users["new"].y_prop.tolist() == [1, 0, 0]
    assert users["new"].split.tolist() == [TRAIN, VALID, TEST]
    assert users["old"].x.shape[0] == 6
    assert not users["late"].m_prop.any()  # its window passes the end
    summary = data.summary()
    assert summary["events"] == len(events) and summary["users"] == 3


def test_multi_day_taobao_gets_day_and_session_horizons() -> None:
    assert default_horizons("taobao", 9 * 86_400) == (86_400.0, 1_800.0)
    assert default_horizons("taobao", 80 * 60) == (1_800.0, 1_200.0)
