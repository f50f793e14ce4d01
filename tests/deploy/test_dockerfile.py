"""deploy/Dockerfile and .dockerignore, read as text (no Docker engine on CI machines).

Checks what a build would otherwise only reveal late: the default target is the worker, it runs
as a non-root user, its health check calls /healthz with python (no curl in the slim image), the
runtime gets no torch, and every path the build copies survives .dockerignore.
"""

from __future__ import annotations

import fnmatch
import json
import re
import tomllib
from dataclasses import dataclass, field

from deployfiles import DOCKERFILE, ROOT


@dataclass
class Stage:
    """One ``FROM ... AS name`` stage: its base and its instructions in order."""

    name: str
    base: str
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def args(self, instruction: str) -> list[str]:
        return [a for i, a in self.instructions if i == instruction]


def _stages() -> list[Stage]:
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text(encoding="utf-8"))
    stages: list[Stage] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        instruction, _, rest = line.partition(" ")
        instruction = instruction.upper()
        if instruction == "FROM":
            parts = rest.split()
            stages.append(Stage(name=parts[-1] if "AS" in parts else "", base=parts[0]))
        elif stages:
            stages[-1].instructions.append((instruction, rest.strip()))
    return stages


def _stage(name: str) -> Stage:
    return next(s for s in _stages() if s.name == name)


def test_default_target_is_the_worker_runtime() -> None:
    final = _stages()[-1]
    assert final.name == "runtime"
    assert json.loads(final.args("ENTRYPOINT")[-1]) == ["python", "-m", "worker"]
    assert json.loads(final.args("CMD")[-1]) == ["run"]


def test_base_image_is_python_311_slim() -> None:
    first = DOCKERFILE.read_text(encoding="utf-8")
    default = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", first, re.MULTILINE)
    assert default is not None and default.group(1).startswith("python:3.11-slim")


def test_runtime_runs_as_a_non_root_user_with_volume_and_model_dir() -> None:
    runtime = _stage("runtime")
    (user,) = runtime.args("USER")
    assert user.split(":")[0] not in {"0", "root"}
    assert runtime.args("VOLUME") == ['["/var/lib/clickscore"]']
    env = " ".join(_stage("base").args("ENV"))
    assert "CLICKSCORE_DATA_DIR=/var/lib/clickscore" in env
    assert "CLICKSCORE_MODEL_DIR=/models/current" in env


def test_healthcheck_uses_python_urllib_on_the_web_port() -> None:
    (check,) = _stage("runtime").args("HEALTHCHECK")
    assert "curl" not in check and "wget" not in check
    command = json.loads(check[check.index("CMD") + 3 :].strip())
    assert command[:2] == ["python", "-c"]
    assert "urllib.request" in command[2] and "/healthz" in command[2]
    assert "CLICKSCORE_WEB_PORT" in command[2]


def test_runtime_dependencies_have_no_torch() -> None:
    """The runtime stage installs the project's base dependencies only; they must not need torch."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    names = {re.split(r"[\[<>=!~ ]", d, maxsplit=1)[0].lower() for d in project["dependencies"]}
    needed = {
        "numpy",
        "onnxruntime",
        "faust-streaming",
        "confluent-kafka",
        "prometheus-client",
        "msgspec",
        "jsonschema",
        "pydantic-settings",
        "rich",
        "tqdm",
    }
    assert needed <= names
    assert not names & {"torch", "onnx", "scikit-learn", "matplotlib"}
    build = " ".join(_stage("build").args("RUN"))
    assert "pip install ." in build and "[training]" not in build
    assert '! python -c "import torch"' in build  # the build itself proves torch is absent
    assert "[training]" in " ".join(_stage("tools-build").args("RUN"))


def _ignored(path: str, patterns: list[str]) -> bool:
    """Docker's rule: the last matching pattern wins; ``!`` re-includes; a dir covers its files."""
    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pat = pattern[1:] if negate else pattern
        pat = pat.rstrip("/")
        parts = path.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        if any(fnmatch.fnmatchcase(p, pat) for p in prefixes):
            ignored = not negate
    return ignored


def test_dockerignore_keeps_what_the_build_copies_and_drops_the_rest() -> None:
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    copied = [
        src
        for stage in _stages()
        for args in stage.args("COPY")
        if not args.startswith("--from")
        for src in args.split()[:-1]
    ]
    assert copied, "no COPY from the build context found"
    for src in copied:
        for path in ROOT.glob(src.rstrip("/")):
            rel = path.relative_to(ROOT).as_posix()
            assert not _ignored(rel, patterns), f"{rel} is copied but .dockerignore drops it"
    for kept in ("worker/app.py", "training/featurizer.py", "schemas/event.py", "pyproject.toml"):
        assert not _ignored(kept, patterns), kept
    for dropped in (".venv/bin/python", ".git/HEAD", "var/worker/x", "tests/conftest.py"):
        assert _ignored(dropped, patterns), dropped
