"""Hot model swap while events flow: none unscored, new version after the swap, bad one refused.

A producer thread keeps sending events (new users as it goes) while the test writes a new artifact
into the watched directory, then a broken one. Thresholds are 0, so every new user's first event
fires an alert that names the model that scored it.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from pathlib import Path

import pytest

import schemas
from tests.e2e.worker_process import WorkerFactory, counter
from tests.kafka_io import consume, produce
from tests.worker_artifacts import copy_artifact, keyed, make_artifact, make_events, shared_artifact

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


class Feeder(threading.Thread):
    """Sends ``chunks`` of events one by one, a little apart, so a swap lands mid-stream."""

    def __init__(self, bootstrap: str, topic: str, prefix: str, chunks: int) -> None:
        super().__init__(daemon=True)
        self.bootstrap, self.topic, self.prefix, self.chunks = bootstrap, topic, prefix, chunks
        self.sent = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            for c in range(self.chunks):
                events = make_events(50, users=10, seed=c, prefix=f"{self.prefix}{c}-")
                # Fresh users per chunk: their first event alerts with the serving model.
                events = [e.__class__(**{**_fields(e), "user_id": f"{self.prefix}{c}-{e.user_id}"})
                          for e in events]  # fmt: skip
                produce(self.bootstrap, self.topic, keyed(events))
                self.sent += len(events)
                time.sleep(0.2)
        except BaseException as exc:
            self.error = exc


def _fields(e: object) -> dict[str, object]:
    import msgspec

    return msgspec.structs.asdict(e)  # type: ignore[arg-type]


def _version(m: dict[str, float]) -> str:
    info = [k for k, v in m.items() if k.startswith("clickscore_model_info{") and v == 1]
    assert len(info) == 1, info
    return info[0].split("model_version=")[1].split(",")[0].rstrip("}")


def test_hot_swap_while_events_flow(
    kafka_bootstrap: str, tmp_path: Path, worker_factory: WorkerFactory
) -> None:
    model_dir = copy_artifact(shared_artifact(propensity=0.0, churn=0.0), tmp_path / "model")
    v1 = json.loads((model_dir / "manifest.json").read_text())["model_version"]
    topics = worker_factory.topics
    worker = worker_factory.start(model_dir, partitions=2, batch_size=32, churn_idle_seconds=10**9)
    try:
        before = Feeder(kafka_bootstrap, topics["events_topic"], "a", 10)
        before.start()
        # Some events scored with v1 first (a metric, not a sleep: a slow machine waits longer).
        worker.wait_metric(lambda m: counter(m, "clickscore_events_scored_total") > 0, timeout=60)
        make_artifact(model_dir, seed=5, thresholds={"propensity": 0.0, "churn": 0.0},
                      model_version="v2-swapped")  # fmt: skip
        m = worker.wait_metric(lambda m: _version(m) == "v2-swapped", timeout=60)
        assert m["clickscore_model_loads_total{result=ok}"] == 2
        before.join(120)
        assert before.error is None

        # A broken new model: the graph file no longer matches its sha256.
        manifest = json.loads((model_dir / "manifest.json").read_text())
        manifest["model_version"] = "v3-broken"
        (model_dir / "model.onnx").write_bytes(b"not an onnx graph")
        (model_dir / "manifest.json").write_text(json.dumps(manifest))
        worker.wait_metric(lambda m: m.get("clickscore_model_loads_total{result=refused}") == 1)
        after = Feeder(kafka_bootstrap, topics["events_topic"], "b", 4)
        after.run()  # in this thread: every one of these is sent after the swap and the refusal
        assert after.error is None

        total = before.sent + after.sent
        m = worker.wait_metric(lambda m: counter(m, "clickscore_events_scored_total") >= total)
        assert counter(m, "clickscore_events_scored_total") == total  # nothing lost, none twice
        assert _version(m) == "v2-swapped"
        assert worker.proc.poll() is None
    finally:
        assert worker.stop() == 0, worker.log_tail()
    assert "model refused, still serving v2-swapped" in worker.log_tail(500_000)

    scores = [json.loads(v) for _, v in consume(
        kafka_bootstrap, topics["scores_topic"], f"t-{uuid.uuid4().hex}", total)]  # fmt: skip
    assert len({s["event_id"] for s in scores}) == total
    versions = {s["model_version"] for s in scores}
    assert versions == {v1, "v2-swapped"}
    assert all(s["model_version"] == "v2-swapped" for s in scores if s["event_id"].startswith("b"))
    group = f"t-{uuid.uuid4().hex}"
    got = consume(kafka_bootstrap, topics["propensity_topic"], group, 10_000, timeout=8)
    alerts = [json.loads(v) for _, v in got]
    for a in alerts:
        schemas.validate("alert", a)
    late = [a for a in alerts if a["user_id"].startswith("b")]
    assert late and all(a["model_version"] == "v2-swapped" for a in late)
    assert "v3-broken" not in {a["model_version"] for a in alerts}
