"""The worker's two timers: pick up a new model; re-score users who went silent (churn sweep)."""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Iterator
from typing import Any

import faust
import msgspec

from worker.core.control import control_record, resolve_record
from worker.core.state import UserState, decode_state
from worker.core.sweep import Sweep, SweepResult, idle_mismatch
from worker.runtime.context import Runtime

log = logging.getLogger("worker")
_json = msgspec.json.Encoder()


def add_model_poll(app: faust.App, rt: Runtime) -> None:
    """Every MODEL_POLL_SECONDS: load a new manifest in a thread, swap it in if it passes."""
    store, metrics = rt.store, rt.metrics

    @app.timer(rt.settings.model_poll_seconds)
    async def poll_model() -> None:
        # Loading runs in a thread; the agent reads ``store.current`` once per batch, so the swap
        # lands between batches and no event is dropped.
        try:
            found = await asyncio.get_running_loop().run_in_executor(None, store.poll)
        except Exception:  # e.g. the directory vanished: keep serving, say so, try again later
            log.exception("model poll failed, still serving %s", store.current.version)
            return
        if found is None:
            return
        result, detail = found
        metrics.model_loads.labels(result).inc()
        if result == "ok":
            model = store.current
            metrics.set_model(model.version, model.featurizer_version, model.scorer.provider)
            metrics.set_expected_precision(model.version, model.manifest.get("threshold_rule", {}))
            log.info("model loaded: %s (hot swap)", model.version)
            if note := idle_mismatch(model, rt.settings.churn_idle_seconds):
                log.warning(note)
        else:
            log.error("model refused, still serving %s: %s", store.current.version, detail)


def add_churn_sweep(
    app: faust.App, rt: Runtime, table: Any, churn_topic: Any, events_topic: Any
) -> None:
    """Every CHURN_SWEEP_INTERVAL_SECONDS: the sweep over this worker's users (best effort)."""

    @app.timer(rt.settings.churn_sweep_interval_seconds)
    async def churn_sweep() -> None:
        try:
            await sweep_once(rt, table, churn_topic, events_topic)
        except Exception:  # the sweep is best effort: a failure must not stop event scoring
            log.exception("churn sweep failed")


async def sweep_once(rt: Runtime, table: Any, churn_topic: Any, events_topic: Any) -> SweepResult:
    """Re-score the silent users in ``table``, queue their churn alerts and expiry requests.

    In chunks of BATCH_SIZE users with a yield to the event loop after each, so the agent's
    batches run during a long sweep (bench/sweep_stall.py measures the stall).
    """
    now_ms = rt.clock.now_ms()
    if now_ms is None:
        return SweepResult()
    settings, metrics = rt.settings, rt.metrics
    started = time.perf_counter()
    run = Sweep(
        now_ms=now_ms,
        idle_ms=int(settings.churn_idle_seconds * 1000),
        model=rt.store.current,
        cfg=rt.cfg,
        memory=rt.sweep_memory,
        batch_size=settings.batch_size,
        retention_ms=settings.state_retention_ms,
    )
    users = _states(table, snapshot=settings.store == "memory://")
    while chunk := list(itertools.islice(users, settings.batch_size)):
        part = run.feed(chunk)
        for emit in part.alerts:
            churn_topic.send_soon(key=emit.key.encode("utf-8"), value=_json.encode(emit.doc))
            metrics.alerts_emitted.labels("churn", "sweep").inc()
        for user, request in part.resolve:
            key, value, headers = resolve_record(user, request)
            events_topic.send_soon(key=key, value=value, headers=headers)
        for user, last_event_id in part.expired:
            key, value, headers = control_record("expire", user, last_event_id)
            events_topic.send_soon(key=key, value=value, headers=headers)
        await asyncio.sleep(0)  # let the agent (and the web server) run between chunks
    result = run.finish()
    rt.users_local = result.users
    metrics.users_in_state.set(result.users)
    metrics.churn_sweep_duration.observe(time.perf_counter() - started)
    if result.alerts or result.expired:
        log.info(
            "churn sweep: %d users, %d re-scored, %d alerts, %d expiries requested",
            result.users,
            result.rescored,
            len(result.alerts),
            len(result.expired),
        )
    return result


def _states(table: Any, *, snapshot: bool) -> Iterator[tuple[str, UserState]]:
    """The table's users, decoded lazily (one chunk at a time).

    The memory store is a dict the agent changes between chunks (iterating it would raise), so
    its keys are copied first (only the keys: a copy of 1M (key, value) pairs stalled the loop
    for most of a second in bench/sweep_stall.py); RocksDB's iterator reads a consistent view
    and is walked as it goes.
    """
    items = ((k, table.get(k)) for k in list(table.keys())) if snapshot else table.items()
    for k, v in items:
        if (state := decode_state(v)) is not None:
            yield k.decode("utf-8"), state
