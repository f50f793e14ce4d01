"""Every CLICKSCORE_* variable that compose, Kubernetes or the image set is a real worker setting,
the required ones are set, and the worker's own settings loader accepts the values as deployed.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.deployfiles import (
    COMPOSE_FILE,
    DOCKERFILE,
    k8s_object,
    k8s_secret_example,
    load_yaml_docs,
)
from worker.settings import ENV_PREFIX, PLACEHOLDER, Settings, SettingsError, load_settings

KNOWN = {ENV_PREFIX + name.upper() for name in Settings.model_fields}
REQUIRED = {ENV_PREFIX + n.upper() for n, f in Settings.model_fields.items() if f.is_required()}


def _dockerfile_env() -> dict[str, str]:
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text(encoding="utf-8"))
    return dict(re.findall(r"\b(CLICKSCORE_[A-Z_]+)=(\S+)", text))


def _compose_env(service: str) -> dict[str, str]:
    services = load_yaml_docs(COMPOSE_FILE)[0]["services"]
    return {k: str(v) for k, v in services[service].get("environment", {}).items()}


def _real_secrets() -> dict[str, str]:
    """The example Secret's keys with values an operator would create (placeholders replaced)."""
    example = k8s_secret_example()["stringData"]
    return {k: "s3cret-" + "f" * 40 if v == PLACEHOLDER else v for k, v in example.items()}


def _k8s_env() -> dict[str, str]:
    env = dict(k8s_object("ConfigMap")["data"])
    env.update(_real_secrets())
    container = k8s_object("StatefulSet")["spec"]["template"]["spec"]["containers"][0]
    env.update({e["name"]: e["value"] for e in container.get("env", [])})
    return env


def _deployments() -> dict[str, dict[str, str]]:
    """The environment each worker sees: the image's defaults under what the deployment sets."""
    image = _dockerfile_env()
    return {
        "compose worker-1": {**image, **_compose_env("worker-1")},
        "compose worker-2": {**image, **_compose_env("worker-2")},
        "kubernetes": {**image, **_k8s_env()},
    }


def _all_set_names() -> dict[str, set[str]]:
    sources = {
        "Dockerfile": set(_dockerfile_env()),
        "kubernetes": set(_k8s_env()),
    }
    for name in load_yaml_docs(COMPOSE_FILE)[0]["services"]:
        sources[f"compose {name}"] = {k for k in _compose_env(name) if k.startswith(ENV_PREFIX)}
    return sources


def test_the_settings_model_is_the_worker_s() -> None:
    assert "CLICKSCORE_KAFKA_BOOTSTRAP" in KNOWN and "CLICKSCORE_MODEL_DIR" in REQUIRED


@pytest.mark.parametrize("source", sorted(_all_set_names()))
def test_every_variable_set_is_a_worker_setting(source: str) -> None:
    unknown = _all_set_names()[source] - KNOWN
    assert unknown == set(), f"{source} sets variables the worker does not read"


@pytest.mark.parametrize("deployment", sorted(_deployments()))
def test_required_settings_are_set(deployment: str) -> None:
    missing = REQUIRED - set(_deployments()[deployment])
    assert missing == set()


@pytest.mark.parametrize("deployment", sorted(_deployments()))
def test_the_worker_accepts_the_deployed_values(deployment: str, tmp_path: Path) -> None:
    """load_settings() (the worker's start-up check) passes with the values as deployed.

    Only the two paths are moved to real directories here, since the loader checks that they exist.
    """
    env: dict[str, Any] = dict(_deployments()[deployment])
    model_dir = tmp_path / "models" / "current"
    model_dir.mkdir(parents=True)
    (model_dir / "manifest.json").write_text("{}", encoding="utf-8")  # only its presence is checked
    env.update({"CLICKSCORE_MODEL_DIR": str(model_dir), "CLICKSCORE_DATA_DIR": str(tmp_path)})
    settings = load_settings(env)
    assert settings.model_dir == model_dir
    if deployment == "kubernetes":
        assert settings.security_protocol == "SASL_SSL" and settings.sasl_username


def _model_dir(tmp_path: Path) -> str:
    """A directory that passes the settings check (the model itself is checked later, at load)."""
    model_dir = tmp_path / "m"
    model_dir.mkdir()
    (model_dir / "manifest.json").write_text("{}", encoding="utf-8")
    return str(model_dir)


def test_a_deployment_without_the_sasl_secret_is_refused(tmp_path: Path) -> None:
    """The check bites: Kubernetes settings without the Secret fail, naming the variable."""
    env = dict(_deployments()["kubernetes"])
    for key in _real_secrets():
        env.pop(key)
    env["CLICKSCORE_MODEL_DIR"] = _model_dir(tmp_path)
    with pytest.raises(SettingsError, match="CLICKSCORE_SASL_USERNAME"):
        load_settings(env)


def test_path_settings_point_where_the_image_mounts_them() -> None:
    for name, env in _deployments().items():
        assert env["CLICKSCORE_DATA_DIR"] == "/var/lib/clickscore", name
        assert env["CLICKSCORE_MODEL_DIR"] == "/models/current", name


def test_the_example_secret_as_shipped_is_refused(tmp_path: Path) -> None:
    """Applied unedited, the placeholders stop the worker at start, naming a variable."""
    env = {**_deployments()["kubernetes"], **k8s_secret_example()["stringData"]}
    env["CLICKSCORE_MODEL_DIR"] = _model_dir(tmp_path)
    with pytest.raises(SettingsError, match="REPLACE-ME placeholder"):
        load_settings(env)
    del env["CLICKSCORE_PSEUDONYMIZE_KEY"]  # and a Secret without the key: pseudonyms are required
    env["CLICKSCORE_SASL_PASSWORD"] = "a-real-password"
    with pytest.raises(SettingsError, match=r"^CLICKSCORE_PSEUDONYMIZE_KEY=: required with"):
        load_settings(env)
