"""``simulate``: all users' events, sorted and with ids; ``main``: the ``simulate`` command."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from typing import Final

from tqdm import tqdm

from schemas.event import Event
from training.simulate.people import Needs, People, Visits
from training.simulate.sessions import Step, plan_sessions, play
from training.simulate.world import DAY_MS, Catalog, SimConfig, rng_for

BLOCK_USERS: Final = 1000  # users simulated together (numpy pays per call, not per element)


def simulate(config: SimConfig, *, progress: bool = False) -> list[Event]:
    """Events of ``config.users`` users sorted by ``ts_ms``; ids ``sim-<seed>-<n>`` in order."""
    catalog = Catalog.build(config.items, config.categories, rng_for(config.seed, 0))
    steps: list[Step] = []
    with tqdm(total=config.users, desc="simulate", unit="user", disable=not progress) as bar:
        for first in range(0, config.users, BLOCK_USERS):
            users = min(BLOCK_USERS, config.users - first)
            steps.extend(_block(config, catalog, first, users))
            bar.update(users)
    steps.sort(key=_time)  # stable: equal times keep user order, then the user's own order
    return _events(config, catalog, steps)


def _block(config: SimConfig, catalog: Catalog, first: int, users: int) -> list[Step]:
    """Events of users ``first .. first + users - 1``, in (user, time) order."""
    rng = rng_for(config.seed, 1, first // BLOCK_USERS)
    people = People.draw(rng, users, config, catalog)
    needs = Needs.draw(rng, people, catalog)
    visits = Visits.draw(rng, people, needs, config.start_ms)
    steps = play(plan_sessions(rng, people, needs, visits, catalog), visits, first)
    end = float(config.days)
    return [step for step in steps if step[0] < end]


def _events(config: SimConfig, catalog: Catalog, steps: list[Step]) -> list[Event]:
    prefix, start = f"sim-{config.seed}-", config.start_ms
    item_ids, category_ids, prices = catalog.item_ids, catalog.category_ids, catalog.prices
    item_category = catalog.item_category.tolist()
    user_ids = [f"u{user:06d}" for user in range(config.users)]
    return [
        Event(
            event_id=prefix + str(n),
            user_id=user_ids[user],
            event_type=kind,
            ts_ms=start + round(t * DAY_MS),
            session_id=session,
            item_id=item_ids[item] if item >= 0 else None,
            category_id=category_ids[item_category[item] if item >= 0 else category],
            price=prices[item] if item >= 0 else None,
            quantity=quantity,
        )
        for n, (t, kind, user, session, item, category, quantity) in enumerate(steps)
    ]


def _time(step: Step) -> float:
    return step[0]


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
