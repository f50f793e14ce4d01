"""A real Prometheus, configured from deploy/prometheus/ (same rules), scrapes a real worker.

The worker (``python -m worker run``) consumes from the session's Kafka broker with a small
untrained model; Prometheus scrapes it every second and evaluates our rules every second. Through
Prometheus's HTTP API the test sees the key series appear and move, every rule evaluate without
error, a refused model fire ClickscoreModelLoadRefused, and a killed worker turn ``up`` to 0 and
ClickscoreWorkerDown pending. The model rollout of docs/operations.md (versioned directories, an
atomic symlink switch) is exercised too, and the Dockerfile's HEALTHCHECK command runs against the
live worker.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import dockerfile
import pytest
import yaml
from confluent_kafka import Producer

from schemas.event import Event, encode_event
from tests.deploy.deployfiles import (
    DOCKERFILE,
    METRIC_NAME,
    PROMETHEUS_DIR,
    RULES_FILE,
    base_metric,
    dashboard_exprs,
    load_yaml_docs,
    rule_exprs,
    tool,
)

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
USERS = 12
EVENTS_PER_USER = 5
BAD_RECORDS = 3  # not JSON: dead letters with reason "not_json"
T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(what: str, probe: Callable[[], T | None], timeout: float = 60.0) -> T:
    """Poll ``probe`` until it returns a truthy value; fail naming ``what`` on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.5)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")


