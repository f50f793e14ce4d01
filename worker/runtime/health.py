"""Health for operators: ``/metrics``, ``/healthz``, ``/readyz`` and the readiness/lag timer.

Served by Faust's own web server (``@app.page``) on WEB_HOST:WEB_PORT. Ready means: partitions of
the events topic assigned, no rebalance (table recovery included) under way since the last one
ended, a model loaded (the process cannot run without).

Only these three paths are served. Faust's built-in routes would answer too, unauthenticated:
``/table/<name>/<key>/`` returns a user's stored state, ``/router/...`` the host that holds it.
:func:`web_options` turns Faust's built-ins off and adds a middleware that answers 404 for any
other path, so a route a later Faust version adds stays closed as well.
"""

from __future__ import annotations

import logging
from typing import Any

import faust
from aiohttp import web as aioweb
from faust.sensors import Sensor

from worker.core.progress import ProgressWatch
from worker.logs import RoutineRetries
from worker.runtime.context import Runtime
from worker.runtime.faust_private import committed_offset

log = logging.getLogger("worker")
LAG_INTERVAL_SECONDS = 2.0  # how stale /readyz and clickscore_consumer_lag may be
SERVED_PATHS = frozenset({"/metrics", "/healthz", "/readyz"})


@aioweb.middleware
async def only_served_paths(request: aioweb.Request, handler: Any) -> aioweb.StreamResponse:
    """404 for every path but :data:`SERVED_PATHS`, whatever routes Faust registered."""
    if request.path not in SERVED_PATHS:
        raise aioweb.HTTPNotFound()
    response: aioweb.StreamResponse = await handler(request)
    return response


def web_options() -> dict[str, Any]:
    """``faust.App`` keyword arguments: Faust's own routes off, the path allowlist on."""
    return {
        "web_router_enabled": False,  # /router/...: which host holds a key
        "web_tables_enabled": False,  # /table/...: a key's stored value
        "web_stats_enabled": False,  # / and /assignment/: sensors, partitions
        "web_graph_enabled": False,
        "web_metrics_enabled": False,  # /performance/
        "web_application_options": {"middlewares": [only_served_paths]},
    }


class RebalanceSensor(Sensor):
    """Whether a rebalance is under way, from Faust's public sensor hooks.

    Faust calls ``on_rebalance_start`` when partitions are revoked and ``on_rebalance_end`` only
    after its table recovery finished ("Worker ready", faust/tables/recovery.py), so between the
    two the worker may still be restoring state from the changelog. (Faust's
    ``recovery.completed`` is set after the first recovery and never cleared: the recovery bench
    saw a 100k-user handover "ready" in 2 s with it.)
    """

    def __init__(self) -> None:
        super().__init__()
        self.settled = False  # a rebalance ended, and none started since

    def on_rebalance_start(self, app: Any) -> dict[str, Any]:
        """Not ready until this rebalance and its recovery end."""
        self.settled = False
        return super().on_rebalance_start(app)

    def on_rebalance_end(self, app: Any, state: dict[str, Any]) -> None:
        """Recovery done: the assigned partitions hold their state."""
        self.settled = True
        super().on_rebalance_end(app, state)


def add_health(app: faust.App, rt: Runtime) -> None:
    """Register the web routes and the timer that keeps readiness and lag current."""
    metrics, store = rt.metrics, rt.store
    events_topic = rt.settings.events_topic
    rebalance = RebalanceSensor()
    app.sensors.add(rebalance)
    progress = ProgressWatch(rt.settings.stuck_after_seconds)

    @app.timer(LAG_INTERVAL_SECONDS)
    async def watch_partitions() -> None:
        consumer = app.consumer
        tps = {tp for tp in consumer.assignment() if tp.topic == events_topic}
        names = frozenset(f"{tp.topic}[{tp.partition}]" for tp in tps)
        if names != rt.assigned:
            rt.assigned = names
            log.info("partitions assigned: %s", ", ".join(sorted(names)) or "(none)")
            metrics.consumer_lag.clear()
        ready = bool(tps and rebalance.settled)
        if not ready:
            progress.reset()  # a restore or rebalance under way is not a stuck consumer
        for tp in tps:
            committed = committed_offset(consumer, tp) or 0
            end = consumer.highwater(tp)  # None until the first fetch from this partition
            if end is None:
                continue
            lag = max(0, end - committed)
            metrics.consumer_lag.labels(tp.topic, str(tp.partition)).set(lag)
            if ready:
                progress.observe(f"{tp.topic}[{tp.partition}]", committed, lag)
        metrics.ready.set(1 if ready else 0)
        if ready:
            RoutineRetries.settle()  # coordinator retries from now on are worth their level

    @app.page("/metrics")
    async def metrics_page(web: Any, request: Any) -> Any:
        return web.bytes(metrics.exposition(), content_type="text/plain; version=0.0.4")

    @app.page("/healthz")
    async def healthz(web: Any, request: Any) -> Any:
        # 503 (the liveness probe restarts the pod) when lag stands uncommitted for too long.
        stuck = progress.stuck()
        if stuck:
            doc = {"status": "stuck", "model_version": store.current.version,
                   "stuck": {p: round(s) for p, s in stuck}}  # fmt: skip
            return web.json(doc, status=503)
        return web.json({"status": "ok", "model_version": store.current.version})

    @app.page("/readyz")
    async def readyz(web: Any, request: Any) -> Any:
        ready = metrics.ready._value.get() == 1
        doc = {"ready": ready, "partitions": sorted(rt.assigned), "model": store.current.version}
        return web.json(doc, status=200 if ready else 503)
