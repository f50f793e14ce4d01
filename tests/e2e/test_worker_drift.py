"""Drift in a running worker: the score PSI is low on an unshifted replay, high on a shifted one.

The model's reference comes from a simulation scored offline (what ``training train`` does with its
test split, training/reference.py). The worker then sees a simulation with the same knobs but
other seeds (unshifted; fewer events than the window, so the window holds all of it), then one
where every user stops for good (``churn_fraction=1.0``: short histories; more events than the
window, so the window holds only it). One partition, so the window's content is the replay order.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import msgspec
import numpy as np
import pytest

from schemas.event import Event
from tests.e2e.worker_process import WorkerFactory, counter
from tests.kafka_io import produce
from tests.worker_artifacts import keyed, shared_artifact
from training.featurizer import FEATURE_DIM, featurize_sequence
from training.reference import reference
from training.score import score_events
from training.simulate.run import simulate
from training.simulate.world import SimConfig

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

WINDOW = 1200


def _sim(seed: int, users: int, **knobs: float) -> list[Event]:
    events = simulate(SimConfig(users=users, days=4, seed=seed, **knobs))  # type: ignore[arg-type]
    return [msgspec.structs.replace(e, user_id=f"s{seed}-{e.user_id}") for e in events]


def _rows(events: list[Event]) -> np.ndarray:
    """Feature rows ``(N, F)`` in input order (each user's own sequence)."""
    by_user: dict[str, list[int]] = {}
    for i, e in enumerate(events):
        by_user.setdefault(e.user_id, []).append(i)
    x = np.zeros((len(events), FEATURE_DIM), np.float32)
    for idx in by_user.values():
        x[idx] = featurize_sequence([events[i] for i in idx])
    return x


def _model_with_reference(out: Path) -> Path:
    shutil.copytree(shared_artifact(), out)
    base = _sim(1, users=400)
    scored = score_events(out, base)
    scores = {"propensity": np.asarray(scored.p_purchase), "churn": np.asarray(scored.p_churn)}
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["reference"] = reference(scores, _rows(base), "simulation seed 1")
    (out / "manifest.json").write_text(json.dumps(manifest))
    return out


def test_score_psi_is_low_unshifted_and_high_shifted(
    kafka_bootstrap: str, tmp_path: Path, worker_factory: WorkerFactory
) -> None:
    model = _model_with_reference(tmp_path / "model")
    same = _sim(7, users=150)
    shifted = _sim(8, users=700, churn_fraction=1.0)  # own seed: own event ids and users
    assert len(same) < WINDOW < len(shifted)
    worker = worker_factory.start(
        model, partitions=1, drift_window=WINDOW, churn_idle_seconds=10**9, scores_topic=""
    )
    topic = worker_factory.topics["events_topic"]
    try:
        produce(kafka_bootstrap, topic, keyed(same))
        before = worker.wait_metric(
            lambda m: counter(m, "clickscore_events_scored_total") >= len(same)
        )
        produce(kafka_bootstrap, topic, keyed(shifted))
        after = worker.wait_metric(
            lambda m: counter(m, "clickscore_events_scored_total") >= len(same) + len(shifted)
        )
    finally:
        assert worker.stop() == 0, worker.log_tail()
    low = before["clickscore_score_psi{head=propensity}"]
    high = after["clickscore_score_psi{head=propensity}"]
    assert low < 0.1 and before["clickscore_score_psi{head=churn}"] < 0.1
    assert high > 0.2, (low, high)
    assert after["clickscore_input_psi{input=log_events}"] > 0.2  # the shifted input shows too
    live = [after[f"clickscore_score_bin_fraction{{bin={i:02d},head=propensity,source=live}}"]
            for i in range(10)]  # fmt: skip
    assert sum(live) == pytest.approx(1.0)
