"""Invariants 1 and 2: the step graph stepped event by event equals the sequence graph, and the
ONNX graphs equal PyTorch, for random weights, random sequences and batch > 1."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from schemas import validate
from training.export import ArtifactError, read_manifest, write_artifact
from training.model import ClickModel, ModelConfig

TOL = 1e-5


@pytest.fixture(scope="module", params=[1, 2], ids=["layers1", "layers2"])
def artifact(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    torch.manual_seed(1234 + request.param)
    cfg = ModelConfig(conv_channels=8, kernel_size=3, hidden_size=12, num_layers=request.param)
    model = ClickModel(cfg).eval()
    out = tmp_path_factory.mktemp(f"artifact{request.param}")
    manifest = write_artifact(
        model,
        out,
        propensity_seconds=3600,
        churn_seconds=7200,
        thresholds={"propensity": 0.4, "churn": 0.6},
    )
    return model, out, manifest


def _session(path: Path) -> ort.InferenceSession:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def _random_inputs(
    rng: np.random.Generator, b: int, t: int, f: int
) -> tuple[np.ndarray, np.ndarray]:
    x = rng.normal(size=(b, t, f)).astype(np.float32)  # (B, T, F)
    elapsed = rng.exponential(3600.0, size=(b, t)).astype(np.float32)  # (B, T) seconds
    elapsed[:, ::2] = 0.0  # scoring an event uses elapsed = 0; keep both kinds
    return x, elapsed


def test_step_graph_equals_sequence_graph(artifact) -> None:
    model, out, manifest = artifact
    rng = np.random.default_rng(7)
    b, t, f = 4, 9, model.config.feature_dim
    x, elapsed = _random_inputs(rng, b, t, f)
    seq = _session(out / manifest["graphs"]["sequence"]["file"])
    p_seq, c_seq = seq.run(["p_purchase", "p_churn"], {"x": x, "elapsed": elapsed})  # (B, T) each
    step = _session(out / manifest["graphs"]["step"]["file"])
    state = {name: np.zeros((b, *shape), np.float32) for name, shape in manifest["state"].items()}
    for i in range(t):
        outs = step.run(None, {"x": x[:, i], "elapsed": elapsed[:, i], **state})
        named = dict(zip([o.name for o in step.get_outputs()], outs, strict=True))
        np.testing.assert_allclose(named["p_purchase"], p_seq[:, i], atol=TOL, rtol=0)
        np.testing.assert_allclose(named["p_churn"], c_seq[:, i], atol=TOL, rtol=0)
        state = {name: named[name + "_out"] for name in state}
    # The churn head on the final stored state equals the step graph's churn at that elapsed time.
    head = _session(out / manifest["graphs"]["churn_head"]["file"])
    (p_head,) = head.run(None, {"h_state": state["h_state"], "elapsed": elapsed[:, -1]})
    np.testing.assert_allclose(p_head, c_seq[:, -1], atol=TOL, rtol=0)


def test_onnx_equals_pytorch(artifact) -> None:
    model, out, manifest = artifact
    rng = np.random.default_rng(11)
    b, t, f = 3, 6, model.config.feature_dim
    x, elapsed = _random_inputs(rng, b, t, f)
    seq = _session(out / "model_seq.onnx")
    onnx_p, onnx_c = seq.run(["p_purchase", "p_churn"], {"x": x, "elapsed": elapsed})
    with torch.no_grad():
        torch_p, torch_c = model(torch.from_numpy(x), torch.from_numpy(elapsed))
    np.testing.assert_allclose(onnx_p, torch_p.numpy(), atol=TOL, rtol=0)
    np.testing.assert_allclose(onnx_c, torch_c.numpy(), atol=TOL, rtol=0)

    # Step graph from a non-zero state (a user mid-history), not only from zeros.
    conv = rng.normal(size=(b, *manifest["state"]["conv_state"])).astype(np.float32)
    hid = np.tanh(rng.normal(size=(b, *manifest["state"]["h_state"]))).astype(np.float32)
    step = _session(out / "model.onnx")
    feeds = {"x": x[:, 0], "elapsed": elapsed[:, 1], "conv_state": conv, "h_state": hid}
    onnx_out = step.run(["p_purchase", "p_churn", "conv_state_out", "h_state_out"], feeds)
    with torch.no_grad():
        torch_out = model.step(
            *(torch.from_numpy(feeds[k]) for k in ("x", "elapsed", "conv_state", "h_state"))
        )
    for got, want in zip(onnx_out, torch_out, strict=True):
        np.testing.assert_allclose(got, want.numpy(), atol=TOL, rtol=0)

    head = _session(out / "churn_head.onnx")
    (onnx_head,) = head.run(None, {"h_state": hid, "elapsed": elapsed[:, 2]})
    with torch.no_grad():
        torch_head = model.churn(torch.from_numpy(hid), torch.from_numpy(elapsed[:, 2]))
    np.testing.assert_allclose(onnx_head, torch_head.numpy(), atol=TOL, rtol=0)


def test_graph_io_matches_manifest(artifact) -> None:
    _, out, manifest = artifact
    for spec in manifest["graphs"].values():
        sess = _session(out / spec["file"])
        assert {i.name: len(i.shape) for i in sess.get_inputs()} == {
            k: len(v) for k, v in spec["inputs"].items()
        }
        assert {o.name: len(o.shape) for o in sess.get_outputs()} == {
            k: len(v) for k, v in spec["outputs"].items()
        }
    step_inputs = set(manifest["graphs"]["step"]["inputs"])
    step_outputs = set(manifest["graphs"]["step"]["outputs"])
    for name in manifest["state"]:
        assert name in step_inputs and name + "_out" in step_outputs


def test_manifest_validates_and_files_are_checked(artifact) -> None:
    _, out, manifest = artifact
    on_disk = json.loads((out / "manifest.json").read_text())
    validate("manifest", on_disk)
    assert on_disk == manifest
    assert read_manifest(out)["model_version"] == manifest["model_version"]


def test_tampered_artifact_is_refused(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = ClickModel(ModelConfig(conv_channels=4, hidden_size=4))
    write_artifact(
        model,
        tmp_path,
        propensity_seconds=60,
        churn_seconds=60,
        thresholds={"propensity": 0.5, "churn": 0.5},
    )
    with (tmp_path / "churn_head.onnx").open("ab") as fh:
        fh.write(b"\0")
    with pytest.raises(ArtifactError, match="sha256"):
        read_manifest(tmp_path)
