"""The worker as a real subprocess (``python -m worker run``) for end-to-end tests.

Start it with an environment, wait until ``/readyz`` says ready, read ``/metrics``, stop it with
SIGTERM and get its exit status. Its output goes to a log file that failing tests print.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """A TCP port nobody listens on right now (the worker's web server binds it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def worker_env(bootstrap: str, model_dir: Path, data_dir: Path, **extra: object) -> dict[str, str]:
    """CLICKSCORE_* variables for a test worker: own topics/group via ``extra``, fast timers."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLICKSCORE_")}
    env.update(
        {
            "CLICKSCORE_KAFKA_BOOTSTRAP": bootstrap,
            "CLICKSCORE_MODEL_DIR": str(model_dir),
            "CLICKSCORE_DATA_DIR": str(data_dir),
            "CLICKSCORE_WEB_HOST": "127.0.0.1",
            "CLICKSCORE_WEB_PORT": str(free_port()),
            "CLICKSCORE_MODEL_POLL_SECONDS": "1",
            "CLICKSCORE_LOG_LEVEL": "INFO",
        }
    )
    env.update({f"CLICKSCORE_{k.upper()}": str(v) for k, v in extra.items()})
    return env


class WorkerProcess:
    """One ``python -m worker run`` subprocess."""

    def __init__(self, env: dict[str, str], log_path: Path, cwd: Path = ROOT) -> None:
        self.env = env
        self.log_path = log_path
        self.port = int(env["CLICKSCORE_WEB_PORT"])
        self._log = log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "worker", "run"],
            cwd=cwd,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )

    def url(self, path: str) -> str:
        """An address on the worker's web server."""
        return f"http://127.0.0.1:{self.port}{path}"

    def get(self, path: str) -> tuple[int, bytes]:
        """(status, body) of a GET; (0, b"") while the server is not up."""
        try:
            with urllib.request.urlopen(self.url(path), timeout=5) as resp:
                return int(resp.status), resp.read()
        except urllib.error.HTTPError as exc:
            return int(exc.code), exc.read()
        except (urllib.error.URLError, OSError):
            return 0, b""

    def wait_ready(self, timeout: float = 120.0) -> None:
        """Until /readyz answers 200; fail fast (with the log) if the process exits."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"worker exited {self.proc.returncode}:\n{self.log_tail()}")
            if self.get("/readyz")[0] == 200:
                return
            time.sleep(0.5)
        raise AssertionError(f"worker not ready after {timeout} s:\n{self.log_tail()}")

    def metrics(self) -> dict[str, float]:
        """Every sample on /metrics as ``name{label=value,...}`` -> value."""
        status, body = self.get("/metrics")
        assert status == 200, f"/metrics answered {status}"
        samples: dict[str, float] = {}
        for family in text_string_to_metric_families(body.decode()):
            for s in family.samples:
                labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
                samples[f"{s.name}{{{labels}}}" if labels else s.name] = s.value
        return samples

    def wait_metric(
        self, predicate: Callable[[dict[str, float]], bool], timeout: float = 120.0
    ) -> dict[str, float]:
        """Poll /metrics until ``predicate`` holds (bounded wait, never a sleep-as-assertion)."""
        deadline = time.monotonic() + timeout
        last: dict[str, float] = {}
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"worker exited {self.proc.returncode}:\n{self.log_tail()}")
            last = self.metrics()
            if predicate(last):
                return last
            time.sleep(0.5)
        raise AssertionError(f"metrics never matched; last: {last}\n{self.log_tail()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60.0) -> int:
        """Send ``sig`` and wait for the exit status (SIGKILL after ``timeout``)."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._log.close()
        return int(self.proc.returncode)

    def log_tail(self, chars: int = 6000) -> str:
        """The end of the worker's log (for failure messages)."""
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")[-chars:]


def counter(samples: dict[str, float], name: str) -> float:
    """Sum of a counter over all its label sets (0 when absent)."""
    return sum(v for k, v in samples.items() if k == name or k.startswith(name + "{"))


def own_topics(tag: str) -> dict[str, str]:
    """Topic settings no other test uses: events, dead letters, alert topics, outcomes, scores."""
    return {
        "events_topic": f"ev-{tag}",
        "dlq_topic": f"dlq-{tag}",
        "propensity_topic": f"prop-{tag}",
        "churn_topic": f"churn-{tag}",
        "outcomes_topic": f"outcomes-{tag}",
        "scores_topic": f"scores-{tag}",
    }


class WorkerFactory:
    """Workers for one test: own topics and consumer group, each its data dir and log in ``tmp``.

    ``close(failed=True)`` prints every worker's log (pytest shows it under the failed test).
    """

    def __init__(self, bootstrap: str, tmp: Path) -> None:
        self.bootstrap = bootstrap
        self.tmp = tmp
        tag = uuid.uuid4().hex[:8]
        self.topics = own_topics(tag)
        self.group = f"cs-{tag}"
        self.workers: list[WorkerProcess] = []

    def start(
        self, model_dir: Path, name: str = "worker", ready: bool = True, **settings: object
    ) -> WorkerProcess:
        """Start ``python -m worker run`` (data dir ``tmp/data-<name>``); wait until ready."""
        env = worker_env(
            self.bootstrap,
            model_dir,
            self.tmp / f"data-{name}",
            **{"group_id": self.group, **self.topics, **settings},
        )
        worker = WorkerProcess(env, self.tmp / f"{name}-{len(self.workers)}.log")
        self.workers.append(worker)
        if ready:
            worker.wait_ready()
        return worker

    def close(self, failed: bool = False) -> None:
        """Stop the workers still running; on a failure, print each one's log."""
        for worker in self.workers:
            worker.stop()
            if failed:
                print(f"----- {worker.log_path} -----\n{worker.log_tail(20_000)}")
