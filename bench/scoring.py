"""Scoring micro-benchmarks (no Kafka): is the step graph as cheap as the design says?

Cases, all in one run so their ratios are fair:
- step graph, batch sweep 1..1024 (onnxruntime, one thread on CPU);
- the naive alternative: rescore the last W events with the sequence graph on every event;
- the step graph with states from W-event histories (flat in history length?);
- onnxruntime vs PyTorch eager, same architecture;
- fp32 vs int8 when the artifact carries a quantized step graph (or the bench can make one).
"""

from __future__ import annotations

import argparse
import logging
import tempfile
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from bench.report import Result
from bench.timing import seconds_per_call

FULL_BATCHES = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
REFERENCE_BATCH = 256  # the worker's default CLICKSCORE_BATCH_SIZE


class BenchError(RuntimeError):
    """A benchmark that cannot run as asked (e.g. --device cuda without a CUDA provider)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``python -m bench scoring``."""
    parser.add_argument(
        "--model", type=Path, default=None, help="artifact dir (default: untrained)"
    )
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads")
    parser.add_argument("--min-time", type=float, default=0.5, help="seconds timed per case")
    parser.add_argument("--tiny", action="store_true", help="seconds-long smoke configuration")


def run(args: argparse.Namespace) -> Result:
    """Measure every case; return the result (the caller writes it)."""
    providers = _providers(args.device)
    batches = (1, 16) if args.tiny else FULL_BATCHES
    windows = (4, 8) if args.tiny else (16, 64, 256)
    ref_batch = 16 if args.tiny else REFERENCE_BATCH
    min_time = 0.01 if args.tiny else args.min_time
    with tempfile.TemporaryDirectory() as tmp:
        model_dir, manifest, trained = _artifact(args.model, Path(tmp))
        result = Result(
            "scoring",
            {
                "device": args.device,
                "providers": providers,
                "threads": args.threads,
                "model_version": manifest["model_version"],
                "trained": trained,
                "architecture": manifest.get("architecture", {}),
                "batches": list(batches),
                "windows": list(windows),
                "reference_batch": ref_batch,
                "min_time_s": min_time,
            },
        )
        step = _session(model_dir / manifest["graphs"]["step"]["file"], providers, args.threads)
        seq = _session(model_dir / manifest["graphs"]["sequence"]["file"], providers, args.threads)
        f = int(manifest["feature_dim"])
        states = {name: list(shape) for name, shape in manifest["state"].items()}
        step_cost = _step_sweep(result, step, f, states, batches, min_time)
        _naive(result, seq, step, f, states, windows, ref_batch, min_time, step_cost[ref_batch])
        _torch_eager(result, manifest, step, f, states, (1, ref_batch), min_time, args.device)
        _int8(result, model_dir, manifest, f, states, ref_batch, min_time, providers, args.threads)
    if not trained:
        result.notes.append(
            "untrained weights (exported by the bench): speed does not depend on them"
        )
    return result


def _providers(device: str) -> list[str]:
    available = ort.get_available_providers()
    if device == "cuda":
        if "CUDAExecutionProvider" not in available:
            raise BenchError(
                "--device cuda: onnxruntime has no CUDAExecutionProvider here "
                f"(available: {', '.join(available)}); install onnxruntime-gpu on a CUDA machine"
            )
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


def _artifact(model: Path | None, tmp: Path) -> tuple[Path, dict[str, Any], bool]:
    """The artifact to time: ``--model`` as given, else a freshly initialised export."""
    from training.export import read_manifest, write_artifact
    from training.model import ClickModel, ModelConfig

    if model is not None:
        return model, read_manifest(model), True
    manifest = write_artifact(
        ClickModel(ModelConfig()).eval(),
        tmp,
        propensity_seconds=1800.0,
        churn_seconds=3600.0,
        thresholds={"propensity": 0.5, "churn": 0.5},
        model_version="bench-untrained",
    )
    return tmp, manifest, False


def _session(path: Path, providers: list[str], threads: int) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return ort.InferenceSession(str(path), options, providers=providers)


def _step_feed(batch: int, f: int, states: dict[str, list[int]], seed: int = 0) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    feed: dict[str, Any] = {
        "x": rng.random((batch, f), dtype=np.float32),  # (B, F)
        "elapsed": np.zeros(batch, dtype=np.float32),  # (B,)
    }
    for name, shape in states.items():
        feed[name] = np.zeros((batch, *shape), dtype=np.float32)  # (B, ...state shape)
    return feed


def _step_sweep(
    result: Result,
    step: ort.InferenceSession,
    f: int,
    states: dict[str, list[int]],
    batches: tuple[int, ...],
    min_time: float,
) -> dict[int, float]:
    """Per-event cost of the step graph at each batch size; returns seconds per event by batch."""
    cost: dict[int, float] = {}
    for b in batches:
        feed = _step_feed(b, f, states)
        per_call = seconds_per_call(partial(step.run, None, feed), min_time)
        cost[b] = per_call / b
        result.add("step graph", "per_event", cost[b] * 1e6, "us", batch=b)
        result.add("step graph", "throughput", b / per_call, "events/s", batch=b)
    return cost


