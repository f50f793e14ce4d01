"""The two step scorers (worker and offline reference) keep one contract and agree on a batch."""

from __future__ import annotations

import numpy as np

from tests.worker_artifacts import shared_artifact
from training.artifact import StepScoring
from training.featurizer import FEATURE_DIM
from training.score import StepScorer
from worker.core.model_store import load_model


def test_worker_and_reference_scorer_give_the_same_step() -> None:
    directory = shared_artifact()
    scorers: list[StepScoring] = [load_model(directory).scorer, StepScorer(directory)]
    rng = np.random.default_rng(7)
    batch = 5
    x = rng.normal(size=(batch, FEATURE_DIM)).astype(np.float32)  # (B, F)
    elapsed = np.zeros(batch, np.float32)  # (B,)
    shapes = StepScorer(directory).state_shapes
    state = {n: rng.normal(size=(batch, *s)).astype(np.float32) for n, s in shapes.items()}
    (p0, c0, s0), (p1, c1, s1) = (scorer.step(x, elapsed, state) for scorer in scorers)
    np.testing.assert_allclose(p0, p1, atol=1e-6)
    np.testing.assert_allclose(c0, c1, atol=1e-6)
    assert s0.keys() == s1.keys() == shapes.keys()
    for name in shapes:
        np.testing.assert_allclose(s0[name], s1[name], atol=1e-6)
    assert not np.allclose(s0[next(iter(shapes))], state[next(iter(shapes))])  # it stepped