def http_get(url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except OSError:
        return 0, b""


@dataclass
class Prom:
    """A Prometheus server on loopback and a tiny client for its HTTP API."""

    url: str
    proc: subprocess.Popen[bytes]

    def api(self, path: str, **params: str) -> Any:
        query = urllib.parse.urlencode(params)
        status, body = http_get(f"{self.url}/api/v1/{path}?{query}")
        assert status == 200, f"{path} {params}: HTTP {status} {body[:300]!r}"
        doc = json.loads(body)
        assert doc["status"] == "success", doc
        return doc["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """Instant vector: a list of ``{"metric": {...}, "value": [ts, "v"]}``."""
        result: list[dict[str, Any]] = self.api("query", query=expr)["result"]
        return result

    def value(self, expr: str) -> float | None:
        """The single value of ``expr`` now, or None while it has no result."""
        result = self.query(expr)
        return float(result[0]["value"][1]) if result else None


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``models/current``, a symlink to ``models/versions/live-v1`` as docs/operations.md lays out.

    An untrained artifact with thresholds 0, so every user's first event raises alerts.
    """
    root = tmp_path_factory.mktemp("models")
    _write_model(root / "versions" / "live-v1", version="live-v1")
    (root / "current").symlink_to("versions/live-v1")
    return root / "current"


def _switch(current: Path, version: str) -> None:
    """The rollout step of docs/operations.md: a new symlink renamed over ``current``."""
    new = current.with_name("current.new")
    new.symlink_to(f"versions/{version}")
    os.replace(new, current)


def _write_model(out: Path, version: str) -> None:
    import torch

    from training.export import write_artifact
    from training.featurizer import FEATURE_DIM
    from training.model import ClickModel, ModelConfig

    torch.manual_seed(0)
    write_artifact(
        ClickModel(ModelConfig(feature_dim=FEATURE_DIM, hidden_size=16)),
        out,
        propensity_seconds=3600.0,
        churn_seconds=86_400.0,
        thresholds={"propensity": 0.0, "churn": 0.0},
        model_version=version,
    )


@pytest.fixture(scope="module")
def worker(
    kafka_bootstrap: str, model_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    """``python -m worker run`` on its own topics and group; yields its port, topic and process."""
    tmp = tmp_path_factory.mktemp("worker")
    port = free_port()
    suffix = uuid.uuid4().hex[:8]
    topic = f"deploy-events-{suffix}"
    env = {
        **os.environ,
        "CLICKSCORE_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "CLICKSCORE_MODEL_DIR": str(model_dir),
        "CLICKSCORE_MODEL_POLL_SECONDS": "1",
        "CLICKSCORE_DATA_DIR": str(tmp / "data"),
        "CLICKSCORE_WEB_HOST": "127.0.0.1",
        "CLICKSCORE_WEB_PORT": str(port),
        "CLICKSCORE_GROUP_ID": f"deploy-{suffix}",
        "CLICKSCORE_EVENTS_TOPIC": topic,
        "CLICKSCORE_DLQ_TOPIC": f"{topic}.dlq",
        "CLICKSCORE_PROPENSITY_TOPIC": f"deploy-propensity-{suffix}",
        "CLICKSCORE_CHURN_TOPIC": f"deploy-churn-{suffix}",
        "CLICKSCORE_OUTCOMES_TOPIC": f"deploy-outcomes-{suffix}",
        "CLICKSCORE_PARTITIONS": "2",
        "CLICKSCORE_BATCH_MAX_WAIT_MS": "10",
    }
    log = (tmp / "worker.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "worker", "run"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{port}"

        def ready() -> bool:
            if proc.poll() is not None:
                pytest.fail(f"worker exited {proc.returncode}:\n{(tmp / 'worker.log').read_text()}")
            return http_get(f"{url}/readyz")[0] == 200

        wait_for("the worker's /readyz", ready, timeout=120)
        yield {"url": url, "port": port, "topic": topic, "proc": proc, "log": tmp / "worker.log"}
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        log.close()


@pytest.fixture(scope="module")
def prom(worker: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prom]:
    """Prometheus with deploy/prometheus/prometheus.yml, its target rewritten to the test worker."""
    tmp = tmp_path_factory.mktemp("prometheus")
    config = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text(encoding="utf-8"))
    config["global"].update({"scrape_interval": "1s", "evaluation_interval": "1s"})
    config["rule_files"] = [str(RULES_FILE)]
    jobs = [j for j in config["scrape_configs"] if j["job_name"] == "clickscore"]
    assert len(jobs) == 1
    jobs[0]["static_configs"] = [{"targets": [f"127.0.0.1:{worker['port']}"]}]
    config["scrape_configs"] = jobs
    (tmp / "prometheus.yml").write_text(yaml.safe_dump(config), encoding="utf-8")
    port = free_port()
    log = (tmp / "prometheus.log").open("wb")
    proc = subprocess.Popen(
        [
            tool("prometheus"),
            f"--config.file={tmp / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--web.enable-lifecycle",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:

        def ready() -> bool:
            if proc.poll() is not None:
                pytest.fail(f"prometheus exited:\n{(tmp / 'prometheus.log').read_text()}")
            return http_get(f"{url}/-/ready")[0] == 200

        wait_for("Prometheus /-/ready", ready, timeout=60)
        yield Prom(url=url, proc=proc)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        log.close()


def _send_events(bootstrap: str, topic: str) -> int:
    """USERS x EVENTS_PER_USER valid events plus BAD_RECORDS non-JSON records; returns the total."""
    producer = Producer({"bootstrap.servers": bootstrap, "partitioner": "murmur2_random"})
    start = 1_700_000_000_000
    kinds = ("view", "click", "add_to_cart", "view", "search")
    for u in range(USERS):
        user = f"user-{u}"
        for i in range(EVENTS_PER_USER):
            event = Event(
                event_id=f"e-{u}-{i}",
                user_id=user,
                event_type=kinds[i % len(kinds)],
                ts_ms=start + u * 1000 + i * 60_000,
                item_id=f"item-{i}",
                category_id="c1",
                price=9.5,
            )
            producer.produce(topic, key=user.encode(), value=encode_event(event))
    for b in range(BAD_RECORDS):
        producer.produce(topic, key=f"user-{b}".encode(), value=b"{not json")
    assert producer.flush(30) == 0
    return USERS * EVENTS_PER_USER + BAD_RECORDS


def test_key_series_exist_and_move(
    kafka_bootstrap: str, worker: dict[str, Any], prom: Prom, model_dir: Path
) -> None:
    job = '{job="clickscore"}'
    wait_for("a first scrape with up == 1", lambda: prom.value(f"up{job}") == 1.0)
    assert prom.value(f"clickscore_events_consumed_total{job}") == 0.0
    assert prom.value(f"clickscore_ready{job}") == 1.0

    sent = _send_events(kafka_bootstrap, worker["topic"])
    scored = USERS * EVENTS_PER_USER
    wait_for(
        f"clickscore_events_consumed_total == {sent}",
        lambda: prom.value(f"clickscore_events_consumed_total{job}") == sent,
    )
    wait_for(
        f"clickscore_events_scored_total == {scored}",
        lambda: prom.value(f"clickscore_events_scored_total{job}") == scored,
    )
    dead = prom.value('clickscore_events_dead_lettered_total{job="clickscore",reason="not_json"}')
    assert dead == BAD_RECORDS
    wait_for("users in state", lambda: prom.value(f"clickscore_users_in_state{job}") == USERS)
    # The counter moved inside Prometheus's own storage, not only on the last scrape.
    increase = prom.value(f"increase(clickscore_events_scored_total{job}[1m])")
    assert increase is not None and increase > 0
    # Histograms observed every scoring call and every sent record.
    assert (prom.value(f"clickscore_scoring_latency_seconds_count{job}") or 0) > 0
    assert (prom.value(f"clickscore_end_to_end_latency_seconds_count{job}") or 0) > 0
    batch_rows = prom.value(f"clickscore_scoring_batch_size_sum{job}")
    assert batch_rows == scored
    # Thresholds 0: each user's first event raises a propensity alert.
    propensity = wait_for(
        "propensity alerts",
        lambda: prom.value(
            'sum(clickscore_alerts_emitted_total{job="clickscore",alert_type="propensity"})'
        ),
    )
    assert propensity == USERS
    (info,) = prom.query(f"clickscore_model_info{job}")
    assert info["metric"]["model_version"] == "live-v1"
    lag = prom.query(f"clickscore_consumer_lag{job}")
    assert {r["metric"]["topic"] for r in lag} == {worker["topic"]}


def test_every_rule_evaluates_cleanly_on_live_data(prom: Prom) -> None:
    """Each of our rules loaded and evaluated against the real series without an error."""

    def evaluated() -> list[dict[str, Any]] | None:
        rules = [r for g in prom.api("rules")["groups"] for r in g["rules"]]
        never = "0001-01-01T00:00:00Z"
        return rules if all(r["lastEvaluation"] != never for r in rules) else None

    rules = wait_for("every rule evaluated once", evaluated)
    groups = load_yaml_docs(RULES_FILE)[0]["groups"]  # alerts and recording rules
    names = {r.get("alert", r.get("record")) for g in groups for r in g["rules"]}
    assert {r["name"] for r in rules} == names
    for rule in rules:
        assert rule["health"] == "ok", f"{rule['name']}: {rule.get('lastError')}"
    firing = {a["labels"]["alertname"] for a in prom.api("alerts")["alerts"]}
    assert "ClickscoreWorkerDown" not in firing and "ClickscoreWorkersAbsent" not in firing


def test_dashboard_and_rules_metrics_are_on_the_live_page(worker: dict[str, Any]) -> None:
    """Every metric the dashboard or rules query is declared on the running worker's /metrics."""
    status, body = http_get(f"{worker['url']}/metrics")
    assert status == 200
    declared = set(re.findall(r"^# TYPE (clickscore_\w+) ", body.decode(), re.MULTILINE))
    queried = {
        base_metric(m).removesuffix("_total")
        for e in dashboard_exprs() + list(rule_exprs().values())
        for m in METRIC_NAME.findall(e)
    }
    assert queried - {d.removesuffix("_total") for d in declared} == set()


def test_dockerfile_healthcheck_command_against_the_worker(worker: dict[str, Any]) -> None:
    """The image's HEALTHCHECK command run here: 0 on the live worker, non-zero on none."""
    (check,) = [c.value for c in dockerfile.parse_file(str(DOCKERFILE)) if c.cmd == "HEALTHCHECK"]
    assert check[:2] == ("CMD", "python")
    command = [sys.executable, *check[2:]]
    ok = subprocess.run(
        command, env={"CLICKSCORE_WEB_PORT": str(worker["port"])}, capture_output=True, timeout=30
    )
    assert ok.returncode == 0, ok.stderr
    down = subprocess.run(
        command, env={"CLICKSCORE_WEB_PORT": str(free_port())}, capture_output=True, timeout=30
    )
    assert down.returncode != 0


def test_model_rollout_refused_then_accepted(prom: Prom, model_dir: Path) -> None:
    """The documented rollout: a broken version is refused (alert fires, v1 keeps serving); a good
    one is picked up without a restart."""
    versions = model_dir.parent / "versions"
    broken = versions / "live-v2-broken"
    shutil.copytree(versions / "live-v1", broken)
    manifest = json.loads((broken / "manifest.json").read_text(encoding="utf-8"))
    manifest["model_version"] = "live-v2-broken"
    manifest["featurizer_version"] += 1000  # a featurizer this worker does not have
    (broken / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    _switch(model_dir, "live-v2-broken")
    job = 'job="clickscore"'
    wait_for(
        "model_loads_total{result=refused} == 1",
        lambda: prom.value(f'clickscore_model_loads_total{{{job},result="refused"}}') == 1,
    )
    wait_for(
        "ClickscoreModelLoadRefused firing",
        lambda: prom.query('ALERTS{alertname="ClickscoreModelLoadRefused",alertstate="firing"}'),
    )
    (info,) = prom.query(f"clickscore_model_info{{{job}}}")
    assert info["metric"]["model_version"] == "live-v1"

    _write_model(versions / "live-v3", version="live-v3")
    _switch(model_dir, "live-v3")
    wait_for(
        "model_loads_total{result=ok} == 2 (start + live-v3)",
        lambda: prom.value(f'clickscore_model_loads_total{{{job},result="ok"}}') == 2,
    )
    wait_for(
        "clickscore_model_info at live-v3",
        lambda: [
            r
            for r in prom.query(f"clickscore_model_info{{{job}}} == 1")
            if r["metric"]["model_version"] == "live-v3"
        ],
    )


def test_killed_worker_is_down_and_its_alert_pending(worker: dict[str, Any], prom: Prom) -> None:
    """Last: SIGKILL the worker; up turns 0 and ClickscoreWorkerDown goes pending (for: 2m)."""
    proc: subprocess.Popen[bytes] = worker["proc"]
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    wait_for("up == 0", lambda: prom.value('up{job="clickscore"}') == 0.0, timeout=30)
    wait_for(
        "ClickscoreWorkerDown pending",
        lambda: prom.query('ALERTS{alertname="ClickscoreWorkerDown",alertstate="pending"}'),
        timeout=30,
    )
