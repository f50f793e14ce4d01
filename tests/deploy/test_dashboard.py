"""The Grafana dashboard parses, its PromQL is valid, it queries only metrics the worker exports.

Metric names come from the worker's own metrics bundle (``worker.metrics.Metrics``), the thing that
serves ``/metrics``; test_prometheus_live.py checks them against a running worker's page as well.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from prometheus_client import CollectorRegistry

from tests.deploy.deployfiles import (
    COMPOSE_FILE,
    DASHBOARD_FILE,
    DEPLOY,
    METRIC_NAME,
    dashboard_exprs,
    load_yaml_docs,
    rule_exprs,
    run_tool,
    tool,
)
from worker.metrics import Metrics

# What the dashboard must show (issue: throughput, lag, latency, alerts by type, dead letters by
# reason, model version, users in state): a metric, and a fragment its query must contain.
REQUIRED_VIEWS = {
    "clickscore_events_consumed_total": "rate(",
    "clickscore_consumer_lag": "clickscore_consumer_lag",
    "clickscore_scoring_latency_seconds_bucket": "histogram_quantile(0.99",
    "clickscore_end_to_end_latency_seconds_bucket": "histogram_quantile(0.99",
    "clickscore_alerts_emitted_total": "by (alert_type",
    "clickscore_events_dead_lettered_total": "by (reason)",
    "clickscore_model_info": "model_version",
    "clickscore_users_in_state": "clickscore_users_in_state",
    "clickscore_score_psi": "by (head)",
    "clickscore_score_bin_fraction": "source",
}


def exported_series_names() -> set[str]:
    """Series names the worker's bundle exposes (counters as ``_total``, histograms expanded)."""
    names: set[str] = set()
    for family in Metrics.create(CollectorRegistry()).registry.collect():
        if family.type == "counter":
            names.add(family.name + "_total")
        elif family.type == "histogram":
            names.update(family.name + s for s in ("_bucket", "_sum", "_count"))
        else:
            names.add(family.name)
    return names


def _grafana_to_promql(expr: str) -> str:
    """Replace Grafana's variables with values Prometheus can parse."""
    return expr.replace("$__rate_interval", "5m").replace("$job", "clickscore")


def test_dashboard_parses_with_unique_ids_and_a_sane_grid() -> None:
    dash = json.loads(DASHBOARD_FILE.read_text(encoding="utf-8"))
    assert dash["uid"] == "clickscore"
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dash["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24, panel["title"]
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
            assert panel["targets"], panel["title"]
    variables = {v["name"] for v in dash["templating"]["list"]}
    assert {"datasource", "job"} <= variables


def test_dashboard_promql_is_valid(tmp_path: Path) -> None:
    """promtool parses every dashboard query (as recording rules in a scratch file)."""
    exprs = dashboard_exprs()
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {"record": f"dashboard:query_{i}", "expr": _grafana_to_promql(e)}
                    for i, e in enumerate(exprs)
                ],
            }
        ]
    }
    path = tmp_path / "dashboard.rules.yml"
    path.write_text(yaml.safe_dump(rules), encoding="utf-8")
    done = run_tool([tool("promtool"), "check", "rules", str(path)])
    assert f"SUCCESS: {len(exprs)} rules found" in done.stdout


def test_dashboard_and_rules_query_only_exported_metrics() -> None:
    exported = exported_series_names()
    queried = {
        m for e in dashboard_exprs() + list(rule_exprs().values()) for m in METRIC_NAME.findall(e)
    }
    assert queried, "no clickscore metric found in the dashboard or rules"
    assert queried - exported == set()


def test_dashboard_shows_every_required_view() -> None:
    exprs = dashboard_exprs()
    for metric, fragment in REQUIRED_VIEWS.items():
        assert any(metric in e and fragment in e for e in exprs), metric


def test_grafana_provisioning_matches_the_compose_mounts() -> None:
    prov = DEPLOY / "grafana" / "provisioning"
    (source,) = load_yaml_docs(prov / "datasources" / "prometheus.yml")[0]["datasources"]
    assert source["type"] == "prometheus"
    assert source["url"] == "http://prometheus:9090"
    (provider,) = load_yaml_docs(prov / "dashboards" / "clickscore.yml")[0]["providers"]
    grafana = load_yaml_docs(COMPOSE_FILE)[0]["services"]["grafana"]
    mounts = dict(v.rsplit(":", 2)[:2] for v in grafana["volumes"])
    assert mounts["./grafana/dashboards"] == provider["options"]["path"]
    assert mounts["./grafana/provisioning"] == "/etc/grafana/provisioning"