def _naive(
    result: Result,
    seq: ort.InferenceSession,
    step: ort.InferenceSession,
    f: int,
    states: dict[str, list[int]],
    windows: tuple[int, ...],
    batch: int,
    min_time: float,
    step_per_event: float,
) -> None:
    """Rescore the last W events with the sequence graph per event, vs the step graph after W."""
    rng = np.random.default_rng(1)
    for w in windows:
        feed = {
            "x": rng.random((batch, w, f), dtype=np.float32),  # (B, W, F)
            "elapsed": np.zeros((batch, w), dtype=np.float32),  # (B, W)
        }
        per_event = seconds_per_call(partial(seq.run, None, feed), min_time) / batch
        result.add("naive rescore", "per_event", per_event * 1e6, "us", window=w, batch=batch)
        result.ratios[f"naive_w{w}_over_step_b{batch}"] = per_event / step_per_event
        # The step graph with a state that has seen W events: the cost should not move with W.
        sfeed = _step_feed(batch, f, states)
        outs = [name + "_out" for name in states]
        for t in range(w):
            new = step.run(outs, {**sfeed, "x": feed["x"][:, t, :]})
            sfeed.update(zip(states, new, strict=True))
        stepped = seconds_per_call(partial(step.run, None, sfeed), min_time) / batch
        result.add(
            "step graph after W events", "per_event", stepped * 1e6, "us", window=w, batch=batch
        )


def _torch_eager(
    result: Result,
    manifest: dict[str, Any],
    step: ort.InferenceSession,
    f: int,
    states: dict[str, list[int]],
    batches: tuple[int, ...],
    min_time: float,
    device: str,
) -> None:
    """The same step computation in PyTorch eager (same shapes; weights random)."""
    import torch

    from training.model import ClickModel, ModelConfig

    arch = {k: v for k, v in manifest.get("architecture", {}).items() if k != "cell"}
    torch.set_num_threads(1)
    model = ClickModel(ModelConfig(**arch)).eval().to(device)
    for b in batches:
        feed = _step_feed(b, f, states)
        ort_per_call = seconds_per_call(partial(step.run, None, feed), min_time)
        tensors = [torch.from_numpy(feed[k]).to(device) for k in ("x", "elapsed", *states)]

        def call(tensors: list[torch.Tensor] = tensors) -> None:
            with torch.inference_mode():
                out = model.step(*tensors)
                if device == "cuda":
                    out[0].cpu()  # include the copy back, as onnxruntime's numpy outputs do

        torch_per_call = seconds_per_call(call, min_time)
        result.add("pytorch eager step", "per_event", torch_per_call / b * 1e6, "us", batch=b)
        result.add("onnxruntime step", "per_event", ort_per_call / b * 1e6, "us", batch=b)
        result.ratios[f"torch_eager_over_onnxruntime_b{b}"] = torch_per_call / ort_per_call


def _int8(
    result: Result,
    model_dir: Path,
    manifest: dict[str, Any],
    f: int,
    states: dict[str, list[int]],
    batch: int,
    min_time: float,
    providers: list[str],
    threads: int,
) -> None:
    """fp32 vs int8 step graph: the artifact's quantized file, else a dynamic quantization."""
    quantized = manifest.get("quantized") or {}
    path = model_dir / quantized["file"] if "file" in quantized else None
    source = "artifact"
    if path is None or not path.is_file():
        try:
            from onnxruntime.quantization import QuantType, quantize_dynamic

            path = model_dir / "bench_step_int8.onnx"
            logging.disable(logging.WARNING)  # its "consider pre-processing" advice, every run
            try:
                quantize_dynamic(
                    model_dir / manifest["graphs"]["step"]["file"],
                    path,
                    weight_type=QuantType.QInt8,
                )
            finally:
                logging.disable(logging.NOTSET)
            source = "quantize_dynamic by the bench"
        except Exception as exc:  # some opsets/ops do not quantize: say so, keep the other numbers
            result.notes.append(f"int8: no quantized step graph ({type(exc).__name__}: {exc})")
            return
    feed = _step_feed(batch, f, states)
    fp32 = _session(model_dir / manifest["graphs"]["step"]["file"], providers, threads)
    int8 = _session(path, providers, threads)
    t32 = seconds_per_call(lambda: fp32.run(None, feed), min_time) / batch
    t8 = seconds_per_call(lambda: int8.run(None, feed), min_time) / batch
    diff = float(np.max(np.abs(fp32.run(None, feed)[0] - int8.run(None, feed)[0])))
    result.add("step graph fp32", "per_event", t32 * 1e6, "us", batch=batch)
    result.add("step graph int8", "per_event", t8 * 1e6, "us", batch=batch, source=source)
    result.add("step graph int8", "max_abs_diff_p_purchase", diff, "probability", batch=batch)
    result.ratios[f"fp32_over_int8_b{batch}"] = t32 / t8
