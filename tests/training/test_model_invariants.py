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


VARIANTS = {
    "layers1": {"num_layers": 1, "dropout": 0.1},
    "layers2": {"num_layers": 2},
    "no_side_no_aggregates": {"side_inputs": False, "aggregates": False},
    "standardised": {},  # fitted input mean/std: a fresh conv state's raw zeros are not 0 inside
}


@pytest.fixture(scope="module", params=list(VARIANTS))
def artifact(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    torch.manual_seed(1234 + len(request.param))
    cfg = ModelConfig(conv_channels=8, kernel_size=3, hidden_size=12, **VARIANTS[request.param])
    model = ClickModel(cfg).eval()
    if request.param == "standardised":
        f1 = cfg.feature_dim + 1
        model.set_standardisation(torch.randn(f1), torch.rand(f1) * 2 + 0.1)
    out = tmp_path_factory.mktemp(f"artifact_{request.param}")
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
    wanted = manifest["graphs"]["churn_head"]["inputs"]
    (p_head,) = head.run(
        None, {k: v for k, v in state.items() if k in wanted} | {"elapsed": elapsed[:, -1]}
    )
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
    feeds = {"h_state": hid, "conv_state": conv, "elapsed": elapsed[:, 2]}
    wanted = manifest["graphs"]["churn_head"]["inputs"]
    (onnx_head,) = head.run(None, {k: v for k, v in feeds.items() if k in wanted})
    with torch.no_grad():
        torch_head = model.churn(*(torch.from_numpy(a) for a in (hid, elapsed[:, 2], conv)))
    np.testing.assert_allclose(onnx_head, torch_head.numpy(), atol=TOL, rtol=0)


def test_default_config_matches_the_featurizer_and_state_fits_in_1_kib() -> None:
    """Featurizer context after a long history + the default preset's tensors <= 1 KiB."""
    import msgspec

    from schemas.event import Event
    from training.featurizer import AGG_OFFSET, FEATURE_DIM, FeatureContext, featurize
    from training.train import PRESETS

    assert (ModelConfig().feature_dim, ModelConfig().aggregate_from) == (FEATURE_DIM, AGG_OFFSET)
    ctx = FeatureContext()
    for i in range(500):
        kind = ("view", "add_to_cart", "purchase", "wishlist")[i % 4]
        event = Event(
            event_id=f"e{i}",
            user_id="user-0123456789",
            event_type=kind,
            ts_ms=1_700_000_000_000 + 61_000 * i,
            item_id=f"item-{i * 7919}",
            category_id=f"cat-{i % 17}",
            session_id=f"s{i // 25}",
            price=19.99,
        )
        _, ctx = featurize(event, ctx)
    ctx_bytes = len(msgspec.msgpack.encode(ctx))
    for name, preset in PRESETS.items():
        m = preset.model
        tensors = 4 * ((m.kernel_size - 1) * FEATURE_DIM + m.num_layers * m.hidden_size)
        assert ctx_bytes + tensors <= 1024, (name, ctx_bytes, tensors)


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
