"""The artifact contract: the one check of an artifact directory, and the step-scorer protocol.

The check is used by the worker's model store and by training's reader.

``manifest.json`` must parse and match schemas/manifest.schema.json, name the featurizer version
and feature width this code computes, and list files that are plain names inside the directory
(no absolute path, no "..", no sub-directory, no link), each a regular file whose sha256 matches.
A manifest is data from elsewhere: a name like ``../../etc/passwd`` must not make us hash, or
hand onnxruntime, a file outside the artifact. Import-light (json, hashlib, numpy, the schema,
the featurizer): the worker imports it without torch.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path, PurePosixPath
from typing import Any, Protocol

import numpy as np

import schemas
from training.featurizer import FEATURE_DIM, FEATURIZER_VERSION

MANIFEST_FILE = "manifest.json"
CHUNK_BYTES = 1 << 20


class ArtifactError(ValueError):
    """The artifact cannot be used; the message names the file and the check that failed."""


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file, read in chunks (graphs can be large)."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def check_artifact(directory: Path) -> tuple[dict[str, Any], bytes]:
    """The checked manifest and its raw bytes, or :class:`ArtifactError` naming the check."""
    path = directory / MANIFEST_FILE
    if not path.is_file():
        raise ArtifactError(f"{path}: no manifest.json (is it an artifact directory?)")
    try:
        raw = path.read_bytes()
        manifest: dict[str, Any] = json.loads(raw)
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"{path}: cannot read manifest ({exc})") from None
    try:
        schemas.validate("manifest", manifest)
    except schemas.SchemaError as exc:
        raise ArtifactError(f"{path}: manifest does not match its schema: {exc}") from None
    check_versions(manifest)
    for name, meta in manifest["files"].items():
        file = confined(directory, name)
        if sha256_of(file) != meta["sha256"]:
            raise ArtifactError(f"{file}: sha256 does not match the manifest")
    return manifest, raw


def read_verified(directory: Path, name: str, sha256: str) -> bytes:
    """The bytes of a listed file, checked against ``sha256`` after they were read.

    The caller hands these bytes, never the path, to onnxruntime: a file swapped or re-linked
    after :func:`check_artifact` hashed it then cannot change what is loaded. ``O_NOFOLLOW``
    refuses a link that appeared since :func:`confined` looked.
    """
    path = confined(directory, name)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        with os.fdopen(fd, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise ArtifactError(f"{path}: cannot read ({exc})") from None
    if hashlib.sha256(data).hexdigest() != sha256:
        raise ArtifactError(f"{path}: sha256 does not match the manifest (changed after the check)")
    return data


def check_versions(manifest: dict[str, Any]) -> None:
    """The model reads features as this code computes them (else retrain or upgrade)."""
    if manifest["featurizer_version"] != FEATURIZER_VERSION:
        raise ArtifactError(
            f"featurizer_version {manifest['featurizer_version']} != this code's "
            f"{FEATURIZER_VERSION}: retrain or upgrade"
        )
    if manifest["feature_dim"] != FEATURE_DIM:
        raise ArtifactError(f"feature_dim {manifest['feature_dim']} != FEATURE_DIM {FEATURE_DIM}")


def confined(directory: Path, name: str) -> Path:
    """``directory / name`` when ``name`` is a plain file name of a regular file in it."""
    pure = PurePosixPath(name)
    if pure.is_absolute() or len(pure.parts) != 1 or name in (".", "..") or "\\" in name:
        raise ArtifactError(f"{name!r}: a manifest file name must be a plain name in {directory}")
    path = directory / name
    if path.is_symlink() or not path.is_file():
        what = "a link" if path.is_symlink() else "missing or not a regular file"
        raise ArtifactError(f"{path}: listed in the manifest but {what}")
    return path


class StepScoring(Protocol):
    """What a scorer of the artifact's step graph does, for a batch of B users (one event each).

    Two implementations on purpose: the worker's ``worker.core.scoring.Scorer`` and training's
    offline reference ``training.score.StepScorer``, which invariant 3 compares it against.
    """

    def step(
        self, x: np.ndarray, elapsed: np.ndarray, state: dict[str, np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        """x (B, F), elapsed (B,), state (B, *shape) -> p_purchase (B,), p_churn (B,), state."""
        ...
