"""The network's start: standardised inputs from training rows, each head's wide path as the
logistic regression (the network's logits equal it before training), and early stopping that
keeps that start unless validation loss improves."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from training.labels import TRAIN, VALID, LabelledData, build_labels
from training.model import ClickModel
from training.sequences import augment, windows_for
from training.simulate import SimConfig, simulate
from training.train import PRESETS, fit, validation_loss
from training.warm_start import fit_standardisation, start_from_linear

CFG = PRESETS["tiny"]


@pytest.fixture(scope="module")
def data() -> LabelledData:
    events = simulate(SimConfig(users=80, days=6, seed=3))
    return build_labels(events, propensity_seconds=86_400, churn_seconds=86_400, seed=0)


def _standardised(data: LabelledData) -> ClickModel:
    torch.manual_seed(0)
    model = ClickModel(CFG.model)
    rows = augment(data.users, data.churn_ms, data.split.end_ms, np.random.default_rng(0))
    fit_standardisation(model, data.users, rows)
    return model


def test_inputs_are_standardised_on_training_rows(data: LabelledData) -> None:
    model = _standardised(data)
    x = np.concatenate([u.x[u.split == TRAIN] for u in data.users])
    with torch.no_grad():
        seen = model.seen_rows(torch.from_numpy(x)).numpy()
    varies = x.std(axis=0) > 1e-6
    assert varies.sum() > 10
    np.testing.assert_allclose(seen.mean(axis=0), 0.0, atol=1e-4)
    np.testing.assert_allclose(seen[:, varies].std(axis=0), 1.0, atol=1e-3)


def test_network_starts_as_the_logistic_regression(data: LabelledData) -> None:
    model = _standardised(data)
    chosen = start_from_linear(model, data.users, 0, data.churn_ms, data.split.end_ms, (0.1,))
    assert chosen["prop"]["C"] == 0.1
    # The same model fitted independently on the raw propensity rows.
    keep = [u.m_prop & (u.split == TRAIN) for u in data.users]
    x = np.concatenate([u.x[k] for u, k in zip(data.users, keep, strict=True)])
    y = np.concatenate([u.y_prop[k] for u, k in zip(data.users, keep, strict=True)])
    linear = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=1000)).fit(x, y)
    valid = np.concatenate([u.x[u.split == VALID] for u in data.users])  # (N, F)
    with torch.no_grad():
        lp, _ = model.logits(torch.from_numpy(valid)[None], torch.zeros(1, len(valid)))
    np.testing.assert_allclose(lp[0].numpy(), linear.decision_function(valid), atol=2e-3)


def test_training_keeps_the_linear_start_unless_validation_improves(data: LabelledData) -> None:
    # A learning rate this large wrecks the network in one epoch: early stopping must hand back
    # the start, whose validation loss the history's epoch 0 records.
    cfg = dataclasses.replace(CFG, epochs=1, lr=5.0, linear_grid=(0.1,))
    model, history = fit(data, cfg, progress=False)
    assert history[0]["epoch"] == 0 and history[1]["val_loss"] > history[0]["val_loss"]
    val_w = windows_for(data.users, VALID, cfg.max_len, cfg.burn_in)
    assert validation_loss(model, data, val_w) == pytest.approx(history[0]["val_loss"], abs=1e-4)
