"""The metrics bundle has exactly the names of docs/contracts.md and no user-id labels."""

from __future__ import annotations

import re
from pathlib import Path

from prometheus_client import CollectorRegistry

from worker.metrics import Metrics

CONTRACTS = Path(__file__).resolve().parents[2] / "docs" / "contracts.md"


def _contract_metrics() -> dict[str, str]:
    text = CONTRACTS.read_text()
    section = text.split("## Metrics", 1)[1].split("\n## ", 1)[0]
    return dict(re.findall(r"^\| `(clickscore_[a-z_]+)` \| ([a-z]+)", section, flags=re.M))


def _registered(registry: CollectorRegistry) -> dict[str, str]:
    found = {}
    for family in registry.collect():
        name = family.name + ("_total" if family.type == "counter" else "")
        found[name] = family.type
    return found


def test_bundle_matches_the_contract_table() -> None:
    m = Metrics.create(CollectorRegistry())
    m.set_model("v1", 1, "CPUExecutionProvider")
    assert _registered(m.registry) == _contract_metrics()


def test_model_info_shows_only_the_serving_model() -> None:
    m = Metrics.create(CollectorRegistry())
    m.set_model("v1", 1, "CPUExecutionProvider")
    m.set_model("v2", 1, "CPUExecutionProvider")
    text = m.exposition().decode()
    assert 'model_version="v2"' in text and 'model_version="v1"' not in text


def test_two_bundles_do_not_share_state() -> None:
    a, b = Metrics.create(CollectorRegistry()), Metrics.create(CollectorRegistry())
    a.events_scored.inc(5)
    assert b.registry.get_sample_value("clickscore_events_scored_total") == 0
    assert a.registry.get_sample_value("clickscore_events_scored_total") == 5
    for family in a.registry.collect():
        for sample in family.samples:
            assert "user" not in " ".join(sample.labels)
