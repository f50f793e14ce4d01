"""Drift: PSI, the sliding window, the manifest's reference read by the worker, the gauges."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

import schemas
from tests.worker_artifacts import shared_artifact
from training.reference import histogram, reference
from worker.core.drift import MIN_COUNT, DriftMonitor, Reference, Window, psi
from worker.core.model_store import ModelStore, load_model
from worker.metrics import Metrics
from worker.runtime.context import Runtime
from worker.settings import load_settings


def test_psi_of_known_fractions() -> None:
    assert psi(np.array([0.5, 0.5]), np.array([0.5, 0.5])) == 0.0
    want = (0.9 - 0.5) * np.log(0.9 / 0.5) + (0.1 - 0.5) * np.log(0.1 / 0.5)
    assert psi(np.array([0.5, 0.5]), np.array([0.9, 0.1])) == pytest.approx(want)
    assert np.isfinite(psi(np.array([0.5, 0.5]), np.array([1.0, 0.0])))  # empty bin: floored


def test_window_counts_are_the_histogram_of_the_last_values() -> None:
    rng = np.random.default_rng(0)
    ref = Reference(np.array([-1.0, 0.0, 1.0]), np.full(4, 0.25))
    window = Window(ref, size=300)
    seen: list[float] = []
    for n in (0, 1, 7, 250, 299, 300, 301, 1000, 13):
        values = rng.normal(size=n)
        window.add(values)
        seen += values.tolist()
        want = np.bincount(ref.bins(np.array(seen[-300:])), minlength=4)
        assert window.counts.tolist() == want.tolist()
        assert window.filled == min(300, len(seen))


def test_no_psi_until_the_window_holds_enough_values() -> None:
    window = Window(Reference(np.array([0.5]), np.array([0.5, 0.5])), size=1000)
    window.add(np.full(MIN_COUNT - 1, 0.9))
    assert window.psi() is None
    window.add(np.array([0.9]))
    assert window.psi() is not None and window.psi() > 0.2


def test_the_worker_bins_as_training_does() -> None:
    """Values equal to the training reference give PSI 0: same edges, same side of each edge."""
    rng = np.random.default_rng(1)
    values = np.r_[np.zeros(300), np.round(rng.exponential(size=700), 2)]  # ties, as log features
    hist = histogram(values)
    window = Window(Reference(np.array(hist["edges"]), np.array(hist["fractions"])), 2000)
    window.add(values)
    assert window.psi() == pytest.approx(0.0, abs=1e-8)


def _manifest(rng: np.random.Generator) -> dict:
    scores = {"propensity": rng.beta(1, 8, 5000), "churn": rng.beta(4, 2, 5000)}
    x = rng.random((5000, 58)).astype(np.float32)
    manifest = schemas.examples("manifest")["manifest.gru.json"]
    return {**manifest, "reference": reference(scores, x, "test")}


def test_monitor_reads_the_manifest_and_sees_a_shift_in_one_head() -> None:
    rng = np.random.default_rng(2)
    manifest = _manifest(rng)
    schemas.validate("manifest", manifest)
    monitor = DriftMonitor(manifest, size=2000)
    x = rng.random((2000, 58)).astype(np.float32)
    monitor.observe([(x, rng.beta(1, 8, 2000), rng.beta(4, 2, 2000) * 0.5)])  # churn shifted
    got = monitor.score_psi()
    assert got["propensity"] < 0.05 and got["churn"] > 0.2
    assert set(monitor.input_psi()) == set(manifest["reference"]["inputs"])
    assert max(monitor.input_psi().values()) < 0.05


def test_a_manifest_without_reference_gives_no_psi() -> None:
    monitor = DriftMonitor(schemas.examples("manifest")["manifest.gru.json"], size=500)
    monitor.observe([(np.zeros((500, 58)), np.zeros(500), np.zeros(500))])
    assert monitor.score_psi() == {} and monitor.input_psi() == {}


def test_gauges_carry_only_the_psis_the_monitor_has() -> None:
    metrics = Metrics.create(CollectorRegistry())
    metrics.set_drift({"propensity": 0.3, "churn": 0.01}, {"log_gap": 0.05})
    metrics.set_drift({"propensity": 0.25}, {})
    text = metrics.exposition().decode()
    assert 'clickscore_score_psi{head="propensity"} 0.25' in text
    assert 'head="churn"' not in text and "clickscore_input_psi{" not in text


def test_histogram_gauges_show_live_beside_reference() -> None:
    rng = np.random.default_rng(3)
    monitor = DriftMonitor(_manifest(rng), size=1000)
    monitor.observe([(np.zeros((1000, 58)), rng.beta(1, 8, 1000), np.full(1000, 0.99))])
    metrics = Metrics.create(CollectorRegistry())
    metrics.set_drift(monitor.score_psi(), monitor.input_psi(), monitor.score_histograms())

    def get(bin_: str, source: str) -> float | None:
        labels = {"head": "churn", "bin": bin_, "source": source}
        return metrics.registry.get_sample_value("clickscore_score_bin_fraction", labels)

    live = [get(f"{i:02d}", "live") for i in range(10)]
    assert live[-1] == 1.0 and sum(live) == pytest.approx(1.0)  # every churn score in the top bin
    ref = get("09", "reference")
    assert ref == pytest.approx(0.1, abs=0.01)


def test_a_new_model_starts_empty_windows(tmp_path: Path) -> None:
    env = {"MODEL_DIR": str(shared_artifact()), "DATA_DIR": str(tmp_path), "DRIFT_WINDOW": "300"}
    settings = load_settings({f"CLICKSCORE_{k}": v for k, v in env.items()})
    rng = np.random.default_rng(4)
    base = load_model(shared_artifact())
    old = dataclasses.replace(base, manifest=_manifest(rng), fingerprint="a")
    rt = Runtime(settings, ModelStore(tmp_path, old), Metrics.create(CollectorRegistry()))
    monitor = rt.drift(old)
    monitor.observe([(np.zeros((250, 58)), np.zeros(250), np.zeros(250))])
    assert rt.drift(old) is monitor and len(monitor.scores["churn"].ring) == 300
    new = dataclasses.replace(old, fingerprint="b")
    assert rt.drift(new) is not monitor and rt.drift(new).score_psi() == {}
