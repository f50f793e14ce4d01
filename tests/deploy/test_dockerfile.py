"""deploy/Dockerfile and .dockerignore, parsed by BuildKit's parser (no Docker engine here).

Checks what a build would otherwise only reveal late: the default target is the worker, it runs
as a non-root user, its health check calls /healthz with python (no curl in the slim image), the
runtime gets no torch, and every path the build copies survives .dockerignore.
"""

from __future__ import annotations

import fnmatch
import re
import tomllib
from dataclasses import dataclass, field

import dockerfile

from tests.deploy.deployfiles import DOCKERFILE, ROOT


@dataclass
class Stage:
    """One ``FROM ... AS name`` stage: its base and its instructions in order."""

    name: str
    base: str
    commands: list[dockerfile.Command] = field(default_factory=list)

    def values(self, instruction: str) -> list[tuple[str, ...]]:
        """The parsed arguments of every ``instruction`` in this stage."""
        return [c.value for c in self.commands if c.cmd == instruction]

    def flags(self, instruction: str) -> list[tuple[str, ...]]:
        return [c.flags for c in self.commands if c.cmd == instruction]


def _stages() -> list[Stage]:
    """Stages as BuildKit's own parser reads them (a syntax error fails here)."""
    stages: list[Stage] = []
    for command in dockerfile.parse_file(str(DOCKERFILE)):
        if command.cmd == "FROM":
            base, *rest = command.value
            stages.append(Stage(name=rest[-1] if rest else "", base=base))
        elif stages:
            stages[-1].commands.append(command)
    return stages


def _stage(name: str) -> Stage:
    return next(s for s in _stages() if s.name == name)


def test_default_target_is_the_worker_runtime() -> None:
    final = _stages()[-1]
    assert final.name == "runtime"
    assert final.values("ENTRYPOINT")[-1] == ("python", "-m", "worker")
    assert final.values("CMD")[-1] == ("run",)


def test_base_image_is_python_311_slim() -> None:
    (first, *_) = dockerfile.parse_file(str(DOCKERFILE))
    # An exact release, not the moving "3.11" tag: the image is rebuilt on the tested Python.
    assert first.cmd == "ARG"
    assert re.fullmatch(r"PYTHON_IMAGE=python:3\.11\.\d+-slim-bookworm(@sha256:[0-9a-f]{64})?",
                        first.value[0]), first.value  # fmt: skip
    assert {s.base for s in _stages()} <= {"${PYTHON_IMAGE}", *(s.name for s in _stages())}


def test_runtime_runs_as_a_non_root_user_with_volume_and_model_dir() -> None:
    runtime = _stage("runtime")
    ((user,),) = runtime.values("USER")
    assert user.split(":")[0] not in {"0", "root"}
    assert runtime.values("VOLUME") == [("/var/lib/clickscore",)]
    env: dict[str, str] = {}
    for value in _stage("base").values("ENV"):
        env.update(zip(value[::2], value[1::2], strict=True))
    assert env["CLICKSCORE_DATA_DIR"] == "/var/lib/clickscore"
    assert env["CLICKSCORE_MODEL_DIR"] == "/models/current"


def test_healthcheck_uses_python_urllib_on_the_web_port() -> None:
    (check,) = _stage("runtime").values("HEALTHCHECK")
    assert check[0] == "CMD"
    command = check[1:]
    assert command[:2] == ("python", "-c")
    assert "curl" not in command[2] and "wget" not in command[2]
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
    build = " ".join(v[0] for v in _stage("build").values("RUN"))
    assert "pip install -c constraints.txt ." in build and "[training]" not in build
    assert '! python -c "import torch"' in build  # the build itself proves torch is absent
    assert "[training]" in " ".join(v[0] for v in _stage("tools-build").values("RUN"))


def _closure(requirements: list[str]) -> dict[str, str]:
    """Name -> installed version of every distribution ``requirements`` need (extras followed)."""
    from importlib.metadata import distribution

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    found: dict[str, str] = {}
    stack, done = [Requirement(r) for r in requirements], set()
    while stack:
        req = stack.pop()
        key = (canonicalize_name(req.name), tuple(sorted(req.extras)))
        if key in done:
            continue
        done.add(key)
        dist = distribution(req.name)
        found[key[0]] = dist.version
        for raw in dist.requires or []:
            sub = Requirement(raw)
            if sub.marker is None or any(sub.marker.evaluate({"extra": e})
                                         for e in ("", *req.extras)):  # fmt: skip
                stack.append(sub)
    return found


def test_the_image_pins_every_runtime_dependency_inside_pyproject_ranges() -> None:
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    pins = {}
    for line in (ROOT / "deploy" / "constraints.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, f"not an exact pin: {line}"
            pins[canonicalize_name(name)] = version.strip()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    needed = _closure(project["dependencies"])
    assert set(needed) - set(pins) == set(), "dependencies the image would leave unpinned"
    for raw in project["dependencies"]:
        req = Requirement(raw)
        assert pins[canonicalize_name(req.name)] in req.specifier, raw
    build = " ".join(v[0] for v in _stage("build").values("RUN"))
    assert build.count("-c constraints.txt") == 2  # the dependency layer and the package


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
        for flags, value in zip(stage.flags("COPY"), stage.values("COPY"), strict=True)
        if not any(f.startswith("--from") for f in flags)
        for src in value[:-1]
    ]
    assert copied, "no COPY from the build context found"
    for src in copied:
        for path in ROOT.glob(src.rstrip("/")):
            rel = path.relative_to(ROOT).as_posix()
            assert not _ignored(rel, patterns), f"{rel} is copied but .dockerignore drops it"
    for kept in (
        "worker/runtime/app.py",
        "training/featurizer.py",
        "schemas/event.py",
        "pyproject.toml",
    ):
        assert not _ignored(kept, patterns), kept
    for dropped in (".venv/bin/python", ".git/HEAD", "var/worker/x", "tests/conftest.py"):
        assert _ignored(dropped, patterns), dropped


def test_every_instruction_is_a_dockerfile_instruction() -> None:
    """The parser accepts any word as an instruction; a typo (FORM, COPPY) is caught here."""
    known = set(dockerfile.all_cmds())
    assert {c.cmd.lower() for c in dockerfile.parse_file(str(DOCKERFILE))} <= known
