"""Start-up failures: a bad setting, a broken model or a Faust that lacks a private name we use
stops ``python -m worker run`` at once, non-zero, with one line naming the cause (no traceback).
No broker needed: it fails first.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.worker_process import ROOT
from tests.worker_artifacts import copy_artifact, shared_artifact


def _run(env: dict[str, str], before: str = "") -> subprocess.CompletedProcess[str]:
    """``python -m worker run`` with ``env``; ``before`` is Python run first in the process."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CLICKSCORE_")}
    cmd = [sys.executable, "-m", "worker", "run"]
    if before:
        cmd[1:] = [
            "-c",
            f"{before}\nimport sys\nfrom worker.cli import main\nsys.exit(main(['run']))",
        ]
    return subprocess.run(
        cmd,
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("env", "line"),
    [
        (
            {"CLICKSCORE_SECURITY_PROTOCOL": "KERBEROS"},
            "CLICKSCORE_SECURITY_PROTOCOL=KERBEROS: must be 'PLAINTEXT', 'SSL', 'SASL_PLAINTEXT' "
            "or 'SASL_SSL'",
        ),
        ({"CLICKSCORE_BATCH_SIZE": "0"}, "CLICKSCORE_BATCH_SIZE=0: must be >= 1"),
        (
            {"CLICKSCORE_PSEUDONYMIZE_KEY": "REPLACE-ME"},
            "CLICKSCORE_PSEUDONYMIZE_KEY=**********: the REPLACE-ME placeholder, not a secret",
        ),
        (
            {"CLICKSCORE_REQUIRE_PSEUDONYMIZATION": "true"},
            "CLICKSCORE_PSEUDONYMIZE_KEY=: required with CLICKSCORE_REQUIRE_PSEUDONYMIZATION=true",
        ),
        (
            {"CLICKSCORE_MODEL_DIR": "/no/such/model"},
            "CLICKSCORE_MODEL_DIR=/no/such/model: not a directory",
        ),
    ],
)  # fmt: skip
def test_bad_setting_exits_non_zero_with_one_line(env: dict[str, str], line: str) -> None:
    done = _run({"CLICKSCORE_MODEL_DIR": str(shared_artifact()), **env})
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [f"clickscore worker: bad setting: {line}"]
    assert "Traceback" not in done.stderr + done.stdout


def test_broken_model_exits_non_zero_at_start(tmp_path: Path) -> None:
    model = copy_artifact(shared_artifact(), tmp_path / "model")
    manifest = json.loads((model / "manifest.json").read_text())
    manifest["featurizer_version"] = 99
    (model / "manifest.json").write_text(json.dumps(manifest))
    done = _run({"CLICKSCORE_MODEL_DIR": str(model)})
    assert done.returncode == 3
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "model refused: featurizer_version 99" in lines[0], done.stderr


def test_faust_without_a_private_name_exits_non_zero_naming_its_version() -> None:
    # As if an upgrade had renamed it: the worker must not start and fail later, far from here.
    before = "import faust.stores.rocksdb as r\ndel r.Store._db_for_partition"
    done = _run({"CLICKSCORE_MODEL_DIR": str(shared_artifact())}, before)
    assert done.returncode == 5, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("clickscore worker: faust-streaming 0.15.")
    assert "faust.stores.rocksdb.Store._db_for_partition" in lines[0]


def test_run_help_lists_every_setting() -> None:
    from worker.settings import Settings

    done = subprocess.run(
        [sys.executable, "-m", "worker", "run", "--help"],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    for name, field in Settings.model_fields.items():
        assert f"CLICKSCORE_{name.upper()}" in done.stdout
        assert (field.description or "") in done.stdout
