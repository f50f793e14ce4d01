"""Offline scoring (batched waves) equals stepping the step graph one event at a time, per user in
file order, with a fresh zero state per user -- what the worker does."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch

from schemas.event import EVENT_TYPES, Event
from training.export import write_artifact
from training.featurizer import FeatureContext, featurize
from training.model import ClickModel, ModelConfig
from training.score import StepScorer, score_events, waves, write_scores


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(5)
    out = tmp_path_factory.mktemp("scoring_artifact")
    model = ClickModel(ModelConfig(conv_channels=8, hidden_size=16, num_layers=2))
    write_artifact(
        model, out, propensity_seconds=60, churn_seconds=60,
        thresholds={"propensity": 0.5, "churn": 0.5},
    )  # fmt: skip
    return out


def _events(n: int, users: int, seed: int) -> list[Event]:
    rng = np.random.default_rng(seed)
    events = []
    ts = 1_700_000_000_000
    for i in range(n):
        ts += int(rng.integers(0, 120_000))
        events.append(
            Event(
                event_id=f"e{i}",
                user_id=f"u{int(rng.zipf(1.5)) % users}",  # skewed: a few users have long histories
                event_type=str(rng.choice(EVENT_TYPES)),
                ts_ms=ts - int(rng.integers(0, 5_000)),  # a little disorder, as real feeds have
                item_id=f"i{int(rng.integers(0, 20))}" if rng.random() < 0.8 else None,
                category_id=f"c{int(rng.integers(0, 5))}",
                price=float(rng.uniform(1, 100)) if rng.random() < 0.5 else None,
            )
        )
    return events


def _reference(model_dir: Path, events: list[Event]) -> tuple[np.ndarray, np.ndarray]:
    """One event at a time, batch size 1: the worker's semantics spelled out plainly."""
    scorer = StepScorer(model_dir)
    ctx: dict[str, FeatureContext] = {}
    state: dict[str, dict[str, np.ndarray]] = {}
    pp, pc = [], []
    for e in events:
        row, ctx[e.user_id] = featurize(e, ctx.get(e.user_id, FeatureContext()))
        st = state.get(e.user_id) or {
            k: np.zeros((1, *s), np.float32) for k, s in scorer.state_shapes.items()
        }
        p, c, state[e.user_id] = scorer.step(row[None], np.zeros(1, np.float32), st)
        pp.append(float(p[0]))
        pc.append(float(c[0]))
    return np.array(pp), np.array(pc)


def test_batched_scoring_equals_per_event_stepping(model_dir: Path) -> None:
    events = _events(400, users=30, seed=3)
    scores = score_events(model_dir, events)
    want_p, want_c = _reference(model_dir, events)
    assert scores.event_id == [e.event_id for e in events]
    np.testing.assert_allclose(scores.p_purchase, want_p, atol=1e-5, rtol=0)
    np.testing.assert_allclose(scores.p_churn, want_c, atol=1e-5, rtol=0)
    # History matters: the same event type scored for different users does not give one number.
    assert np.unique(np.round(scores.p_purchase, 6)).size > 20


def test_waves_keep_each_user_once_and_in_order() -> None:
    users = np.array([0, 1, 0, 2, 0, 1, 3])
    got = waves(users)
    assert [w.tolist() for w in got] == [[0, 1, 3, 6], [2, 5], [4]]
    assert waves(np.array([], np.int64)) == []


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_write_scores_round_trip(model_dir: Path, tmp_path: Path, suffix: str) -> None:
    events = _events(30, users=4, seed=1)
    scores = score_events(model_dir, events)
    out = tmp_path / f"scores{suffix}"
    write_scores(scores, out)
    if suffix == ".csv":
        with out.open() as fh:
            rows = list(csv.DictReader(fh))
        assert list(rows[0]) == ["event_id", "user_id", "timestamp", "p_purchase", "p_churn"]
        got = np.array([float(r["p_churn"]) for r in rows])
        assert [int(r["timestamp"]) for r in rows] == [e.ts_ms for e in events]
    else:
        import pyarrow.parquet as pq

        got = pq.read_table(out).column("p_churn").to_numpy()
    np.testing.assert_allclose(got, scores.p_churn, atol=1e-7, rtol=0)


def test_write_scores_refuses_unknown_extension(model_dir: Path, tmp_path: Path) -> None:
    scores = score_events(model_dir, _events(3, users=2, seed=0))
    with pytest.raises(ValueError, match="extension"):
        write_scores(scores, tmp_path / "scores.txt")
