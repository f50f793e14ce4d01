"""``simulate``: all users' events, sorted and with ids; ``main``: the ``simulate`` command."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

from tqdm import tqdm

from schemas.event import Event
from training.simulate.sessions import plan_sessions, user_steps
from training.simulate.user import Needs, Person, Step, visits
from training.simulate.world import DAY_MS, Catalog, SimConfig, rng_for

# (ts_ms, user_id, event_type, session_id, item_id, category_id, price, quantity)
Row = tuple[int, str, str, str, str | None, str | None, float | None, int | None]


def simulate(config: SimConfig, *, progress: bool = False) -> list[Event]:
    """Events of ``config.users`` users sorted by ``ts_ms``; ids ``sim-<seed>-<n>`` in order."""
    catalog = Catalog.build(config.items, config.categories, rng_for(config.seed, 0))
    rows: list[Row] = []
    for user in tqdm(range(config.users), desc="simulate", unit="user", disable=not progress):
        rows.extend(_user_rows(config, catalog, user))
    rows.sort(key=_time)  # stable: equal times keep user order, then the user's own order
    prefix = f"sim-{config.seed}-"
    return [
        Event(
            event_id=f"{prefix}{n}",
            user_id=user_id,
            event_type=kind,
            ts_ms=ts_ms,
            session_id=session_id,
            item_id=item_id,
            category_id=category_id,
            price=price,
            quantity=quantity,
        )
        for n, (
            ts_ms,
            user_id,
            kind,
            session_id,
            item_id,
            category_id,
            price,
            quantity,
        ) in enumerate(rows)
    ]


def _user_rows(config: SimConfig, catalog: Catalog, user: int) -> list[Row]:
    """One user's events as rows; the user's random stream depends only on (seed, user)."""
    rng = rng_for(config.seed, 1, user)
    person = Person.draw(rng, config, catalog)
    needs = Needs.draw(rng, person, catalog)
    times, owner = visits(rng, person, needs, config.start_ms)
    plan = plan_sessions(rng, person, needs, catalog, times, owner)
    steps = user_steps(plan, times.tolist(), owner.tolist(), needs.start.size)
    user_id = f"u{user:06d}"
    return [_row(config, catalog, user_id, step) for step in steps if step[0] < config.days]


def _row(config: SimConfig, catalog: Catalog, user_id: str, step: Step) -> Row:
    t, kind, session, item, category, quantity = step
    if item >= 0:
        category = int(catalog.item_category[item])
    return (
        config.start_ms + round(t * DAY_MS),
        user_id,
        kind,
        f"{user_id}-s{session}",
        catalog.item_ids[item] if item >= 0 else None,
        catalog.category_ids[category] if category >= 0 else None,
        catalog.prices[item] if item >= 0 else None,
        quantity,
    )


def _time(row: Row) -> int:
    return row[0]


def main(argv: Sequence[str] | None = None) -> int:
    """``simulate --users N --days D --seed S --out FILE``: write a generic-format event file."""
    from training.datasets import DatasetError, write_events

    parser = argparse.ArgumentParser(prog="python -m training simulate", description=main.__doc__)
    parser.add_argument("--users", type=int, default=SimConfig.users)
    parser.add_argument("--days", type=int, default=SimConfig.days)
    parser.add_argument("--seed", type=int, default=SimConfig.seed)
    parser.add_argument("--out", required=True, help="file to write: .csv, .csv.gz or .parquet")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    try:
        config = SimConfig(users=args.users, days=args.days, seed=args.seed)
        began = time.perf_counter()
        events = simulate(config, progress=not args.quiet)
        written = write_events(events, args.out)
    except (ValueError, DatasetError) as exc:
        print(f"simulate: {exc}", file=sys.stderr)
        return 2
    purchases = sum(e.event_type == "purchase" for e in events)
    print(
        f"{written} events ({purchases / max(written, 1):.2%} purchases) for {config.users} users"
        f" over {config.days} days, seed {config.seed}, in {time.perf_counter() - began:.1f}s"
        f" -> {args.out}"
    )
    return 0
