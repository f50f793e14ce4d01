"""Table recovery: how long a worker takes to rebuild N users' state from the changelog.

The changelog topic is filled directly with realistic state records (states built by the worker's
own pipeline, bench/state_size.py), keyed and partitioned as the worker writes them. Cases:

- naive rebuild: confluent-kafka reads the changelog into a dict (the floor to compare with);
- cold start: ``python -m worker run`` with an empty RocksDB dir, start -> /readyz 200, with the
  changelog preload (worker/runtime/preload.py, the default) and with Faust's own recovery
  (``CLICKSCORE_CHANGELOG_PRELOAD=false``);
- empty-table start: the same with an empty changelog (start-up cost, subtracted for "recovery");
- warm restart: SIGTERM, start again on the same RocksDB dir (only the changelog tail is read);
- handover, standby replicas 0 vs 1, preload on vs off: two workers, one stops (SIGTERM); time
  until the other serves every partition (with a standby it already holds the state, without it
  restores it).
"""

from __future__ import annotations

import argparse
import itertools
import os
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import msgspec
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from bench import kafka_tools as kt
from bench.kafka_pipeline import _free_port
from bench.report import Result
from bench.scoring import BenchError, _artifact
from bench.state_size import _build_states
from worker.core.model_store import load_model
from worker.kafka_connection import local
from worker.tools.kafka_config import producer_config

PARTITIONS = 6
TEMPLATE_USERS = 200  # distinct realistic states, cycled over all users
FAUST_ENV = {"BROKER_SESSION_TIMEOUT": "10", "BROKER_HEARTBEAT_INTERVAL": "1"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``python -m bench recovery``."""
    parser.add_argument("--users", type=int, nargs="+", default=[100_000], help="table sizes")
    parser.add_argument("--bootstrap", default=None, help="a running broker (default: own one)")
    parser.add_argument("--no-handover", action="store_true", help="skip the two-worker cases")
    parser.add_argument("--tiny", action="store_true", help="2,000 users, seconds-long smoke run")


def run(args: argparse.Namespace) -> Result:
    """Measure every case for every table size."""
    sizes = [2000] if args.tiny else args.users
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        model_dir, _manifest, _trained = _artifact(None, tmp / "model")
        templates = _build_states(load_model(model_dir), TEMPLATE_USERS, 12)
        result = Result(
            "recovery",
            {
                "users": sizes,
                "partitions": PARTITIONS,
                "store": "rocksdb://",
                "state_bytes_mean": sum(map(len, templates)) / len(templates),
                "faust_env": FAUST_ENV,
            },
        )
        with kt.broker(args.bootstrap, tmp / "kafka") as bootstrap:
            base = _start_to_ready(_Worker(bootstrap, model_dir, tmp, _group()), fresh=True)
            result.add("empty-table start", "start to ready", base, "s")
            for n in sizes:
                _one_size(result, bootstrap, model_dir, tmp, templates, n, base, args)
    result.notes.append(
        "recovery = start-to-ready minus the empty-table start in the same run; the machine is "
        "shared (2 cores, other work running), so read the ratios more than the seconds"
    )
    return result


def _one_size(
    result: Result,
    bootstrap: str,
    model_dir: Path,
    tmp: Path,
    templates: list[bytes],
    n: int,
    base: float,
    args: argparse.Namespace,
) -> None:
    group = _group()
    changelog = f"{group}-user-state-changelog"  # Faust's name: <app id>-<table>-changelog
    _fill(bootstrap, changelog, templates, n)
    naive = _naive(bootstrap, changelog, n)
    result.add("naive rebuild (confluent-kafka -> dict)", "seconds", naive, "s", users=n)
    faust_only = {"CLICKSCORE_CHANGELOG_PRELOAD": "false"}
    slow = _start_to_ready(_Worker(bootstrap, model_dir, tmp, group, faust_only), fresh=True)
    result.add("cold start, Faust's own recovery", "start to ready", slow, "s", users=n)
    worker = _Worker(bootstrap, model_dir, tmp, group)
    sizes: dict[str, int] = {}
    cold = _start_to_ready(worker, fresh=True, measure=sizes)
    result.add("cold start, empty RocksDB", "start to ready", cold, "s", users=n)
    result.add("worker once recovered", "rss", sizes["rss"], "bytes", users=n)
    result.add("worker once recovered", "rss per user", sizes["rss"] / n, "bytes", users=n)
    result.add("RocksDB data dir once recovered", "bytes per user", sizes["disk"] / n, "bytes",
               users=n)  # fmt: skip
    warm = _start_to_ready(worker, fresh=False)
    result.add("warm restart, same RocksDB dir", "start to ready", warm, "s", users=n)
    recovery = max(cold - base, 1e-3)
    result.add("cold start, empty RocksDB", "recovery (minus empty start)", recovery, "s", users=n)
    result.ratios[f"cold_recovery_over_naive_{n}"] = recovery / naive
    result.ratios[f"cold_start_faust_over_preload_{n}"] = slow / cold
    if args.no_handover:
        return
    for standbys, preload in itertools.product((0, 1), (True, False)):
        seconds = _handover(bootstrap, model_dir, tmp, templates, n, standbys, preload)
        result.add("handover after SIGTERM", "to all partitions ready", seconds, "s", users=n,
                   standby_replicas=standbys, preload=preload)  # fmt: skip
        if preload:
            result.ratios[f"handover_standby{standbys}_over_naive_{n}"] = seconds / naive


def _group() -> str:
    return f"bench-rec-{uuid.uuid4().hex[:8]}"


def _fill(bootstrap: str, topic: str, templates: list[bytes], n: int) -> None:
    """``n`` state records, compacted topic like Faust's changelog, murmur2 like the worker."""
    admin = AdminClient(local(bootstrap).librdkafka())
    config = {"cleanup.policy": "compact"}
    admin.create_topics([NewTopic(topic, PARTITIONS, 1, config=config)])[topic].result(30)
    producer = Producer({**producer_config(local(bootstrap)), "linger.ms": 20})
    for i, value in zip(range(n), itertools.cycle(templates), strict=False):
        while True:
            try:
                producer.produce(topic, key=f"u{i:07d}".encode(), value=value)
                break
            except BufferError:
                producer.poll(0.1)
        producer.poll(0)
    if producer.flush(300):
        raise BenchError("changelog records undelivered")


def _naive(bootstrap: str, topic: str, n: int) -> float:
    """Seconds to read the whole changelog into a dict (decoding each value once)."""
    decoder = msgspec.msgpack.Decoder()
    started = time.perf_counter()
    consumer = Consumer({**local(bootstrap).librdkafka(), "group.id": _group()})
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(PARTITIONS)])
    table: dict[bytes, Any] = {}
    try:
        while len(table) < n:
            for msg in consumer.consume(10_000, 1.0):
                if msg.error() is None:
                    table[msg.key() or b""] = decoder.decode(msg.value() or b"")
    finally:
        consumer.close()
    return time.perf_counter() - started


