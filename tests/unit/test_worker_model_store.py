"""Model artifacts: a good one loads, each broken kind is refused, a bad hot swap keeps the old."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.worker_artifacts import copy_artifact, make_artifact, shared_artifact
from training.artifact import ArtifactError, check_artifact
from training.featurizer import FEATURE_DIM, FEATURIZER_VERSION
from worker.core.model_store import ModelStore, load_model


@pytest.fixture
def artifact(tmp_path: Path) -> Path:
    return copy_artifact(shared_artifact(), tmp_path / "model")


def _edit_manifest(directory: Path, change: Callable[[dict[str, Any]], object]) -> None:
    path = directory / "manifest.json"
    manifest = json.loads(path.read_text())
    change(manifest)
    path.write_text(json.dumps(manifest))


def test_good_artifact_loads_with_its_state_spec(artifact: Path) -> None:
    model = load_model(artifact)
    assert model.featurizer_version == FEATURIZER_VERSION
    assert model.state_spec == {"conv_state": (1, FEATURE_DIM), "h_state": (1, 16)}  # K = 2
    assert model.scorer.provider in ("CPUExecutionProvider", "CUDAExecutionProvider")
    assert model.thresholds == {"propensity": 0.5, "churn": 0.5}


def _corrupt_onnx(d: Path) -> None:
    # A corrupt file whose sha256 is re-recorded: only onnxruntime can notice.
    import hashlib

    (d / "model.onnx").write_bytes(b"\x08\x07garbage not a protobuf")
    digest = hashlib.sha256((d / "model.onnx").read_bytes()).hexdigest()
    _edit_manifest(d, lambda m: m["files"]["model.onnx"].update(sha256=digest))


def _nan_weights(d: Path) -> None:
    # A diverged training run: the step graph loads and has the right inputs, but scores NaN.
    import hashlib

    import numpy as np
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(d / "model.onnx")
    for init in graph.graph.initializer:
        array = numpy_helper.to_array(init)
        if array.dtype == np.float32 and array.size > 1:
            init.CopyFrom(numpy_helper.from_array(np.full_like(array, np.nan), init.name))
    onnx.save(graph, d / "model.onnx")
    digest = hashlib.sha256((d / "model.onnx").read_bytes()).hexdigest()
    _edit_manifest(d, lambda m: m["files"]["model.onnx"].update(sha256=digest))


BROKEN: dict[str, tuple[Callable[[Path], object], str]] = {
    "nan threshold": (
        lambda d: _edit_manifest(d, lambda m: m["thresholds"].update(churn=float("nan"))),
        "threshold churn is nan, not a finite number",
    ),
    "nan weights": (_nan_weights, "trial run at batch 1: p_purchase gave"),
    "bad sha256": (lambda d: (d / "churn_head.onnx").write_bytes(b"tampered"), "sha256"),
    "missing file": (lambda d: (d / "model_seq.onnx").unlink(), "listed in the manifest but"),
    "corrupt onnx": (_corrupt_onnx, "onnxruntime cannot load"),
    "featurizer version": (
        lambda d: _edit_manifest(d, lambda m: m.update(featurizer_version=FEATURIZER_VERSION + 1)),
        "featurizer_version",
    ),
    "feature dim": (
        lambda d: _edit_manifest(d, lambda m: m.update(feature_dim=FEATURE_DIM + 1)),
        "feature_dim",
    ),
    "schema": (lambda d: _edit_manifest(d, lambda m: m.pop("thresholds")), "schema"),
    "not json": (lambda d: (d / "manifest.json").write_text("{nope"), "cannot read manifest"),
    "io names": (
        lambda d: _edit_manifest(d, lambda m: m["state"].update(c_state=[1, 4])),
        "inputs",
    ),
    "state shape": (
        lambda d: _edit_manifest(d, lambda m: m["state"].update(h_state=[1, 99])),
        "h_state",
    ),
}


@pytest.mark.parametrize("kind", sorted(BROKEN))
def test_broken_artifact_is_refused_with_a_clear_error(artifact: Path, kind: str) -> None:
    breaker, words = BROKEN[kind]
    breaker(artifact)
    with pytest.raises(ArtifactError, match=words):
        load_model(artifact)


def test_poll_swaps_to_a_new_model_and_refuses_a_broken_one(tmp_path: Path) -> None:
    directory = copy_artifact(shared_artifact(), tmp_path / "model")
    store = ModelStore.open(directory)
    first = store.current.version
    assert store.poll() is None  # nothing changed

    make_artifact(directory, seed=7, model_version="v-new")
    found = store.poll()
    assert found is not None and found[0] == "ok"
    assert store.current.version == "v-new" != first

    (directory / "model.onnx").write_bytes(b"corrupt")  # sha no longer matches the new manifest
    _edit_manifest(directory, lambda m: m.update(model_version="v-broken"))
    found = store.poll()
    assert found is not None and found[0] == "refused" and "sha256" in str(found[1])
    assert store.current.version == "v-new"  # the old model keeps serving
    assert store.poll() is None  # refused once, not re-logged every poll


@pytest.mark.parametrize("how", ["replaced", "linked"])
def test_a_graph_swapped_after_the_hash_check_is_never_served(
    artifact: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    # Other weights of the same shapes, put in place between check_artifact and the load.
    other = copy_artifact(shared_artifact(seed=1), tmp_path / "other") / "model.onnx"
    from worker.core import model_store

    def check_then_swap(directory: Path) -> tuple[dict[str, Any], bytes]:
        checked = check_artifact(directory)
        target = directory / "model.onnx"
        target.unlink()
        if how == "replaced":
            target.write_bytes(other.read_bytes())
        else:
            target.symlink_to(other)
        return checked

    monkeypatch.setattr(model_store, "check_artifact", check_then_swap)
    with pytest.raises(ArtifactError, match=r"sha256|link"):
        load_model(artifact)
