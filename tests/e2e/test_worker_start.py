"""Start-up failures: a bad setting, a broken model or a Faust that lacks a private name we use
stops ``python -m worker run`` at once, non-zero, with one line naming the cause (no traceback).
No broker needed: it fails first; the last test (a start outside the checkout, with no ./var)
uses the session's broker.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.e2e.worker_process import ROOT, WorkerProcess, worker_env
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


def test_every_bad_setting_and_each_misspelt_name_in_one_run(tmp_path: Path) -> None:
    # No model dir and a bad batch size: one line names both; the typo gets its own warning.
    done = _run({"CLICKSCORE_BATCH_SIZE": "0", "CLICKSCORE_MODELDIR": str(tmp_path)})
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "clickscore worker: bad setting: CLICKSCORE_MODEL_DIR=: required, not set; "
        "CLICKSCORE_BATCH_SIZE=0: must be >= 1",
        "clickscore worker: warning: CLICKSCORE_MODELDIR is not a setting and is ignored "
        "(did you mean CLICKSCORE_MODEL_DIR?)",
    ]


def test_a_data_dir_that_cannot_be_created_is_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    done = _run(
        {
            "CLICKSCORE_MODEL_DIR": str(shared_artifact()),
            "CLICKSCORE_DATA_DIR": str(blocker / "worker"),
        }
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines()[-1] == (
        f"clickscore worker: bad setting: CLICKSCORE_DATA_DIR={blocker / 'worker'}: "
        "cannot create it (Not a directory)"
    )
    assert "Traceback" not in done.stderr + done.stdout


@pytest.mark.kafka
def test_starts_in_a_directory_without_var(kafka_bootstrap: str, tmp_path: Path) -> None:
    # The default data dir is ./var/worker: a fresh checkout has no ./var (Faust makes one level).
    env = worker_env(kafka_bootstrap, shared_artifact(), tmp_path / "unused")
    del env["CLICKSCORE_DATA_DIR"]
    env["CLICKSCORE_GROUP_ID"] = env["CLICKSCORE_EVENTS_TOPIC"] = f"novar-{uuid.uuid4().hex[:8]}"
    worker = WorkerProcess(env, tmp_path / "worker.log", cwd=tmp_path)
    try:
        worker.wait_ready()
        assert (tmp_path / "var" / "worker").is_dir()
    finally:
        assert worker.stop() == 0, worker.log_tail()
    assert "Traceback" not in worker.log_tail()
