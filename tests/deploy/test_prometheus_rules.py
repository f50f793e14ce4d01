"""promtool accepts our scrape config and rules, their unit tests pass, every alert is covered.

Real promtool (Debian's prometheus package, installed by ``make setup``); a missing promtool fails.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from tests.deploy.deployfiles import (
    OPERATIONS_DOC,
    PROMETHEUS_DIR,
    RULES_FILE,
    RULES_TEST_FILE,
    load_yaml_docs,
    rule_exprs,
    run_tool,
    tool,
)


def test_promtool_check_config() -> None:
    """prometheus.yml parses and its rule files resolve and parse."""
    done = run_tool([tool("promtool"), "check", "config", "prometheus.yml"], cwd=PROMETHEUS_DIR)
    assert "SUCCESS" in done.stdout


def test_promtool_check_rules() -> None:
    done = run_tool([tool("promtool"), "check", "rules", str(RULES_FILE)])
    groups = load_yaml_docs(RULES_FILE)[0]["groups"]  # alerts and recording rules
    assert f"SUCCESS: {sum(len(g['rules']) for g in groups)} rules found" in done.stdout


def test_promtool_test_rules() -> None:
    """The unit tests beside the rules (firing and silent cases for every alert) pass."""
    done = run_tool(
        [tool("promtool"), "test", "rules", RULES_TEST_FILE.name], cwd=RULES_FILE.parent
    )
    assert "SUCCESS" in done.stdout


def test_promtool_test_rules_can_fail(tmp_path: Path) -> None:
    """A rule changed under its tests makes ``promtool test rules`` fail: the tests bite."""
    shutil.copy(RULES_TEST_FILE, tmp_path / RULES_TEST_FILE.name)
    text = RULES_FILE.read_text(encoding="utf-8")
    assert 'expr: up{job="clickscore"} == 0' in text
    (tmp_path / RULES_FILE.name).write_text(
        text.replace('expr: up{job="clickscore"} == 0', 'expr: up{job="clickscore"} == 2'),
        encoding="utf-8",
    )
    done = subprocess.run(
        [tool("promtool"), "test", "rules", RULES_TEST_FILE.name],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0
    assert "ClickscoreWorkerDown" in done.stdout + done.stderr


def test_every_alert_has_a_firing_and_a_silent_case() -> None:
    tests = load_yaml_docs(RULES_TEST_FILE)[0]["tests"]
    firing: set[str] = set()
    silent: set[str] = set()
    for case in tests:
        for check in case.get("alert_rule_test", []):
            (firing if check.get("exp_alerts") else silent).add(check["alertname"])
    alerts = set(rule_exprs())
    assert alerts - firing == set(), "alerts with no firing test case"
    assert alerts - silent == set(), "alerts with no silent test case"


def test_every_alert_has_severity_summary_and_a_runbook_section() -> None:
    """Each alert links a docs/operations.md section that exists (heading = the alert name)."""
    doc = OPERATIONS_DOC.read_text(encoding="utf-8")
    headings = {
        re.sub(r"[^a-z0-9]", "", line.lstrip("#").strip().lower())
        for line in doc.splitlines()
        if line.startswith("#")
    }
    groups = load_yaml_docs(RULES_FILE)[0]["groups"]
    for rule in (r for g in groups for r in g["rules"] if "alert" in r):
        name = rule["alert"]
        assert rule["labels"]["severity"] in {"page", "warning"}, name
        assert rule["annotations"]["summary"], name
        runbook = rule["annotations"]["runbook"]
        assert runbook.startswith(f"docs/operations.md#{name.lower()}."), name
        assert name.lower() in headings, f"docs/operations.md has no section for {name}"
