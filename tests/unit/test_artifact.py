"""The one artifact check: worker and training refuse the same broken artifacts the same way."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.worker_artifacts import copy_artifact, shared_artifact
from training.artifact import ArtifactError, check_artifact
from training.export import read_manifest
from worker.core.model_store import load_model

READERS: dict[str, Callable[[Path], Any]] = {"worker": load_model, "training": read_manifest}


def _list_file(directory: Path, name: str, sha256: str = "0" * 64) -> None:
    path = directory / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["files"][name] = {"sha256": sha256, "bytes": 1}
    path.write_text(json.dumps(manifest))


def _outside(d: Path) -> str:
    secret = d.parent / "secret.bin"
    secret.write_bytes(b"not part of the artifact")
    return str(secret)


def _link(d: Path) -> str:
    (d / "alias.onnx").symlink_to(d / "model.onnx")
    return "alias.onnx"


def _subdir(d: Path) -> str:
    (d / "sub").mkdir()
    (d / "sub" / "x.onnx").write_bytes(b"x")
    return "sub/x.onnx"


ESCAPES: dict[str, Callable[[Path], str]] = {
    "absolute path": _outside,
    "parent dir": lambda d: "../" + Path(_outside(d)).name,
    "sub-directory": _subdir,
    "symlink": _link,
    "directory": lambda d: (d / "dir.onnx").mkdir() or "dir.onnx",
}


@pytest.mark.parametrize("reader", sorted(READERS))
@pytest.mark.parametrize("kind", sorted(ESCAPES))
def test_file_names_are_confined_to_the_artifact_dir(
    tmp_path: Path, kind: str, reader: str
) -> None:
    directory = copy_artifact(shared_artifact(), tmp_path / "model")
    name = ESCAPES[kind](directory)
    target = directory / name
    digest = hashlib.sha256(target.read_bytes()).hexdigest() if target.is_file() else "0" * 64
    _list_file(directory, name, digest)  # a correct sha256: only the name may give it away
    with pytest.raises(ArtifactError, match=r"plain name|link|not a regular file"):
        READERS[reader](directory)


@pytest.mark.parametrize("reader", sorted(READERS))
def test_both_readers_refuse_a_tampered_file_and_accept_the_good_one(
    tmp_path: Path, reader: str
) -> None:
    directory = copy_artifact(shared_artifact(), tmp_path / "model")
    READERS[reader](directory)
    (directory / "model_seq.onnx").write_bytes(b"tampered")
    with pytest.raises(ArtifactError, match="sha256"):
        READERS[reader](directory)


def test_the_check_returns_the_manifest_and_its_bytes() -> None:
    directory = shared_artifact()
    manifest, raw = check_artifact(directory)
    assert raw == (directory / "manifest.json").read_bytes()
    assert manifest == json.loads(raw)
