"""Health for operators: ``/metrics``, ``/healthz``, ``/readyz`` and the readiness/lag timer.

Served by Faust's own web server (``@app.page``) on WEB_HOST:WEB_PORT. Ready means: partitions of
the events topic assigned, table recovery done, a model loaded (the process cannot run without).
"""

from __future__ import annotations

import logging
from typing import Any

import faust

from worker.logs import RoutineRetries
from worker.runtime.context import Runtime

log = logging.getLogger("worker")
LAG_INTERVAL_SECONDS = 2.0  # how stale /readyz and clickscore_consumer_lag may be


def add_health(app: faust.App, rt: Runtime) -> None:
    """Register the web routes and the timer that keeps readiness and lag current."""
    metrics, store = rt.metrics, rt.store
    events_topic = rt.settings.events_topic

    @app.timer(LAG_INTERVAL_SECONDS)
    async def watch_partitions() -> None:
        consumer = app.consumer
        tps = {tp for tp in consumer.assignment() if tp.topic == events_topic}
        names = frozenset(f"{tp.topic}[{tp.partition}]" for tp in tps)
        if names != rt.assigned:
            rt.assigned = names
            log.info("partitions assigned: %s", ", ".join(sorted(names)) or "(none)")
            metrics.consumer_lag.clear()
        for tp in tps:
            # Faust's own record of what it committed (None until the first commit).
            committed = consumer._committed_offset.get(tp) or 0  # type: ignore[attr-defined]
            end = consumer.highwater(tp)  # None until the first fetch from this partition
            if end is None:
                continue
            metrics.consumer_lag.labels(tp.topic, str(tp.partition)).set(max(0, end - committed))
        recovery = app.tables.recovery  # type: ignore[attr-defined]
        # Faust sets ``completed`` after the first recovery and never clears it, so on its own it
        # said "ready" while a rebalance was still restoring partitions from the changelog (the
        # recovery bench saw a 100k-user handover "ready" in 2 s); also require that no rebalance
        # or recovery is under way.
        recovered = recovery.completed.is_set() and not recovery.in_recovery
        recovered = recovered and not app.rebalancing
        ready = bool(tps and recovered)
        metrics.ready.set(1 if ready else 0)
        if ready:
            RoutineRetries.settle()  # coordinator retries from now on are worth their level

    @app.page("/metrics")
    async def metrics_page(web: Any, request: Any) -> Any:
        return web.bytes(metrics.exposition(), content_type="text/plain; version=0.0.4")

    @app.page("/healthz")
    async def healthz(web: Any, request: Any) -> Any:
        return web.json({"status": "ok", "model_version": store.current.version})

    @app.page("/readyz")
    async def readyz(web: Any, request: Any) -> Any:
        ready = metrics.ready._value.get() == 1
        doc = {"ready": ready, "partitions": sorted(rt.assigned), "model": store.current.version}
        return web.json(doc, status=200 if ready else 503)