def _handover(
    bootstrap: str,
    model_dir: Path,
    tmp: Path,
    templates: list[bytes],
    n: int,
    standbys: int,
    preload: bool,
) -> float:
    """Two workers, both ready; SIGTERM one; seconds until the other serves every partition."""
    group = _group()
    _fill(bootstrap, f"{group}-user-state-changelog", templates, n)
    env = {"TABLE_STANDBY_REPLICAS": str(standbys), "CLICKSCORE_CHANGELOG_PRELOAD": str(preload)}
    a, b = (_Worker(bootstrap, model_dir, tmp, group, extra=env) for _ in range(2))
    a.start(fresh=True)
    b.start(fresh=True)
    try:
        for w in (a, b):
            w.wait(lambda doc: doc["ready"])
        time.sleep(5)  # let the standby catch up with the changelog (it has no backlog after)
        stopped = time.perf_counter()
        a.stop()
        b.wait(lambda doc: doc["ready"] and len(doc["partitions"]) == PARTITIONS)
        return time.perf_counter() - stopped
    finally:
        a.stop()
        b.stop()


def _start_to_ready(
    worker: _Worker, *, fresh: bool, measure: dict[str, int] | None = None
) -> float:
    """Seconds from start to ready; with ``measure``, also the ready worker's RSS and disk use."""
    started = time.perf_counter()
    worker.start(fresh=fresh)
    try:
        worker.wait(lambda doc: doc["ready"])
        seconds = time.perf_counter() - started
        if measure is not None:
            measure["rss"] = worker.rss_bytes()
            measure["disk"] = sum(f.stat().st_size for f in worker.data.rglob("*") if f.is_file())
        return seconds
    finally:
        worker.stop()


class _Worker:
    """``python -m worker run`` for one group, restartable on the same data dir."""

    def __init__(
        self, bootstrap: str, model_dir: Path, tmp: Path, group: str, extra: dict | None = None
    ) -> None:
        self.data = tmp / f"data-{uuid.uuid4().hex[:8]}"
        self.log = tmp / f"{self.data.name}.log"
        self.port = _free_port()
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("CLICKSCORE_")},
            **FAUST_ENV,
            **(extra or {}),
            "CLICKSCORE_KAFKA_BOOTSTRAP": bootstrap,
            "CLICKSCORE_EVENTS_TOPIC": f"{group}-events",
            "CLICKSCORE_DLQ_TOPIC": f"{group}-dlq",
            "CLICKSCORE_PROPENSITY_TOPIC": f"{group}-prop",
            "CLICKSCORE_CHURN_TOPIC": f"{group}-churn",
            "CLICKSCORE_GROUP_ID": group,
            "CLICKSCORE_PARTITIONS": str(PARTITIONS),
            "CLICKSCORE_MODEL_DIR": str(model_dir),
            "CLICKSCORE_DATA_DIR": str(self.data),
            "CLICKSCORE_WEB_HOST": "127.0.0.1",
            "CLICKSCORE_WEB_PORT": str(self.port),
            "CLICKSCORE_LOG_LEVEL": "WARNING",
        }
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, *, fresh: bool) -> None:
        if fresh and self.data.exists():
            raise BenchError(f"{self.data} exists; a fresh start needs an empty dir")
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "worker", "run"], env=self.env, stdout=log, stderr=log
            )

    def wait(self, ready: Any, timeout: float = 900.0) -> None:
        """Until /readyz's document satisfies ``ready``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise BenchError(f"worker exited: {self.log.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/readyz", timeout=2) as r:
                    doc = msgspec.json.decode(r.read())
            except urllib.error.HTTPError as exc:
                doc = msgspec.json.decode(exc.read())
            except OSError:
                doc = None
            if doc is not None and ready(doc):
                return
            time.sleep(0.1)
        raise BenchError(f"worker not ready in {timeout:.0f} s: {self.log.read_text()[-2000:]}")

    def rss_bytes(self) -> int:
        """The running worker's resident set size (Linux /proc)."""
        assert self.proc is not None
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise BenchError("no VmRSS in /proc (not Linux?)")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
