"""The README's "Use" steps, as written, in a fresh copy of the checkout and a clean environment.

The commands are parsed from README.md's ``## Use`` bash block and run in one bash, as a reader
would paste them; they start their own broker and worker and stop both. The only differences from
a reader's run are ``CLICKSCORE_TRAIN_PRESET=tiny`` (training in seconds, not a minute) and a free
``CLICKSCORE_WEB_PORT`` (another test run may hold the default).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
from pathlib import Path

import pytest

from tests.e2e.worker_process import free_port

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
ALERT_LINE = re.compile(r"^(propensity|churn) user=\S+ score=[0-9.]+ threshold=[0-9.]+ model=\S+")


def use_commands(readme: str) -> list[str]:
    """The command lines of the first bash block under ``## Use``."""
    section = readme.split("\n## Use\n", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", section, flags=re.S)
    assert block, "no bash block under ## Use"
    return [line for line in block.group(1).splitlines() if line.strip()]


def _fresh_copy(dest: Path) -> Path:
    """The checkout's files (tracked and new, not ignored) without var/, sharing .venv."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, capture_output=True, check=True,
    ).stdout.decode().split("\0")  # fmt: skip
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():
            target = dest / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(source.read_bytes())
            target.chmod(source.stat().st_mode)
    (dest / ".venv").symlink_to(ROOT / ".venv")
    return dest


def _clean_env() -> dict[str, str]:
    """A fresh shell's environment: no venv on PATH, no CLICKSCORE_* or KAFKA_* variables."""
    venv_bin = str(ROOT / ".venv" / "bin")
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("CLICKSCORE_", "KAFKA_", "VIRTUAL_ENV", "PYTEST"))
    }
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if p != venv_bin)
    env["CLICKSCORE_TRAIN_PRESET"] = "tiny"
    env["CLICKSCORE_WEB_PORT"] = str(free_port())  # the default 6066 may be taken by another run
    return env


def test_readme_use_steps_show_alerts_and_stop_everything(tmp_path: Path) -> None:
    commands = use_commands((ROOT / "README.md").read_text())
    assert any(c.startswith("python -m worker alerts") for c in commands), commands
    repo = _fresh_copy(tmp_path / "clickscore")
    assert not (repo / "var").exists()
    proc = subprocess.Popen(
        ["bash", "-c", "set -eo pipefail\n" + "\n".join(commands)],
        cwd=repo, env=_clean_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL, text=True, start_new_session=True,
    )  # fmt: skip
    try:
        out, _ = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        subprocess.run(
            ["deploy/local/kafka.sh", "stop", "--dir", str(repo / "var" / "kafka")],
            cwd=repo, capture_output=True, timeout=120,
        )  # fmt: skip
    worker_log = (repo / "var" / "worker.log").read_text()
    assert proc.returncode == 0, out[-4000:] + "\n--- worker log ---\n" + worker_log[-3000:]
    alerts = [line for line in out.splitlines() if ALERT_LINE.match(line)]
    assert alerts, out[-4000:]
    assert re.search(r"replay: read (\d+), produced \1, delivered \1, failed 0", out), out[-3000:]
    for name, text in (("output", out), ("worker log", worker_log)):
        bad = [
            line
            for line in text.splitlines()
            if re.search(r"\bERROR\b|%\d\||Traceback", line) or "\x1b[" in line
        ]
        assert not bad, f"{name}: {bad[:5]}"
    # Everything stopped: the broker says it is down, and no process of the run is left.
    status = subprocess.run(
        ["deploy/local/kafka.sh", "status", "--dir", str(repo / "var" / "kafka")],
        cwd=repo, capture_output=True, text=True,
    )  # fmt: skip
    assert status.returncode == 1, status.stdout + status.stderr
    assert "worker stopped" in worker_log
