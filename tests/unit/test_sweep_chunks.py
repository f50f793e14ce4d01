"""The sweep in chunks: the event loop runs between them, and expiries are asked for once."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from tests.worker_artifacts import T0_MS, keyed, make_events, shared_artifact
from worker.core.micro_batch import PipelineConfig, Record, process_batch
from worker.core.model_store import ModelStore
from worker.core.state import UserState, encode_state
from worker.core.sweep import Sweep, SweepMemory
from worker.metrics import Metrics
from worker.runtime.context import Runtime
from worker.runtime.timers import sweep_once
from worker.settings import load_settings

HOUR_MS = 3_600_000


class Topic:
    """Records what the sweep queues (Faust's ``send_soon``)."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def send_soon(self, **record: Any) -> None:
        self.sent.append(record)


@pytest.fixture(scope="module")
def states() -> dict[str, UserState]:
    store = ModelStore.open(shared_artifact())
    events = make_events(600, users=300, seed=4)
    records = [Record(k, v, "events", 0, i, T0_MS) for i, (k, v) in enumerate(keyed(events))]
    result = process_batch(records, lambda _u, _i: None, store.current, PipelineConfig())
    return {u: s for u, (s, _) in result.writes.items()}


def _runtime(**env: str) -> Runtime:
    model_dir = shared_artifact()
    settings = load_settings({"CLICKSCORE_MODEL_DIR": str(model_dir),
                              **{f"CLICKSCORE_{k}": v for k, v in env.items()}})  # fmt: skip
    return Runtime(settings, ModelStore.open(model_dir), Metrics.create(CollectorRegistry()))


def test_the_loop_runs_between_chunks_and_each_idle_user_expires_once(
    states: dict[str, UserState],
) -> None:
    rt = _runtime(BATCH_SIZE="16", STATE_RETENTION_HOURS="1", STORE="memory://")
    table = {u.encode(): encode_state(s) for u, s in states.items()}
    rt.clock.observe(T0_MS + 2 * HOUR_MS)  # every user idle for ~2 h
    churn, events = Topic(), Topic()

    async def main() -> tuple[int, int]:
        ticks = 0
        done = False

        async def ticker() -> None:
            nonlocal ticks
            while not done:
                ticks += 1
                await asyncio.sleep(0)

        task = asyncio.create_task(ticker())
        await asyncio.sleep(0)
        first = await sweep_once(rt, table, churn, events)
        before = ticks
        second = await sweep_once(rt, table, churn, events)
        done = True
        await task
        assert first.users == second.users == len(states)
        return before, len(first.expired) + len(second.expired)

    ticks, expired = asyncio.run(main())
    # One chunk of 16 users between two ticks: the loop ran ~300 / 16 times during the sweep.
    assert ticks >= len(states) // 16
    assert expired == len(states) == len(events.sent)  # asked once per user, not every sweep
    for record in events.sent:
        assert dict(record["headers"]) == {"clickscore-control": b"expire"}
        assert record["value"] == states[record["key"].decode()].last_event_id.encode()


def test_chunks_give_what_one_pass_gives(states: dict[str, UserState]) -> None:
    model = ModelStore.open(shared_artifact()).current
    kwargs: dict[str, Any] = {"now_ms": T0_MS + HOUR_MS, "idle_ms": 60_000, "model": model,
                              "cfg": PipelineConfig(cooldown_ms=0), "batch_size": 7}  # fmt: skip
    whole = Sweep(memory=SweepMemory(), **kwargs)
    whole.feed(states.items())
    one = whole.finish()
    chunked = Sweep(memory=SweepMemory(), **kwargs)
    items = list(states.items())
    for start in range(0, len(items), 50):
        chunked.feed(items[start : start + 50])
    many = chunked.finish()
    assert (many.users, many.rescored) == (one.users, one.rescored) == (len(states), len(states))
    assert [a.doc["alert_id"] for a in many.alerts] == [a.doc["alert_id"] for a in one.alerts]
