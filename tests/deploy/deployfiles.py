"""Paths, loaders and tool runners shared by the deploy tests (imported as ``deployfiles``).

Missing tools fail the test (never skip) with the one fix: run ``make setup``.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
PROMETHEUS_DIR = DEPLOY / "prometheus"
RULES_FILE = PROMETHEUS_DIR / "rules" / "clickscore.rules.yml"
RULES_TEST_FILE = PROMETHEUS_DIR / "rules" / "clickscore.rules.test.yml"
DASHBOARD_FILE = DEPLOY / "grafana" / "dashboards" / "clickscore.json"
COMPOSE_FILE = DEPLOY / "compose.yaml"
K8S_DIR = DEPLOY / "k8s"
# The Secret's shape with placeholder values: an example, never applied by `kubectl apply -k`.
K8S_SECRET_EXAMPLE = K8S_DIR / "examples" / "secret.yaml"
DOCKERFILE = DEPLOY / "Dockerfile"
OPERATIONS_DOC = ROOT / "docs" / "operations.md"

# A metric name as written in PromQL: our prefix, then lower-case words.
METRIC_NAME = re.compile(r"\bclickscore_[a-z0-9_]+\b")
# Histogram series that PromQL names but the bundle registers under the base name.
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


def tool(name: str) -> str:
    """Path of a required command-line tool; fails the test (not skips) when it is absent."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} not found: run `make setup` (installs Debian's prometheus package)")
    return path


def run_tool(args: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run a tool and fail with its full output when it exits non-zero."""
    done = subprocess.run(
        args, cwd=cwd, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL
    )
    if done.returncode != 0:
        pytest.fail(f"{' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
    return done


def load_yaml_docs(path: Path) -> list[dict[str, Any]]:
    """Every non-empty YAML document in a file."""
    with path.open(encoding="utf-8") as fh:
        return [doc for doc in yaml.safe_load_all(fh) if doc]


def k8s_objects() -> list[tuple[Path, dict[str, Any]]]:
    """Every Kubernetes object in deploy/k8s except the kustomization itself."""
    out: list[tuple[Path, dict[str, Any]]] = []
    for path in sorted(K8S_DIR.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        out.extend((path, doc) for doc in load_yaml_docs(path))
    return out


def k8s_secret_example() -> dict[str, Any]:
    """The example Secret (placeholder values) the worker's pods read as ``clickscore-secrets``."""
    (secret,) = load_yaml_docs(K8S_SECRET_EXAMPLE)
    return secret


def k8s_object(kind: str) -> dict[str, Any]:
    """The one object of ``kind`` in deploy/k8s."""
    found = [doc for _, doc in k8s_objects() if doc.get("kind") == kind]
    assert len(found) == 1, f"expected one {kind} in deploy/k8s, found {len(found)}"
    return found[0]


def base_metric(name: str) -> str:
    """``clickscore_x_bucket`` -> ``clickscore_x`` (histogram series to the metric's name)."""
    for suffix in HISTOGRAM_SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def rule_exprs() -> dict[str, str]:
    """Alert name -> PromQL expression, from the rules file."""
    groups = load_yaml_docs(RULES_FILE)[0]["groups"]
    return {r["alert"]: r["expr"] for g in groups for r in g["rules"] if "alert" in r}


def dashboard_exprs() -> list[str]:
    """Every PromQL expression of the Grafana dashboard, Grafana variables still in place."""
    import json

    dash = json.loads(DASHBOARD_FILE.read_text(encoding="utf-8"))
    return [t["expr"] for p in dash["panels"] for t in p.get("targets", []) if t.get("expr")]
