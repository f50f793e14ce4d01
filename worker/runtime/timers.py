"""The worker's two timers: pick up a new model; re-score users who went silent (churn sweep)."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import faust
import msgspec

from worker.core.state import decode_state
from worker.core.sweep import idle_mismatch, sweep
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
            log.info("model loaded: %s (hot swap)", model.version)
            if note := idle_mismatch(model, rt.settings.churn_idle_seconds):
                log.warning(note)
        else:
            log.error("model refused, still serving %s: %s", store.current.version, detail)


def add_churn_sweep(app: faust.App, rt: Runtime, table: Any, churn_topic: Any) -> None:
    """Every CHURN_SWEEP_INTERVAL_SECONDS: the sweep over this worker's users (best effort)."""

    @app.timer(rt.settings.churn_sweep_interval_seconds)
    async def churn_sweep() -> None:
        try:
            sweep_once(rt, table, churn_topic)
        except Exception:  # the sweep is best effort: a failure must not stop event scoring
            log.exception("churn sweep failed")


def sweep_once(rt: Runtime, table: Any, churn_topic: Any) -> None:
    """Re-score the silent users in ``table`` and queue their churn alerts."""
    now_ms = rt.clock.now_ms()
    if now_ms is None:
        return
    settings, metrics = rt.settings, rt.metrics
    started = time.perf_counter()
    items = ((k.decode("utf-8"), s) for k, v in table.items() if (s := decode_state(v)) is not None)
    result = sweep(
        items,
        now_ms=now_ms,
        idle_ms=int(settings.churn_idle_seconds * 1000),
        model=rt.store.current,
        cfg=rt.cfg,
        alerted=rt.swept,
        batch_size=settings.batch_size,
    )
    for emit in result.alerts:
        churn_topic.send_soon(key=emit.key.encode("utf-8"), value=_json.encode(emit.doc))
        metrics.alerts_emitted.labels("churn", "sweep").inc()
    rt.users_local = result.users
    metrics.users_in_state.set(result.users)
    metrics.churn_sweep_duration.observe(time.perf_counter() - started)
    if result.alerts:
        log.info(
            "churn sweep: %d users, %d re-scored, %d alerts",
            result.users,
            result.rescored,
            len(result.alerts),
        )
