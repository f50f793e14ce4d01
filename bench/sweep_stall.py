"""Sweep stall: event latency while the churn sweep walks N users, in one piece vs in chunks.

The sweep runs on the worker's event loop, so while it decodes and checks users no batch of
events is scored. A probe task stands in for the agent: every ``--period-ms`` a micro-batch of
events "arrives" and is run through ``worker.core.micro_batch.process_batch``; its latency is
arrival (the scheduled time) to done. Three cases in one run: no sweep; the whole table in one
synchronous pass (``worker.core.sweep.sweep``, what the timer ran before); and the timer's
``sweep_once`` (``BATCH_SIZE`` users per chunk, a yield between chunks). The table is a dict of
encoded states, users not yet idle, so the cost is decoding and checking each user, as in most
sweeps; RocksDB's own reads come on top.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

from prometheus_client import CollectorRegistry

from bench.report import Result
from bench.scoring import BenchError, _artifact
from bench.state_size import _build_states
from schemas.event import Event, encode_event
from worker.core.micro_batch import PipelineConfig, Record, process_batch
from worker.core.model_store import Model, ModelStore
from worker.core.state import UserState, decode_state
from worker.core.sweep import sweep
from worker.metrics import Metrics
from worker.runtime.context import Runtime
from worker.runtime.timers import sweep_once
from worker.settings import load_settings

__all__ = ["BenchError", "add_arguments", "run"]

TEMPLATES = 256  # distinct states (8 events of history each), cycled over the N users
EVENTS_PER_BATCH = 16


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``python -m bench sweep``."""
    parser.add_argument(
        "--users", type=int, nargs="+", default=[100_000, 1_000_000], help="table sizes"
    )
    parser.add_argument("--period-ms", type=float, default=20.0, help="a micro-batch this often")
    parser.add_argument("--tiny", action="store_true", help="seconds-long smoke configuration")


def run(args: argparse.Namespace) -> Result:
    """For each table size: the probe's latency with no sweep, one-piece sweep, chunked sweep."""
    users = [2_000] if args.tiny else sorted(args.users)
    with tempfile.TemporaryDirectory() as tmp:
        model_dir, manifest, trained = _artifact(None, Path(tmp))
        store = ModelStore.open(model_dir)
        templates = _build_states(store.current, 32 if args.tiny else TEMPLATES, 8)
        env = {"CLICKSCORE_MODEL_DIR": str(model_dir)}
        # rocksdb:// walks the table as it goes; memory:// copies its keys first.
        settings = load_settings(env)
        memory = load_settings({**env, "CLICKSCORE_STORE": "memory://"})
        result = Result("sweep", {"model_version": manifest["model_version"], "trained": trained,
                                  "users": users, "period_ms": args.period_ms,
                                  "batch_size": settings.batch_size,
                                  "events_per_batch": EVENTS_PER_BATCH})  # fmt: skip
        newest = max(s.ctx.last_ts_ms or 0 for s in map(decode_state, templates) if s)
        for n in users:
            table = {f"u{i:07d}".encode(): templates[i % len(templates)] for i in range(n)}
            rt, rt_memory = (
                Runtime(s, store, Metrics.create(CollectorRegistry())) for s in (settings, memory)
            )
            for r in (rt, rt_memory):
                r.clock.observe(newest)  # nobody idle: every user decoded and checked
            worst: dict[str, float] = {}
            for case, work in _cases(rt, rt_memory, table).items():
                lat, seconds = asyncio.run(_measure(store.current, work, args.period_ms / 1000))
                worst[case] = max(lat)
                q = statistics.quantiles(lat, n=100, method="inclusive")
                for name, value in (("p50", q[49]), ("p99", q[98]), ("max", max(lat))):
                    result.add(case, f"event_latency_{name}", value * 1000, "ms", users=n)
                result.add(case, "sweep_seconds", seconds, "s", users=n)
            result.ratios[f"max_latency_one_piece_over_chunked_{n}"] = worst[
                "one-piece sweep (before)"
            ] / max(worst["chunked sweep (now)"], 1e-9)
    result.notes.append(
        f"probe: {EVENTS_PER_BATCH} events every {args.period_ms:g} ms through process_batch; "
        "latency = scheduled arrival to done; a dict of encoded states, nobody idle; "
        "'chunked sweep (now)' walks it as the RocksDB store does (RocksDB's own reads not "
        "included), the memory:// case copies its keys first"
    )
    return result


def _cases(
    rt: Runtime, rt_memory: Runtime, table: dict[bytes, bytes]
) -> dict[str, Callable[[], Awaitable[object]]]:
    return {
        "no sweep": _nothing,
        "one-piece sweep (before)": lambda: _one_piece(rt, table),
        "chunked sweep (now)": lambda: sweep_once(rt, table, _Drop(), _Drop()),
        "chunked sweep, memory:// key copy": lambda: sweep_once(rt_memory, table, _Drop(), _Drop()),
    }


class _Drop:
    """A topic that drops what is sent (nobody is idle: nothing is sent anyway)."""

    def send_soon(self, **_record: object) -> None:
        """Faust's ``Topic.send_soon``."""


async def _nothing() -> None:
    await asyncio.sleep(1.0)


async def _one_piece(rt: Runtime, table: dict[bytes, bytes]) -> None:
    # The timer's code before the sweep yielded: one synchronous pass over the whole table.
    def states() -> Iterator[tuple[str, UserState]]:
        for k, v in table.items():
            if (s := decode_state(v)) is not None:
                yield k.decode("utf-8"), s

    now_ms = rt.clock.now_ms() or 0
    sweep(states(), now_ms=now_ms, idle_ms=int(rt.settings.churn_idle_seconds * 1000),
          model=rt.store.current, cfg=rt.cfg, alerted=set(),
          batch_size=rt.settings.batch_size)  # fmt: skip


async def _measure(
    model: Model, work: Callable[[], Awaitable[object]], period_s: float
) -> tuple[list[float], float]:
    """Run ``work`` beside the probe; the probe's latencies (s) and the work's duration (s)."""
    batches = _batches()
    latencies: list[float] = []
    done = asyncio.Event()

    async def probe() -> None:
        loop = asyncio.get_running_loop()
        due = loop.time()
        i = 0
        while not done.is_set():
            due += period_s
            await asyncio.sleep(max(0.0, due - loop.time()))
            process_batch(batches[i % len(batches)], lambda _u, _i: None, model, PipelineConfig())
            latencies.append(loop.time() - due)
            i += 1

    task = asyncio.create_task(probe())
    await asyncio.sleep(0.2)
    started = time.perf_counter()
    await work()
    seconds = time.perf_counter() - started
    await asyncio.sleep(0.2)  # the backlog a stall left drains
    done.set()
    await task
    return latencies, seconds


def _batches() -> list[list[Record]]:
    out = []
    for b in range(8):
        batch = []
        for j in range(EVENTS_PER_BATCH):
            event = Event(event_id=f"p{b}-{j}", user_id=f"probe{j}", event_type="view",
                          ts_ms=1_767_571_353_381 + j)  # fmt: skip
            batch.append(Record(event.user_id.encode(), encode_event(event), "events", 0, j, None))
        out.append(batch)
    return out
