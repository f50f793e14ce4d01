"""Kafka: how fast can events go through, and how long does one take end to end?

One broker, one pre-filled topic, four readers of that same topic in one run:
- the raw ceiling: confluent-kafka consume + decode, no Faust;
- a Faust agent that does nothing (bench/faust_noop.py);
- a Faust agent that does the worker's Faust work only: micro-batches, one state-sized table write
  per user per batch, web server on (bench/faust_stateful.py);
- the full clickscore worker (``python -m worker run``) at saturation (backlog drained), once
  as deployed (no scores topic) and once with the scores topic on;
then end-to-end latency (producer send -> score record consumed, scores topic on) with the
worker fed at 25/50/75 % of its measured saturation rate.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np

from bench import kafka_tools as kt
from bench.report import Result
from bench.scoring import BenchError, _artifact

__all__ = ["BenchError", "add_arguments", "run"]

PARTITIONS = 8  # the worker's default CLICKSCORE_PARTITIONS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``python -m bench kafka``."""
    parser.add_argument("--bootstrap", default=None, help="use this broker (default: start one)")
    parser.add_argument(
        "--model", type=Path, default=None, help="artifact dir (default: untrained)"
    )
    parser.add_argument("--events", type=int, default=30_000, help="backlog size")
    parser.add_argument("--users", type=int, default=3_000, help="distinct users in the events")
    parser.add_argument("--latency-seconds", type=float, default=15.0, help="per latency level")
    parser.add_argument(
        "--latency-rates",
        type=float,
        nargs="+",
        default=None,
        metavar="EVENTS_PER_S",
        help="feed these rates for latency instead of 25/50/75 %% of saturation",
    )
    parser.add_argument(
        "--also",
        action="append",
        default=[],
        metavar="SETTING=VALUE[,SETTING=VALUE]",
        help="run the worker cases again in the same run with these CLICKSCORE_* settings "
        "(e.g. EVENT_LOOP=asyncio), each on a fresh copy of the backlog",
    )
    parser.add_argument("--tiny", action="store_true", help="seconds-long smoke configuration")


def run(args: argparse.Namespace) -> Result:
    """Fill a topic, time the three readers, then the worker's latency at three loads."""
    n, users = (2_000, 200) if args.tiny else (args.events, args.users)
    levels = (0.5,) if args.tiny else (0.25, 0.5, 0.75)
    seconds = 3.0 if args.tiny else args.latency_seconds
    variants = [(label, _settings(label)) for label in args.also]
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        model_dir, manifest, trained = _artifact(args.model, tmp / "model")
        with kt.broker(args.bootstrap, tmp / "kafka") as bootstrap:
            result = Result(
                "kafka",
                {
                    "events": n,
                    "users": users,
                    "partitions": PARTITIONS,
                    "model_version": manifest["model_version"],
                    "trained": trained,
                    "latency_levels": list(levels),
                    "latency_rates": list(args.latency_rates or []),
                    "latency_seconds": seconds,
                    "worker_store": "rocksdb://",
                    "scores_topic": "off, then on (latency is measured with it on)",
                    "variants": [label for label, _ in variants],
                },
            )
            topic = kt.create_topic(bootstrap, PARTITIONS)
            kt.produce(bootstrap, topic, kt.events(n, users))
            raw = n / kt.raw_ceiling(bootstrap, topic, n)
            result.add("raw confluent-kafka consume+decode", "throughput", raw, "events/s")
            noop = _faust_peer("bench.faust_noop", bootstrap, topic, n, tmp)
            result.add("faust no-op agent", "throughput", noop, "events/s")
            stateful = _faust_peer("bench.faust_stateful", bootstrap, topic, n, tmp)
            result.add("faust stateful agent (batches, table writes)", "throughput", stateful,
                       "events/s")  # fmt: skip
            case = _WorkerCases(result, bootstrap, model_dir, tmp, n, users, levels, seconds)
            case.rates = tuple(args.latency_rates or ())
            sat_off, sat = case.run(topic, "", {})
            result.ratios["faust_noop_over_raw"] = noop / raw
            result.ratios["worker_over_raw"] = sat / raw
            result.ratios["worker_over_faust_noop"] = sat / noop
            result.ratios["worker_over_faust_stateful"] = sat / stateful
            result.ratios["worker_scores_off_over_faust_stateful"] = sat_off / stateful
            result.ratios["worker_scores_on_over_off"] = sat / sat_off
            for label, extra in variants:
                # A fresh copy of the backlog: the default's latency feed added to the first one.
                fresh = kt.create_topic(bootstrap, PARTITIONS)
                kt.produce(bootstrap, fresh, kt.events(n, users))
                v_off, v_on = case.run(fresh, label, extra, feed=sat)
                result.ratios[f"worker_scores_off[{label}]_over_default"] = v_off / sat_off
                result.ratios[f"worker[{label}]_over_default"] = v_on / sat
    result.notes.append("latency = score record consumed (wall clock) - producer send time")
    if variants:
        result.notes.append(
            "[SETTING=VALUE] rows: the same worker cases in the same run with those settings, "
            "after the default's, each on a fresh topic filled with the same events, and fed "
            "at the default's latency rates"
        )
    return result


