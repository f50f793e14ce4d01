"""``python -m bench recovery --tiny`` runs against the session broker and writes a valid result.

Nothing about speed is asserted: the numbers are reported by the bench, never tested.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.__main__ import main
from bench.report import validate

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


def test_recovery_bench_tiny_writes_every_case(kafka_bootstrap: str, tmp_path: Path) -> None:
    argv = ["--out", str(tmp_path), "recovery", "--tiny", "--no-handover"]
    assert main([*argv, "--bootstrap", kafka_bootstrap]) == 0
    doc = json.loads((tmp_path / "recovery.json").read_text())
    validate(doc)
    cases = {r["case"] for r in doc["results"]}
    assert {
        "empty-table start",
        "naive rebuild (confluent-kafka -> dict)",
        "cold start, empty RocksDB",
        "cold start, Faust's own recovery",
        "warm restart, same RocksDB dir",
    } <= cases
    assert {"cold_recovery_over_naive_2000", "cold_start_faust_over_preload_2000"} <= set(
        doc["ratios"]
    )
