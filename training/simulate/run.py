"""``simulate``: all users' events, sorted and with ids; ``main``: the ``simulate`` command."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
from tqdm import tqdm

from schemas.event import Event
from training.simulate.funnel import play
from training.simulate.people import Needs, People, Visits
from training.simulate.sessions import KINDS, plan_sessions
from training.simulate.world import DAY_MS, Catalog, SimConfig, rng_for

BLOCK_USERS: Final = 1000  # users simulated together (numpy pays per call, not per element)


@dataclass(frozen=True)
class Block:
    """The events of a block of users as columns (E events), in no particular order."""

    time: np.ndarray  # (E,) days since the start
    kind: np.ndarray  # (E,) index into KINDS
    user: np.ndarray  # (E,) global user number
    session: np.ndarray  # (E,) index into ``session_ids``
    item: np.ndarray  # (E,) item index, -1 for none
    category: np.ndarray  # (E,) the session's category (for events without an item)
    quantity: np.ndarray  # (E,) -1 for none
    session_ids: list[str]


def simulate(config: SimConfig, *, progress: bool = False) -> list[Event]:
    """Events of ``config.users`` users sorted by ``ts_ms``; ids ``sim-<seed>-<n>`` in order.

    Ties in time keep user order, then the user's own order.
    """
    catalog = Catalog.build(config.items, config.categories, rng_for(config.seed, 0))
    blocks: list[Block] = []
    with tqdm(total=config.users, desc="simulate", unit="user", disable=not progress) as bar:
        for first in range(0, config.users, BLOCK_USERS):
            users = min(BLOCK_USERS, config.users - first)
            blocks.append(_block(config, catalog, first, users))
            bar.update(users)
    return _events(config, catalog, blocks)


def _block(config: SimConfig, catalog: Catalog, first: int, users: int) -> Block:
    """Events of users ``first .. first + users - 1``."""
    rng = rng_for(config.seed, 1, first // BLOCK_USERS)
    people = People.draw(rng, users, config, catalog)
    needs = Needs.draw(rng, people, catalog)
    visits = Visits.draw(rng, people, needs, config.start_ms)
    plan = plan_sessions(rng, people, needs, visits, catalog)
    outcome = play(plan, visits)
    kept = np.asarray(outcome.kept, dtype=np.int64)
    ordinal = np.full(visits.user.size, -1, dtype=np.int64)  # candidate -> kept session ordinal
    ordinal[kept] = np.arange(kept.size)
    browse = plan.browsing
    happened = ordinal[browse.session] >= 0
    tail_session = np.asarray(outcome.session, dtype=np.int64)
    session = np.concatenate([browse.session[happened], tail_session])
    time = np.concatenate([browse.time[happened], np.asarray(outcome.time, dtype=np.float64)])
    inside = time < config.days  # a session running past the end is cut there
    owner = (visits.user[kept] + first).tolist()
    return Block(
        time=time[inside],
        kind=np.concatenate([browse.kind[happened], np.asarray(outcome.kind, np.int64)])[inside],
        user=visits.user[session][inside] + first,
        session=ordinal[session][inside],
        item=np.concatenate([browse.item[happened], np.asarray(outcome.item, np.int64)])[inside],
        category=np.asarray(plan.category, dtype=np.int64)[session][inside],
        quantity=np.concatenate(
            [np.full(int(happened.sum()), -1), np.asarray(outcome.quantity, np.int64)]
        )[inside],
        session_ids=[f"u{u:06d}-s{n}" for u, n in zip(owner, outcome.number, strict=True)],
    )


def _events(config: SimConfig, catalog: Catalog, blocks: list[Block]) -> list[Event]:
    """Sort all blocks' events by (ts_ms, user, the user's own order) and build them."""
    ts_ms = config.start_ms + np.round(np.concatenate([b.time for b in blocks]) * DAY_MS)
    user = np.concatenate([b.user for b in blocks])
    offsets = np.cumsum([0] + [len(b.session_ids) for b in blocks[:-1]])
    session = np.concatenate([b.session + o for b, o in zip(blocks, offsets, strict=True)])
    # Within a user, equal times (rare) keep the order events were made in: browsing, then tail.
    order = np.lexsort((np.arange(user.size), user, ts_ms))
    item = np.concatenate([b.item for b in blocks])[order]
    category = np.where(
        item >= 0, catalog.item_category[item], np.concatenate([b.category for b in blocks])[order]
    )
    session_ids = [sid for b in blocks for sid in b.session_ids]
    user_ids = [f"u{u:06d}" for u in range(config.users)]
    item_ids = [*catalog.item_ids, None]  # index -1: no item
    prices = [*catalog.prices, None]
    prefix, category_ids = f"sim-{config.seed}-", catalog.category_ids
    columns = zip(
        ts_ms[order].astype(np.int64).tolist(),
        user[order].tolist(),
        np.concatenate([b.kind for b in blocks])[order].tolist(),
        session[order].tolist(),
        item.tolist(),
        category.tolist(),
        np.concatenate([b.quantity for b in blocks])[order].tolist(),
        strict=True,
    )
    return [
        Event(
            event_id=prefix + str(n),
            user_id=user_ids[u],
            event_type=KINDS[k],
            ts_ms=t,
            session_id=session_ids[s],
            item_id=item_ids[i],
            category_id=category_ids[c],
            price=prices[i],
            quantity=None if q < 0 else q,
        )
        for n, (t, u, k, s, i, c, q) in enumerate(columns)
    ]


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
