"""deploy/k8s: core objects pass the Kubernetes schemas (strict), and the pieces agree.

kubernetes-validate ships the OpenAPI schemas of each Kubernetes release, so this runs offline. The
KEDA and Prometheus Operator objects (CRDs) have no schema there; their fields are checked here.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest

from tests.deploy.deployfiles import (
    K8S_DIR,
    RULES_FILE,
    k8s_object,
    k8s_objects,
    k8s_secret_example,
    load_yaml_docs,
)

K8S_VERSION = "1.30.0"  # oldest release we claim to support; its schemas are the strictest test
CRD_KINDS = {"ScaledObject", "TriggerAuthentication", "ServiceMonitor", "PrometheusRule"}
# The worker's CLICKSCORE_SASL_MECHANISM -> the KEDA Kafka scaler's "sasl" value.
_NS = "kubernetes.io/metadata.name"  # the namespace label Kubernetes sets itself
KEDA_SASL = {"PLAIN": "plaintext", "SCRAM-SHA-256": "scram_sha256", "SCRAM-SHA-512": "scram_sha512"}


def _core_objects() -> list[tuple[Path, dict[str, Any]]]:
    return [(p, d) for p, d in k8s_objects() if d["kind"] not in CRD_KINDS]


@pytest.mark.parametrize(
    "obj", [d for _, d in _core_objects()], ids=lambda d: f"{d['kind']}/{d['metadata']['name']}"
)
def test_core_object_validates_strictly(obj: dict[str, Any]) -> None:
    kubernetes_validate.validate(obj, K8S_VERSION, strict=True)


def test_validator_rejects_a_misspelt_field() -> None:
    """The schema check is real: a typo in the StatefulSet is an error, not a warning."""
    bad = copy.deepcopy(k8s_object("StatefulSet"))
    bad["spec"]["template"]["spec"]["terminationGracePeriod"] = 90
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, K8S_VERSION, strict=True)


def test_kustomization_lists_every_manifest() -> None:
    kustomization = load_yaml_docs(K8S_DIR / "kustomization.yaml")[0]
    files = {p.name for p in K8S_DIR.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == files


def test_apply_k_creates_no_secret() -> None:
    """A placeholder Secret in the kustomization would overwrite the real one on every apply."""
    kinds = {d["kind"] for _, d in k8s_objects()}
    assert "Secret" not in kinds
    example = k8s_secret_example()
    assert example["kind"] == "Secret" and example["metadata"]["name"] == _secret_ref()
    kubernetes_validate.validate(example, K8S_VERSION, strict=True)


def _secret_ref() -> str:
    (ref,) = [e["secretRef"]["name"] for e in _worker()["envFrom"] if "secretRef" in e]
    return str(ref)


def _pod_spec() -> dict[str, Any]:
    spec: dict[str, Any] = k8s_object("StatefulSet")["spec"]["template"]["spec"]
    return spec


def _worker() -> dict[str, Any]:
    containers = _pod_spec()["containers"]
    assert len(containers) == 1
    container: dict[str, Any] = containers[0]
    return container


def test_statefulset_keeps_rocksdb_on_a_volume_per_pod() -> None:
    sts = k8s_object("StatefulSet")
    env = {e["name"]: e.get("value") for e in _worker().get("env", [])}
    data_dir = env["CLICKSCORE_DATA_DIR"]
    claim = sts["spec"]["volumeClaimTemplates"][0]["metadata"]["name"]
    mounts = {m["name"]: m["mountPath"] for m in _worker()["volumeMounts"]}
    assert mounts[claim] == data_dir
    settings = k8s_object("ConfigMap")["data"]
    assert settings["CLICKSCORE_STORE"] == "rocksdb://"


def test_every_claimed_volume_is_declared() -> None:
    """The shared model volume the pods mount exists as a claim (pods would stay Pending)."""
    claims = {
        d["metadata"]["name"] for _, d in k8s_objects() if d["kind"] == "PersistentVolumeClaim"
    }
    used = {
        v["persistentVolumeClaim"]["claimName"]
        for v in _pod_spec()["volumes"]
        if "persistentVolumeClaim" in v
    }
    assert used and used <= claims
    mounts = {m["name"]: m for m in _worker()["volumeMounts"]}
    env = {e["name"]: e.get("value") for e in _worker()["env"]}
    models = next(v["name"] for v in _pod_spec()["volumes"] if "persistentVolumeClaim" in v)
    assert mounts[models]["readOnly"] is True
    assert env["CLICKSCORE_MODEL_DIR"].startswith(mounts[models]["mountPath"] + "/")


def test_statefulset_probes_and_shutdown() -> None:
    worker = _worker()
    port = int(k8s_object("ConfigMap")["data"]["CLICKSCORE_WEB_PORT"])
    assert {p["name"]: p["containerPort"] for p in worker["ports"]}["web"] == port
    assert worker["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert worker["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert worker["startupProbe"]["httpGet"]["path"] == "/healthz"
    # Long enough to finish a batch, flush the changelog and commit (docs/operations.md).
    assert _pod_spec()["terminationGracePeriodSeconds"] >= 60
    assert _pod_spec()["securityContext"]["runAsNonRoot"] is True
    assert _pod_spec()["automountServiceAccountToken"] is False  # it never calls the API


def test_service_selects_the_pods_and_is_headless() -> None:
    svc = k8s_object("Service")
    sts = k8s_object("StatefulSet")
    pod_labels = sts["spec"]["template"]["metadata"]["labels"]
    assert svc["spec"]["clusterIP"] == "None"
    assert sts["spec"]["serviceName"] == svc["metadata"]["name"]
    assert svc["spec"]["selector"].items() <= pod_labels.items()
    pdb = k8s_object("PodDisruptionBudget")
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()


def test_servicemonitor_scrapes_the_service_as_job_clickscore() -> None:
    """The job label is the Service's name; the alert rules select job="clickscore"."""
    sm = k8s_object("ServiceMonitor")
    svc = k8s_object("Service")
    assert sm["apiVersion"] == "monitoring.coreos.com/v1"
    assert sm["spec"]["selector"]["matchLabels"].items() <= svc["metadata"]["labels"].items()
    port_names = {p["name"] for p in svc["spec"]["ports"]}
    for endpoint in sm["spec"]["endpoints"]:
        assert endpoint["port"] in port_names
        assert endpoint["path"] == "/metrics"
    assert "jobLabel" not in sm["spec"]
    assert svc["metadata"]["name"] == "clickscore"


