"""The simulator: deterministic per seed, valid events, and the behaviour the issue asks for
(funnels, sessions, rhythm, long tails, stable prices, intent that shows, churners who fade)."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest

from schemas import validate
from schemas.event import EVENT_TYPES, Event, decode_event, encode_event
from training.datasets import read_events
from training.simulate import SimConfig, main, simulate
from training.simulate.funnel import SESSION_GAP
from training.simulate.people import People
from training.simulate.run import _block
from training.simulate.sessions import KINDS
from training.simulate.world import DAY_MS, Catalog, rng_for

CONFIG = SimConfig(users=1500, days=21, seed=7)
HOUR_MS = 3_600_000


@pytest.fixture(scope="module")
def events() -> list[Event]:
    return simulate(CONFIG)


@pytest.fixture(scope="module")
def by_user(events: list[Event]) -> dict[str, list[Event]]:
    users: dict[str, list[Event]] = defaultdict(list)
    for event in events:
        users[event.user_id].append(event)
    return users


def test_same_seed_same_events_other_seed_other_events(events: list[Event]) -> None:
    small = SimConfig(users=60, days=5, seed=7)
    assert simulate(small) == simulate(small)
    assert simulate(small) != simulate(SimConfig(users=60, days=5, seed=8))
    assert simulate(CONFIG) == events


def test_sorted_ids_in_order_within_the_period(events: list[Event]) -> None:
    assert [e.event_id for e in events] == [f"sim-7-{n}" for n in range(len(events))]
    times = [e.ts_ms for e in events]
    assert times == sorted(times)
    assert CONFIG.start_ms <= times[0] and times[-1] < CONFIG.start_ms + CONFIG.days * DAY_MS


def test_events_are_valid_wire_events(events: list[Event]) -> None:
    assert {e.event_type for e in events} == set(EVENT_TYPES)
    assert [decode_event(encode_event(e)) for e in events] == events
    for event in events[:: len(events) // 50]:
        validate("clickstream_event", json.loads(encode_event(event)))


def test_mix_of_event_types(events: list[Event]) -> None:
    share = {t: n / len(events) for t, n in Counter(e.event_type for e in events).items()}
    assert 0.01 <= share["purchase"] <= 0.05
    assert share["view"] > 0.5 and share["add_to_cart"] > share["purchase"]
    assert all(share[t] > 0 for t in EVENT_TYPES)


def test_every_purchase_ends_a_funnel(by_user: dict[str, list[Event]]) -> None:
    """view -> add_to_cart -> checkout -> purchase, for the same item, in that order."""
    purchases = 0
    for user_events in by_user.values():
        carted: set[str | None] = set()
        viewed: set[str | None] = set()
        previous: Event | None = None
        for event in user_events:
            if event.event_type == "view":
                viewed.add(event.item_id)
            elif event.event_type == "add_to_cart":
                assert event.item_id in viewed
                carted.add(event.item_id)
            elif event.event_type == "purchase":
                purchases += 1
                assert event.item_id in carted
                assert previous is not None and previous.event_type == "checkout"
                assert previous.item_id == event.item_id
            previous = event
    assert purchases > 100


def test_sessions_are_contiguous_and_apart(by_user: dict[str, list[Event]]) -> None:
    gap_ms = SESSION_GAP * DAY_MS
    for user_events in by_user.values():
        for before, after in pairwise(user_events):
            if before.session_id == after.session_id:
                assert after.ts_ms - before.ts_ms < gap_ms
            else:
                assert after.ts_ms - before.ts_ms >= gap_ms - 1  # rounding to ms
    sessions = {e.session_id for u in by_user.values() for e in u}
    assert all(s is not None and s.startswith("u") for s in sessions)


def test_hour_of_day_and_weekday_rhythm(events: list[Event]) -> None:
    hours = Counter((e.ts_ms // HOUR_MS) % 24 for e in events)
    evening = sum(hours[h] for h in range(18, 22))
    night = sum(hours[h] for h in range(2, 6))
    assert evening > 4 * night
    weekdays = Counter((e.ts_ms // DAY_MS + 3) % 7 for e in events)  # 1970-01-01: a Thursday
    assert (weekdays[5] + weekdays[6]) / 2 > (weekdays[0] + weekdays[1]) / 2


def test_long_tails_and_stable_prices(events: list[Event]) -> None:
    views = Counter(e.item_id for e in events if e.event_type == "view")
    counts = sorted(views.values(), reverse=True)
    top = sum(counts[: len(counts) // 100]) / sum(counts)
    assert 0.1 < top < 0.5  # the top 1 % of items draw a large share (10 times their number)
    bottom = sum(counts[len(counts) // 2 :]) / sum(counts)
    assert bottom < 0.25  # and the less popular half of the items a small one
    prices: dict[str | None, set[float | None]] = defaultdict(set)
    category_prices: dict[str | None, list[float]] = defaultdict(list)
    for event in events:
        if event.item_id is not None:
            prices[event.item_id].add(event.price)
            assert event.price is not None and event.price > 0
            category_prices[event.category_id].append(event.price)
    assert all(len(p) == 1 for p in prices.values())
    levels = [np.median(p) for p in category_prices.values() if len(p) > 50]
    assert max(levels) > 5 * min(levels)


def test_visits_quicken_before_a_purchase(by_user: dict[str, list[Event]]) -> None:
    """Latent intent shows in behaviour: more sessions in the two days before a purchase."""
    before_purchase, anywhere = [], []
    for user_events in by_user.values():
        starts = np.array(session_starts(user_events))
        bought = [e.ts_ms for e in user_events if e.event_type == "purchase"]
        for t in bought:
            before_purchase.append(np.sum((starts >= t - 2 * DAY_MS) & (starts < t - HOUR_MS)))
        for t in starts[:: max(1, len(starts) // 3)]:
            anywhere.append(np.sum((starts >= t - 2 * DAY_MS) & (starts < t - HOUR_MS)))
    assert np.mean(before_purchase) > 1.5 * np.mean(anywhere)


def session_starts(user_events: list[Event]) -> list[int]:
    starts: dict[str | None, int] = {}
    for event in user_events:
        starts.setdefault(event.session_id, event.ts_ms)
    return list(starts.values())


def test_some_users_join_late_and_some_stop(by_user: dict[str, list[Event]]) -> None:
    end = CONFIG.start_ms + CONFIG.days * DAY_MS
    first = np.array([u[0].ts_ms for u in by_user.values()])
    last = np.array([u[-1].ts_ms for u in by_user.values()])
    assert np.mean(first > CONFIG.start_ms + 3 * DAY_MS) > 0.08
    assert np.mean(last < end - 7 * DAY_MS) > 0.1


def test_churners_fade_before_they_stop() -> None:
    """In a churner's warning days: sessions rarer and shorter, fewer carts (hidden truth)."""
    config = SimConfig(users=1000, days=28, seed=3)
    catalog = Catalog.build(config.items, config.categories, rng_for(config.seed, 0))
    # The first block's users are drawn first from its stream: the same people _block simulates.
    people = People.draw(rng_for(config.seed, 1, 0), config.users, config, catalog)
    block = _block(config, catalog, 0, config.users)
    sessions: dict[int, list[tuple[float, str]]] = defaultdict(list)
    for t, kind, session in zip(block.time, block.kind, block.session, strict=True):
        sessions[int(session)].append((float(t), KINDS[kind]))
    owner = {s: int(u) for s, u in zip(block.session, block.user, strict=True)}
    churner = people.churns & (people.stop - people.join > 8)
    warn_from = people.stop - people.warn
    stats = {True: [0, 0, 0], False: [0, 0, 0]}  # in warning window: sessions, events, carts
    for session, session_steps in sessions.items():
        user = owner[session]
        if churner[user]:
            row = stats[bool(min(session_steps)[0] >= warn_from[user])]
            row[0] += 1
            row[1] += len(session_steps)
            row[2] += sum(kind == "add_to_cart" for _, kind in session_steps)
    (warn_s, warn_e, warn_c), (ok_s, ok_e, ok_c) = stats[True], stats[False]
    warn_days = float(np.sum(people.warn[churner]))
    ok_days = float(np.sum((warn_from - people.join)[churner]))
    assert warn_s / warn_days < 0.8 * ok_s / ok_days
    assert warn_e / warn_s < 0.8 * ok_e / ok_s
    assert warn_c / warn_s < 0.7 * ok_c / ok_s


def test_config_errors_name_the_setting() -> None:
    for bad, name in (
        (dict(users=0), "SimConfig.users=0"),
        (dict(days=-1), "SimConfig.days=-1"),
        (dict(churn_fraction=1.5), "SimConfig.churn_fraction=1.5"),
        (dict(categories=10, items=5), "SimConfig.categories=10"),
    ):
        with pytest.raises(ValueError, match=name):
            SimConfig(**bad)  # type: ignore[arg-type]


def test_main_writes_what_simulate_returns(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "sim.csv.gz"
    assert main(["--users", "40", "--days", "4", "--seed", "2", "--out", str(out), "--quiet"]) == 0
    assert read_events(out).events == simulate(SimConfig(users=40, days=4, seed=2))
    assert "purchases" in capsys.readouterr().out
    assert main(["--users", "0", "--out", str(out), "--quiet"]) == 2
    assert capsys.readouterr().err.strip() == "simulate: SimConfig.users=0: must be >= 1"
