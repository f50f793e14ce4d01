"""Worker processes of one consumer group on their own topics: start, kill, restart, clean up.

Each worker gets its own data dir (RocksDB holds a lock on it) unless a test restarts one on the
same dir, as a crashed pod comes back on its volume.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

from tests.e2e.worker_process import WorkerProcess, counter, own_topics, worker_env
from tests.faults.oracle import Oracle

PARTITIONS = 6

# Faust reads these from the environment (faust/types/settings/settings.py, env_name=...). With
# the defaults (60 s session) a SIGKILLed member holds its partitions for a minute before the
# group rebalances; a shorter session keeps the fault tests inside their time budget. A real
# deployment keeps Faust's defaults or sets these the same way.
FAUST_ENV = {"BROKER_SESSION_TIMEOUT": "10", "BROKER_HEARTBEAT_INTERVAL": "1"}


class Fleet:
    """The workers of one test, sharing topics and group."""

    def __init__(self, bootstrap: str, oracle: Oracle, tmp: Path, **settings: object) -> None:
        tag = uuid.uuid4().hex[:8]
        self.bootstrap = bootstrap
        self.oracle = oracle
        self.tmp = tmp
        self.topics = own_topics(tag)
        self.settings: dict[str, object] = {
            "group_id": f"cs-{tag}",
            "partitions": PARTITIONS,
            "batch_size": 64,
            "store": "rocksdb://",
            **oracle.worker_settings(),
            **self.topics,
            **settings,
        }
        self.workers: dict[str, WorkerProcess] = {}
        self._starts = 0

    def start(self, name: str) -> WorkerProcess:
        """Start worker ``name`` (data dir ``tmp/name``: a restart reuses it)."""
        self._starts += 1
        env = worker_env(
            self.bootstrap, self.oracle.model_dir, self.tmp / f"data-{name}", **self.settings
        )
        env.update(FAUST_ENV)
        log = self.tmp / f"worker-{name}-{self._starts}.log"
        self.workers[name] = worker = WorkerProcess(env, log)
        return worker

    def kill(self, name: str) -> float:
        """SIGKILL worker ``name``; returns the monotonic time of the kill."""
        worker = self.workers.pop(name)
        worker.proc.kill()
        at = time.monotonic()
        worker.stop()  # reaps it and closes its log
        return at

    def stop(self, name: str) -> int:
        """SIGTERM worker ``name`` (a scale-in); its exit status."""
        return self.workers.pop(name).stop()

    def stop_all(self) -> None:
        for name in list(self.workers):
            self.workers.pop(name).stop()

    def logs(self) -> str:
        """Every worker log's tail (for failure messages)."""
        return "\n".join(
            f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}"
            for p in sorted(self.tmp.glob("worker-*.log"))
        )


def wait_scoring(worker: WorkerProcess, timeout: float = 180.0) -> None:
    """Until ``worker`` has scored at least one event (it is past recovery and consuming)."""
    worker.wait_ready(timeout)  # its web server answers from here on
    worker.wait_metric(lambda m: counter(m, "clickscore_events_scored_total") > 0, timeout)
