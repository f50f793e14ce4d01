"""deploy/compose.yaml validates against the Compose Specification and wires the stack together.

The schema is the compose-spec JSON Schema that check-jsonschema ships (offline). ``docker compose
config`` would need the compose plugin, which these machines do not have.
"""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import yaml

from tests.deploy.deployfiles import (
    COMPOSE_FILE,
    DEPLOY,
    DOCKERFILE,
    PROMETHEUS_DIR,
    load_yaml_docs,
    run_tool,
)

WORKERS = ("worker-1", "worker-2")
# check-jsonschema from the dev extra, run with this interpreter (no venv on PATH needed).
CHECK_JSONSCHEMA = [
    sys.executable,
    "-m",
    "check_jsonschema",
    "--builtin-schema",
    "vendor.compose-spec",
]


def _compose() -> dict[str, Any]:
    return load_yaml_docs(COMPOSE_FILE)[0]


def test_compose_matches_the_compose_spec() -> None:
    run_tool([*CHECK_JSONSCHEMA, str(COMPOSE_FILE)])


def test_compose_spec_check_catches_a_typo(tmp_path: Any) -> None:
    """The schema check bites: a misspelt depends_on condition is refused."""
    bad = COMPOSE_FILE.read_text(encoding="utf-8").replace(
        "service_completed_successfully", "service_done"
    )
    path = tmp_path / "compose.yaml"
    path.write_text(bad, encoding="utf-8")
    done = subprocess.run(
        [*CHECK_JSONSCHEMA, str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0
    assert "service_done" in done.stdout


def test_two_workers_in_one_group_on_the_official_kafka_image() -> None:
    services = _compose()["services"]
    assert services["kafka"]["image"].startswith("apache/kafka:")
    kafka_env = services["kafka"]["environment"]
    assert kafka_env["KAFKA_PROCESS_ROLES"] == "broker,controller"  # KRaft, no ZooKeeper
    groups = {services[w]["environment"]["CLICKSCORE_GROUP_ID"] for w in WORKERS}
    assert len(groups) == 1
    for w in WORKERS:
        assert services[w]["build"]["target"] == "runtime"
        assert services[w]["depends_on"]["kafka"]["condition"] == "service_healthy"
        assert services[w]["depends_on"]["model"]["condition"] == "service_completed_successfully"
        data_volume = next(v for v in services[w]["volumes"] if v.endswith(":/var/lib/clickscore"))
        assert data_volume.split(":")[0] == f"{w}-data"  # RocksDB is per worker, never shared
    bootstrap = {services[w]["environment"]["CLICKSCORE_KAFKA_BOOTSTRAP"] for w in WORKERS}
    assert bootstrap == {"kafka:19092"}
    assert "INTERNAL://kafka:19092" in kafka_env["KAFKA_ADVERTISED_LISTENERS"]


def test_replay_job_simulates_then_replays_with_the_tools_image() -> None:
    services = _compose()["services"]
    for job in ("model", "replay"):
        assert services[job]["build"]["target"] == "tools"
        assert services[job]["restart"] == "no"
    command = " ".join(services["replay"]["command"])
    assert "python -m training simulate" in command
    assert "python -m worker replay" in command
    assert "python -m training train" in " ".join(services["model"]["command"])


def test_build_targets_exist_in_the_dockerfile() -> None:
    stages = {
        line.split()[-1]
        for line in DOCKERFILE.read_text(encoding="utf-8").splitlines()
        if line.startswith("FROM ") and " AS " in line
    }
    for svc in _compose()["services"].values():
        if "build" in svc:
            assert (DEPLOY.parent / svc["build"]["dockerfile"]) == DOCKERFILE
            assert svc["build"]["target"] in stages


def test_prometheus_scrapes_the_compose_workers() -> None:
    """prometheus.yml's clickscore targets are exactly the compose workers on their web port."""
    services = _compose()["services"]
    config = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text(encoding="utf-8"))
    job = next(j for j in config["scrape_configs"] if j["job_name"] == "clickscore")
    targets = {t for sc in job["static_configs"] for t in sc["targets"]}
    expected = {f"{w}:{services[w]['environment']['CLICKSCORE_WEB_PORT']}" for w in WORKERS}
    assert targets == expected


def test_mounted_config_paths_exist() -> None:
    services = _compose()["services"]
    for name in ("prometheus", "grafana"):
        for volume in services[name]["volumes"]:
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (DEPLOY / source).is_dir(), f"{name} mounts missing {source}"
