"""What an uninterrupted run gives: the events, the model, every score and every alert id.

Scores come from ``training.score.score_events`` (the function behind ``python -m training
score``, invariant 3). Alert ids come from the worker's own pure core (``process_batch``) run over
all events in one batch with an in-memory state: no Kafka, no restarts, nothing lost. A fault test
then compares what the worker streamed under faults against these.

Thresholds are set to quantiles of the offline scores (cooldown 0, small hysteresis), so alerts
fire and re-arm all along the stream rather than only at each user's first event: a lost or
doubly stepped state after a fault would fire an alert with an id the uninterrupted run never has.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from schemas.event import Event
from tests.worker_artifacts import copy_artifact, keyed, make_events, shared_artifact
from training.score import score_events
from worker.core.micro_batch import PipelineConfig, Record, process_batch
from worker.core.model_store import load_model

N_EVENTS = 3000
N_USERS = 150
HYSTERESIS = 0.01
ALERT_QUANTILE = 0.8  # roughly one event in five crosses a threshold


@dataclass(frozen=True)
class Oracle:
    """The fault tests' input and their expected output."""

    model_dir: Path
    events: list[Event]
    records: list[tuple[bytes, bytes]]  # (key, value) as produced, keyed by user id
    p_purchase: dict[str, float]  # event_id -> reference score
    p_churn: dict[str, float]
    alert_ids: frozenset[str]  # every alert id of the uninterrupted run

    def worker_settings(self) -> dict[str, object]:
        """CLICKSCORE_* values (lower-case names) that make the worker match this oracle."""
        return {
            "alert_cooldown_seconds": 0,
            "alert_hysteresis": HYSTERESIS,
            "churn_idle_seconds": 10**9,  # no sweep alerts: their ids depend on wall-clock timing
        }


def build_oracle(tmp: Path) -> Oracle:
    """Make the model (thresholds from score quantiles), events and expected outputs."""
    events = make_events(N_EVENTS, users=N_USERS, seed=5, prefix="f")
    model_dir = copy_artifact(shared_artifact(), tmp / "model")
    ref = score_events(model_dir, events)
    manifest_path = model_dir / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["thresholds"] = {
        "propensity": float(np.quantile(ref.p_purchase, ALERT_QUANTILE)),
        "churn": float(np.quantile(ref.p_churn, ALERT_QUANTILE)),
    }
    manifest_path.write_text(json.dumps(manifest, indent=2))
    records = keyed(events)
    return Oracle(
        model_dir=model_dir,
        events=events,
        records=records,
        p_purchase=dict(zip(ref.event_id, map(float, ref.p_purchase), strict=True)),
        p_churn=dict(zip(ref.event_id, map(float, ref.p_churn), strict=True)),
        alert_ids=_expected_alert_ids(model_dir, records),
    )


def _expected_alert_ids(model_dir: Path, records: list[tuple[bytes, bytes]]) -> frozenset[str]:
    # One batch over everything: waves keep each user's order, states live in a plain dict.
    cfg = PipelineConfig(cooldown_ms=0, hysteresis=HYSTERESIS)
    batch = [Record(k, v, "events", 0, i, None) for i, (k, v) in enumerate(records)]
    result = process_batch(batch, lambda _user, _index: None, load_model(model_dir), cfg)
    assert result.scored == len(records)  # every event valid and new: the oracle is complete
    return frozenset(str(emit.doc["alert_id"]) for emit in result.alerts)