def _settings(label: str) -> dict[str, str]:
    """``EVENT_LOOP=asyncio,FETCH_MAX_WAIT_MS=50`` -> CLICKSCORE_* environment variables."""
    out = {}
    for item in label.split(","):
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise BenchError(f"--also {label!r}: expected SETTING=VALUE[,SETTING=VALUE]")
        out[f"CLICKSCORE_{name.strip().upper().removeprefix('CLICKSCORE_')}"] = value.strip()
    return out


class _WorkerCases:
    """The worker's cases on one topic: saturation scores off, then on, then latency; RSS."""

    def __init__(
        self,
        result: Result,
        bootstrap: str,
        model_dir: Path,
        tmp: Path,
        n: int,
        users: int,
        levels: tuple[float, ...],
        seconds: float,
    ) -> None:
        self.result, self.bootstrap, self.model_dir, self.tmp = result, bootstrap, model_dir, tmp
        self.n, self.users, self.levels, self.seconds = n, users, levels, seconds
        self.rates: tuple[float, ...] = ()  # absolute latency feeds (events/s), if given

    def run(
        self, topic: str, label: str, extra: dict[str, str], feed: float | None = None
    ) -> tuple[float, float]:
        """Events/s scores off and scores on (saturation); latency rows and RSS added too.

        Latency is measured at the load levels of ``feed`` events/s (default: this worker's own
        saturation), so variants can be fed exactly what the default was.
        """
        tag = f" [{label}]" if label else ""
        result, bootstrap = self.result, self.bootstrap
        # Production default first (no scores topic), then the same backlog with scores on.
        with _Worker(bootstrap, topic, self.model_dir, self.tmp, scores=False, extra=extra) as w:
            sat_off = w.drain(self.n)
        result.add(f"clickscore worker, scores off (saturation){tag}", "throughput", sat_off,
                   "events/s")  # fmt: skip
        # Process start -> first event counted: imports, model checks, group join, rebalance and
        # the offset queries after it (polled every 0.1 s).
        result.add(f"clickscore worker start to first event{tag}", "seconds", w.first_event_s, "s")
        with _Worker(bootstrap, topic, self.model_dir, self.tmp, scores=True, extra=extra) as w:
            sat = w.drain(self.n)
            result.add(f"clickscore worker (saturation){tag}", "throughput", sat, "events/s")
            base = feed or sat
            levels = tuple(r / base for r in self.rates) if self.rates else self.levels
            _latency(result, w, bootstrap, topic, self.users, self.n, base, levels, self.seconds,
                     tag)  # fmt: skip
            result.add(f"clickscore worker{tag}", "rss", w.rss_bytes(), "bytes", users=self.users)
        return sat_off, sat


def _faust_peer(module: str, bootstrap: str, topic: str, n: int, tmp: Path) -> float:
    """Events/s of a Faust app of bench/ (``module``) reading the backlog of ``n`` records."""
    name = module.rsplit(".", 1)[-1]
    out = tmp / f"{name}.json"
    env = {
        **os.environ,
        "BENCH_BOOTSTRAP": bootstrap,
        "BENCH_TOPIC": topic,
        "BENCH_COUNT": str(n),
        "BENCH_RESULT": str(out),
        "BENCH_PARTITIONS": str(PARTITIONS),
        "BENCH_APP_ID": f"bench-{name}-{os.getpid()}-{int(time.time())}",
        "BENCH_WEB_PORT": str(_free_port()),
    }
    cmd = [sys.executable, "-m", module, "--datadir", str(tmp / f"{name}-data")]
    cmd += ["worker", "-l", "warn"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, cwd=tmp)
    if not out.exists():
        raise BenchError(
            f"{module} wrote no result (exit {done.returncode}): {done.stderr[-2000:]}"
        )
    doc = json.loads(out.read_text())
    return float(doc["count"]) / float(doc["seconds"])


