"""Loads and checks a model artifact directory, and notices when a new manifest appears there.

A model that fails any check is refused with :class:`~training.artifact.ArtifactError`: the
artifact's own (manifest schema, featurizer version, feature dim, file names confined to the
directory, sha256 of every file: :func:`training.artifact.check_artifact`, shared with training)
and the serving ones here (graph files, input/output names and shapes, finite thresholds, a trial
run of both graphs at batch 1 and 2). At start the worker exits
non-zero; on a hot swap the old model keeps serving.
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from training.artifact import ArtifactError, check_artifact, read_verified
from training.featurizer import FEATURE_DIM
from worker.core.scoring import Scorer, choose_providers, open_session
from worker.core.state import spec_key

log = logging.getLogger("worker.model")


@dataclass(frozen=True)
class Model:
    """A loaded, checked model: sessions plus what the pipeline reads from the manifest."""

    directory: Path
    manifest: dict[str, Any]
    scorer: Scorer
    fingerprint: str
    state_spec: dict[str, tuple[int, ...]] = field(default_factory=dict)

    @property
    def version(self) -> str:
        """``model_version`` from the manifest (on every alert and in ``clickscore_model_info``)."""
        return str(self.manifest["model_version"])

    @property
    def featurizer_version(self) -> int:
        """The featurizer the model was trained with (== FEATURIZER_VERSION, checked at load)."""
        return int(self.manifest["featurizer_version"])

    @property
    def thresholds(self) -> dict[str, float]:
        """Alert thresholds chosen on validation data (never hard-coded in the worker)."""
        t = self.manifest["thresholds"]
        return {"propensity": float(t["propensity"]), "churn": float(t["churn"])}

    @cached_property  # the sweep reads it every round: derive it once per model
    def churn_seconds(self) -> float:
        """The churn horizon D the model was trained for (the sweep's checkpoints stay under it)."""
        return float(self.manifest["horizons"]["churn_seconds"])

    @cached_property  # read for every event and every swept user: derive it once per model
    def state_key(self) -> str:
        """The model-compatibility id stored with each user's tensors; another one is reset.

        The state shapes plus the step graph's sha256: hidden states computed by other weights
        mean nothing to this graph even when the shapes match (a retrained model). Stored in
        every user's state, so a 16-hex-digit BLAKE2b of both (not the readable 45 characters).
        """
        step_file = self.manifest["graphs"]["step"]["file"]
        weights = str(self.manifest["files"][step_file]["sha256"])
        text = f"{spec_key(self.state_spec)}@{weights}".encode()
        return hashlib.blake2b(text, digest_size=8).hexdigest()


def fingerprint(directory: Path) -> str:
    """A cheap change detector: the manifest's bytes (a new export always writes a new manifest)."""
    try:
        return hashlib.sha256((directory / "manifest.json").read_bytes()).hexdigest()
    except OSError:
        return ""


def directory_signature(directory: Path) -> str:
    """Manifest bytes plus each file's size and mtime: a refused artifact is retried once changed.

    A writer that puts the manifest before the graphs is then picked up when the graphs land.
    """
    parts = [fingerprint(directory)]
    for path in sorted(p for p in directory.iterdir() if p.is_file()):
        stat = path.stat()
        parts.append(f"{path.name}:{stat.st_size}:{stat.st_mtime_ns}")
    return "|".join(parts)


def load_model(directory: Path, providers: list[str] | None = None) -> Model:
    """Load and check the artifact in ``directory`` or raise :class:`ArtifactError`."""
    manifest, manifest_bytes = check_artifact(directory)
    _check_graph_files(manifest)
    spec = {name: tuple(int(d) for d in shape) for name, shape in manifest["state"].items()}
    providers = providers or choose_providers()
    graphs = manifest["graphs"]
    sessions = {}
    for graph in ("step", "churn_head"):
        name = graphs[graph]["file"]
        path = directory / name
        # From the bytes that were hashed, never by path again (a swap after the check).
        graph_bytes = read_verified(directory, name, manifest["files"][name]["sha256"])
        try:
            sessions[graph] = open_session(graph_bytes, providers)
        except Exception as exc:  # onnxruntime raises its own exception types for a bad file
            raise ArtifactError(
                f"{path}: onnxruntime cannot load the {graph} graph ({exc})"
            ) from None
        _check_graph(graph, sessions[graph], graphs[graph], spec)
    scorer = Scorer(sessions["step"], sessions["churn_head"], spec)
    _check_thresholds(manifest)
    _trial_run(scorer, spec)
    return Model(
        directory=directory,
        manifest=manifest,
        scorer=scorer,
        fingerprint=hashlib.sha256(manifest_bytes).hexdigest(),
        state_spec=spec,
    )


def _check_thresholds(manifest: Mapping[str, Any]) -> None:
    # NaN passes the schema's 0..1 bounds (every comparison is false) and then no alert ever fires.
    for name, value in manifest["thresholds"].items():
        if not math.isfinite(float(value)):
            raise ArtifactError(f"threshold {name} is {value}, not a finite number")


def _trial_run(scorer: Scorer, spec: Mapping[str, tuple[int, ...]]) -> None:
    """Both graphs on zeros at batch 1 and 2, before the model may serve.

    A graph that loads but fails or gives non-finite scores when run (a bad export, diverged
    training) would otherwise be found by the first batch, which then fails on every restart.
    """
    for batch in (1, 2):
        state = {name: np.zeros((batch, *shape), dtype=np.float32) for name, shape in spec.items()}
        elapsed = np.zeros(batch, dtype=np.float32)  # (B,)
        try:
            out = scorer.step(np.zeros((batch, FEATURE_DIM), dtype=np.float32), elapsed, state)
            churn = scorer.churn(state, elapsed)
        except Exception as exc:  # onnxruntime raises its own types
            raise ArtifactError(f"trial run at batch {batch} failed: {exc}") from None
        for name, scores in (("p_purchase", out.p_purchase), ("p_churn", out.p_churn),
                             ("churn head", churn)):  # fmt: skip
            if scores.shape != (batch,) or not np.all(np.isfinite(scores)):
                raise ArtifactError(
                    f"trial run at batch {batch}: {name} gave {scores.tolist()}, "
                    f"not {batch} finite scores"
                )


def _check_graph_files(manifest: Mapping[str, Any]) -> None:
    # Only files the manifest lists were checked (confined, sha256): the graphs must be among them.
    for graph in ("step", "churn_head"):
        if manifest["graphs"][graph]["file"] not in manifest["files"]:
            raise ArtifactError(
                f"graph {graph}: file {manifest['graphs'][graph]['file']} not in files"
            )


def _check_graph(
    graph: str,
    session: ort.InferenceSession,
    declared: Mapping[str, Any],
    spec: Mapping[str, tuple[int, ...]],
) -> None:
    actual_in = {i.name: i.shape for i in session.get_inputs()}
    actual_out = {o.name: o.shape for o in session.get_outputs()}
    if graph == "step":
        want_in = {"x", "elapsed", *spec}
        want_out = {"p_purchase", "p_churn", *(f"{n}_out" for n in spec)}
    else:
        want_in = {"elapsed"} | (set(actual_in) & set(spec))
        want_out = {"p_churn"}
        if not set(actual_in) - {"elapsed"} <= set(spec):
            raise ArtifactError(f"graph {graph}: inputs {sorted(actual_in)} not all state tensors")
    for kind, want, actual, decl in (
        ("inputs", want_in, actual_in, declared["inputs"]),
        ("outputs", want_out, actual_out, declared["outputs"]),
    ):
        if set(actual) != want or set(decl) != want:
            raise ArtifactError(
                f"graph {graph}: {kind} {sorted(actual)} (manifest {sorted(decl)}),"
                f" want {sorted(want)}"
            )
        for name in want:
            _check_shape(graph, name, actual[name], decl[name])
    if graph == "step":
        x_shape = actual_in["x"]
        if isinstance(x_shape[-1], int) and x_shape[-1] != FEATURE_DIM:
            raise ArtifactError(f"graph step: x has {x_shape[-1]} features, want {FEATURE_DIM}")
        for name, shape in spec.items():
            _check_shape(graph, name, actual_in[name], [-1, *shape])


def _check_shape(graph: str, name: str, actual: Sequence[Any], declared: Sequence[int]) -> None:
    # Symbolic (str/None) ONNX dims match anything; a fixed dim must equal the manifest's (or -1).
    if len(actual) != len(declared):
        raise ArtifactError(
            f"graph {graph}: {name} has rank {len(actual)}, manifest says {declared}"
        )
    for a, d in zip(actual, declared, strict=True):
        if isinstance(a, int) and d != -1 and a != d:
            raise ArtifactError(
                f"graph {graph}: {name} shape {list(actual)} != manifest {list(declared)}"
            )


class ModelStore:
    """The serving model; swaps in a new one when the manifest changes and passes every check."""

    def __init__(self, directory: Path, model: Model) -> None:
        self.directory = directory
        self.current = model
        self._refused: str | None = None

    @classmethod
    def open(cls, directory: Path) -> ModelStore:
        """Load the model at start; raises :class:`ArtifactError` (the worker exits non-zero)."""
        return cls(directory, load_model(directory))

    def poll(self) -> tuple[str, Model | str] | None:
        """Check for a new manifest: None (no change), ("ok", model) or ("refused", reason).

        A refused artifact is reported once and not retried until a file in the directory changes.
        """
        fp = fingerprint(self.directory)
        if not fp or fp == self.current.fingerprint:
            return None
        signature = directory_signature(self.directory)
        if signature == self._refused:
            return None
        try:
            model = load_model(self.directory, self.current.scorer.step_session.get_providers())
        except ArtifactError as exc:
            self._refused = signature
            return "refused", str(exc)
        self.current = model
        self._refused = None
        return "ok", model
