"""Write a model artifact directory: three ONNX graphs and manifest.json, per docs/contracts.md.

``python -m training.export --out DIR`` writes an artifact from a freshly initialised (untrained)
model, so the worker can be built and tested before a trained model exists.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch

from schemas import validate
from training.artifact import ArtifactError as ArtifactError  # re-exported: the CLI catches it
from training.artifact import check_artifact
from training.featurizer import FEATURE_DIM, FEATURIZER_VERSION
from training.model import ChurnHeadGraph, ClickModel, ModelConfig, StepGraph

OPSET = 17
STEP_FILE, SEQ_FILE, CHURN_FILE, MANIFEST_FILE = (
    "model.onnx",
    "model_seq.onnx",
    "churn_head.onnx",
    "manifest.json",
)


def graph_specs(config: ModelConfig) -> dict[str, dict[str, Any]]:
    """The manifest's ``graphs`` block: names and shapes (-1 = dynamic) of every graph's I/O."""
    k1, f, n_layers, h = (
        config.kernel_size - 1,
        config.feature_dim,
        config.num_layers,
        config.hidden_size,
    )
    return {
        "step": {
            "file": STEP_FILE,
            "inputs": {
                "x": [-1, f],
                "elapsed": [-1],
                "conv_state": [-1, k1, f],
                "h_state": [-1, n_layers, h],
            },
            "outputs": {
                "p_purchase": [-1],
                "p_churn": [-1],
                "conv_state_out": [-1, k1, f],
                "h_state_out": [-1, n_layers, h],
            },
        },
        "sequence": {
            "file": SEQ_FILE,
            "inputs": {"x": [-1, -1, f], "elapsed": [-1, -1]},
            "outputs": {"p_purchase": [-1, -1], "p_churn": [-1, -1]},
        },
        "churn_head": {
            "file": CHURN_FILE,
            # The last feature row (in conv_state) feeds the churn head only with side inputs.
            "inputs": {
                "h_state": [-1, n_layers, h],
                "elapsed": [-1],
                **({"conv_state": [-1, k1, f]} if config.side_inputs else {}),
            },
            "outputs": {"p_churn": [-1]},
        },
    }


def export_onnx(model: ClickModel, out_dir: Path) -> None:
    """Export the step, sequence and churn-head graphs of ``model`` into ``out_dir``."""
    model = model.eval()
    specs = graph_specs(model.config)
    b, t = 2, 5  # example sizes only; every batch/time axis is exported as dynamic
    conv0, h0 = model.initial_state(b)
    f = model.config.feature_dim
    jobs: list[tuple[torch.nn.Module, tuple[torch.Tensor, ...], str]] = [
        # Wrappers in eval mode: the exporter restores each module's mode after export, and a
        # wrapper left in training mode would switch the model's dropout back on.
        (StepGraph(model).eval(), (torch.randn(b, f), torch.zeros(b), conv0, h0), "step"),
        (model, (torch.randn(b, t, f), torch.zeros(b, t)), "sequence"),
        (ChurnHeadGraph(model).eval(), (h0, torch.zeros(b), conv0), "churn_head"),
    ]
    for module, args, name in jobs:
        spec = specs[name]
        dynamic = {
            io: {i: ("batch" if i == 0 else "time") for i, d in enumerate(shape) if d == -1}
            for io, shape in {**spec["inputs"], **spec["outputs"]}.items()
        }
        with warnings.catch_warnings(), torch.no_grad():
            # The legacy (TorchScript) exporter handles nn.GRU; silence its deprecation notes.
            warnings.simplefilter("ignore")
            torch.onnx.export(
                module,
                args,
                str(out_dir / spec["file"]),
                input_names=list(spec["inputs"]),
                output_names=list(spec["outputs"]),
                dynamic_axes=dynamic,
                opset_version=OPSET,
                dynamo=False,
            )


def file_digest(path: Path) -> dict[str, Any]:
    """``{sha256, bytes}`` of one file."""
    data = path.read_bytes()
    return {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}


def write_artifact(
    model: ClickModel,
    out_dir: str | Path,
    *,
    propensity_seconds: float,
    churn_seconds: float,
    thresholds: dict[str, float],
    threshold_rule: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
    training_data: dict[str, Any] | None = None,
    report_files: dict[str, dict[str, Any]] | None = None,
    model_version: str | None = None,
    reference: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Export the graphs, then write manifest.json last (atomically) so a watcher never sees half.

    ``files`` lists the graphs the worker loads; ``report_files`` (already hashed) go beside it.
    Returns the manifest, already validated against ``schemas/manifest.schema.json``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    export_onnx(model, out)
    files = {name: file_digest(out / name) for name in (STEP_FILE, SEQ_FILE, CHURN_FILE)}
    created = datetime.now(UTC)
    if model_version is None:
        model_version = f"cnnrnn-{created:%Y%m%dT%H%M%SZ}-{files[STEP_FILE]['sha256'][:8]}"
    cfg = model.config
    manifest: dict[str, Any] = {
        "manifest_version": 1,
        "model_version": model_version,
        "created_at": created.isoformat(timespec="seconds").replace("+00:00", "Z"),
        "featurizer_version": FEATURIZER_VERSION,
        "feature_dim": cfg.feature_dim,
        "files": files,
        "graphs": graph_specs(cfg),
        "state": {
            "conv_state": [cfg.kernel_size - 1, cfg.feature_dim],
            "h_state": [cfg.num_layers, cfg.hidden_size],
        },
        "architecture": cfg.to_dict(),
        "opset": OPSET,
        "horizons": {"propensity_seconds": propensity_seconds, "churn_seconds": churn_seconds},
        "thresholds": {
            "propensity": float(thresholds["propensity"]),
            "churn": float(thresholds["churn"]),
        },
        "threshold_rule": threshold_rule or {"rule": "fixed", "note": "not chosen on data"},
        "metrics": metrics or {},
        "training_data": training_data or {},
    }
    if report_files:
        manifest["report_files"] = report_files
    if reference:
        manifest["reference"] = reference  # training/reference.py: the worker's drift baseline
    validate("manifest", manifest)
    tmp = out / (MANIFEST_FILE + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=2, sort_keys=False) + "\n", "utf-8")
    os.replace(tmp, out / MANIFEST_FILE)
    return manifest


def read_manifest(model_dir: str | Path) -> dict[str, Any]:
    """Load an artifact's manifest, checked by training.artifact (schema, versions, sha256)."""
    manifest, _raw = check_artifact(Path(model_dir))
    return manifest


def main(argv: list[str] | None = None) -> int:
    """Write an artifact from an untrained model (random weights, fixed seed)."""
    parser = argparse.ArgumentParser(
        prog="python -m training.export",
        description="Write an artifact directory from an UNTRAINED model (for wiring and tests).",
    )
    parser.add_argument("--out", required=True, help="artifact directory to write")
    parser.add_argument("--seed", type=int, default=0, help="torch seed for the random weights")
    parser.add_argument("--hidden", type=int, default=ModelConfig.hidden_size, help="GRU units")
    parser.add_argument("--propensity-seconds", type=float, default=86_400.0)
    parser.add_argument("--churn-seconds", type=float, default=259_200.0)
    args = parser.parse_args(argv)
    torch.manual_seed(args.seed)
    model = ClickModel(ModelConfig(feature_dim=FEATURE_DIM, hidden_size=args.hidden))
    manifest = write_artifact(
        model,
        args.out,
        propensity_seconds=args.propensity_seconds,
        churn_seconds=args.churn_seconds,
        thresholds={"propensity": 0.5, "churn": 0.5},
        threshold_rule={"rule": "fixed", "note": "untrained model; weights are random"},
    )
    print(f"wrote {args.out} model_version={manifest['model_version']}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