def _latency(
    result: Result,
    worker: _Worker,
    bootstrap: str,
    topic: str,
    users: int,
    start: int,
    saturation: float,
    levels: tuple[float, ...],
    seconds: float,
    tag: str = "",
) -> None:
    """Feed the running worker at each load level; percentiles of send -> score consumed."""
    for level in levels:
        rate = level * saturation
        count = max(50, int(rate * seconds))
        records = kt.events(count, users, start)
        start += count
        watcher = kt.ScoreLatency(bootstrap, worker.scores_topic)
        before = worker.latency_buckets()
        try:
            sent = kt.produce(bootstrap, topic, records, rate=rate)
            latencies, got = watcher.collect(sent, timeout=60)
        finally:
            watcher.close()
        inside = _diff(worker.latency_buckets(), before)
        if not latencies:
            raise BenchError(f"no score records came back at {level:.0%} load")
        ms = np.asarray(latencies) * 1000.0
        params = {"load": f"{level:.0%}", "rate": round(rate, 1), "events": count, "scored": got}
        for q in (50, 95, 99):
            p = float(np.percentile(ms, q))
            result.add(f"end-to-end latency{tag}", f"p{q}", p, "ms", **params)
        # The worker's own histogram over the same feed (record timestamp -> score or alert
        # queued): is the tail inside the worker, or in the producer, reader and machine?
        total = inside.get(float("inf"), 0.0)
        for bound in (0.1, 0.5) if total else ():
            share = 1.0 - inside.get(bound, 0.0) / total
            result.add(f"worker-side latency{tag}", f"share_over_{bound * 1000:.0f}ms", share,
                       "fraction", **params)  # fmt: skip


class _Worker:
    """``python -m worker run`` on the bench topic; stopped (SIGTERM, then SIGKILL) on exit."""

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        model_dir: Path,
        tmp: Path,
        *,
        scores: bool,
        extra: dict[str, str] | None = None,
    ) -> None:
        tag = topic.removeprefix("bench-") + ("-s" if scores else "-n")
        self.scores_topic = f"bench-scores-{tag}" if scores else ""
        self.port = _free_port()
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("CLICKSCORE_")},
            "CLICKSCORE_KAFKA_BOOTSTRAP": bootstrap,
            "CLICKSCORE_EVENTS_TOPIC": topic,
            "CLICKSCORE_DLQ_TOPIC": f"bench-dlq-{tag}",
            "CLICKSCORE_PROPENSITY_TOPIC": f"bench-prop-{tag}",
            "CLICKSCORE_CHURN_TOPIC": f"bench-churn-{tag}",
            "CLICKSCORE_SCORES_TOPIC": self.scores_topic,
            "CLICKSCORE_GROUP_ID": f"bench-worker-{tag}",
            "CLICKSCORE_PARTITIONS": str(PARTITIONS),
            "CLICKSCORE_MODEL_DIR": str(model_dir),
            "CLICKSCORE_DATA_DIR": str(tmp / f"worker-data{tag}"),
            "CLICKSCORE_WEB_HOST": "127.0.0.1",
            "CLICKSCORE_WEB_PORT": str(self.port),
            "CLICKSCORE_LOG_LEVEL": "WARNING",
            **(extra or {}),
        }
        self.log = tmp / f"worker{tag}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.started = 0.0
        self.first_event_s = float("nan")  # set by drain

    def __enter__(self) -> _Worker:
        self.started = time.monotonic()
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "worker", "run"], env=self.env, stdout=log, stderr=log
            )
        return self

    def __exit__(self, *_exc: object) -> None:
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def consumed(self) -> int:
        """``clickscore_events_consumed_total`` from the worker's /metrics (-1 if not up yet)."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=2) as r:
                text = r.read().decode()
        except OSError:
            return -1
        for line in text.splitlines():
            if line.startswith("clickscore_events_consumed_total "):
                return int(float(line.split()[1]))
        return -1

    def drain(self, n: int, timeout: float = 600.0) -> float:
        """Events/s while the worker works through a backlog of ``n`` (first seen to all seen)."""
        deadline = time.monotonic() + timeout
        first: tuple[float, int] | None = None
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise BenchError(
                    f"worker exited ({self.proc.returncode}): {self.log.read_text()[-2000:]}"
                )
            count, now = self.consumed(), time.monotonic()
            if count > 0 and first is None:
                first = (now, count)
                self.first_event_s = now - self.started
            if first is not None and count >= n:
                if count == first[1]:
                    raise BenchError("the worker drained the backlog between two polls")
                return (count - first[1]) / (now - first[0])
            time.sleep(0.1)
        raise BenchError(f"worker did not consume {n} events in {timeout:.0f} s")

    def latency_buckets(self) -> dict[float, float]:
        """``clickscore_end_to_end_latency_seconds`` cumulative bucket counts, by upper bound."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=2) as r:
                text = r.read().decode()
        except OSError:
            return {}
        out = {}
        prefix = 'clickscore_end_to_end_latency_seconds_bucket{le="'
        for line in text.splitlines():
            if line.startswith(prefix):
                bound, _, count = line[len(prefix) :].partition('"} ')
                out[float(bound)] = float(count)  # float("+Inf") is inf
        return out

    def rss_bytes(self) -> int:
        """The worker process's resident memory now."""
        assert self.proc is not None
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        return 0


def _diff(after: dict[float, float], before: dict[float, float]) -> dict[float, float]:
    return {bound: count - before.get(bound, 0.0) for bound, count in after.items()}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