def test_scaledobject_targets_the_statefulset_and_is_capped_by_partitions() -> None:
    so = k8s_object("ScaledObject")
    sts = k8s_object("StatefulSet")
    settings = k8s_object("ConfigMap")["data"]
    assert so["apiVersion"] == "keda.sh/v1alpha1"
    target = so["spec"]["scaleTargetRef"]
    assert (target["apiVersion"], target["kind"], target["name"]) == (
        "apps/v1",
        "StatefulSet",
        sts["metadata"]["name"],
    )
    # More workers than partitions sit idle (and are never ready).
    assert so["spec"]["maxReplicaCount"] <= int(settings["CLICKSCORE_PARTITIONS"])
    assert 1 <= so["spec"]["minReplicaCount"] <= so["spec"]["maxReplicaCount"]
    (trigger,) = so["spec"]["triggers"]
    meta = trigger["metadata"]
    assert trigger["type"] == "kafka"
    assert meta["consumerGroup"] == settings["CLICKSCORE_GROUP_ID"]
    assert meta["topic"] == settings["CLICKSCORE_EVENTS_TOPIC"]
    assert meta["bootstrapServers"] == settings["CLICKSCORE_KAFKA_BOOTSTRAP"]
    assert int(meta["lagThreshold"]) > 0
    assert meta["allowIdleConsumers"] == "false"
    # SASL settings agree with the worker's.
    assert meta["sasl"] == KEDA_SASL[settings["CLICKSCORE_SASL_MECHANISM"]]
    assert settings["CLICKSCORE_SECURITY_PROTOCOL"] == "SASL_SSL" and meta["tls"] == "enable"


def test_trigger_authentication_reads_the_workers_secret() -> None:
    auth = k8s_object("TriggerAuthentication")
    secret = k8s_secret_example()
    so = k8s_object("ScaledObject")
    assert so["spec"]["triggers"][0]["authenticationRef"]["name"] == auth["metadata"]["name"]
    refs = {r["parameter"]: r for r in auth["spec"]["secretTargetRef"]}
    assert set(refs) == {"username", "password"}
    for ref in refs.values():
        assert ref["name"] == secret["metadata"]["name"]
        assert ref["key"] in secret["stringData"]


def test_every_object_carries_the_app_label() -> None:
    for path, obj in k8s_objects():
        labels = obj["metadata"].get("labels", {})
        assert "app.kubernetes.io/name" in labels or obj["kind"] == "Namespace", path.name


def test_prometheusrule_is_the_rules_file() -> None:
    """The Operator's copy of the rules equals deploy/prometheus/rules/clickscore.rules.yml."""
    rule = k8s_object("PrometheusRule")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert rule["spec"] == load_yaml_docs(RULES_FILE)[0]


def test_network_policy_lets_only_prometheus_in_and_only_kafka_and_dns_out() -> None:
    """The web port is unauthenticated: nothing but the monitoring namespace may reach it."""
    policy = k8s_object("NetworkPolicy")
    pod_labels = k8s_object("StatefulSet")["spec"]["template"]["metadata"]["labels"]
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= pod_labels.items()
    assert set(policy["spec"]["policyTypes"]) == {"Ingress", "Egress"}
    (rule,) = policy["spec"]["ingress"]
    assert [p["port"] for p in rule["ports"]] == ["web"]
    (source,) = rule["from"]
    assert source == {"namespaceSelector": {"matchLabels": {_NS: "monitoring"}}}
    bootstrap = k8s_object("ConfigMap")["data"]["CLICKSCORE_KAFKA_BOOTSTRAP"]
    kafka_ports = {int(server.rpartition(":")[2]) for server in bootstrap.split(",")}
    out = {
        (peer["namespaceSelector"]["matchLabels"][_NS], port["port"])
        for rule in policy["spec"]["egress"]
        for peer in rule["to"]
        for port in rule["ports"]
    }
    assert out == {("kafka", p) for p in kafka_ports} | {("kube-system", 53)}
