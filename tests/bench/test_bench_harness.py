"""The benchmark harness runs in its tiny configuration and writes results that match its schema.

No timing is asserted here: speed is reported by ``python -m bench``, never tested.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import onnxruntime as ort
import pytest
from jsonschema import ValidationError

from bench.__main__ import main
from bench.report import Result, markdown, validate


@pytest.fixture(scope="module")
def scoring_doc(tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("bench")
    assert main(["--out", str(out), "scoring", "--tiny"]) == 0
    assert (out / "scoring.md").read_text().startswith("# bench: scoring")
    return json.loads((out / "scoring.json").read_text())


def test_scoring_result_matches_schema(scoring_doc: dict) -> None:
    validate(scoring_doc)
    assert scoring_doc["machine"]["cpu_cores"] >= 1
    assert scoring_doc["machine"]["versions"]["onnxruntime"] == ort.__version__


def test_scoring_covers_every_case(scoring_doc: dict) -> None:
    cases = {r["case"] for r in scoring_doc["results"]}
    assert {"step graph", "naive rescore", "pytorch eager step", "onnxruntime step"} <= cases
    batches = {r["params"]["batch"] for r in scoring_doc["results"] if r["case"] == "step graph"}
    assert batches == set(scoring_doc["config"]["batches"])
    windows = scoring_doc["config"]["windows"]
    assert {
        f"naive_w{w}_over_step_b{scoring_doc['config']['reference_batch']}" for w in windows
    } <= set(scoring_doc["ratios"])


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d.pop("machine"),
        lambda d: d["results"].clear(),
        lambda d: d["results"][0].update(value=-1.0),
        lambda d: d["machine"]["versions"].pop("onnxruntime"),
        lambda d: d.update(created_at="yesterday"),
    ],
    ids=["no-machine", "no-results", "negative-value", "no-ort-version", "bad-date"],
)
def test_schema_rejects_broken_results(scoring_doc: dict, mutate) -> None:
    doc = copy.deepcopy(scoring_doc)
    mutate(doc)
    with pytest.raises(ValidationError):
        validate(doc)


def test_write_refuses_an_invalid_result(tmp_path: Path) -> None:
    with pytest.raises(ValidationError):
        Result("scoring", {}).write(tmp_path)  # no rows: nothing was measured
    assert not list(tmp_path.iterdir())


def test_markdown_lists_every_row(scoring_doc: dict) -> None:
    table_rows = [line for line in markdown(scoring_doc).splitlines() if line.startswith("| ")]
    # header rows of the two tables + one line per result + one per ratio
    assert len(table_rows) == 2 + len(scoring_doc["results"]) + len(scoring_doc["ratios"])


def test_cuda_device_runs_or_fails_clearly(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    code = main(["--out", str(tmp_path), "scoring", "--tiny", "--device", "cuda"])
    if "CUDAExecutionProvider" in ort.get_available_providers():
        assert code == 0
        assert json.loads((tmp_path / "scoring.json").read_text())["config"]["device"] == "cuda"
    else:
        assert code == 2
        assert "--device cuda" in capsys.readouterr().err
        assert not (tmp_path / "scoring.json").exists()


@pytest.mark.parametrize(
    ("name", "cases"),
    [
        (
            "state",
            {
                "encoded state",
                "decode + encode",
                "recurrent tensors alone",
                "dict of encoded states",
            },
        ),
        (
            "sweep",
            {
                "no sweep",
                "one-piece sweep (before)",
                "chunked sweep (now)",
                "chunked sweep, memory:// key copy",
            },
        ),
        pytest.param("training", {"train --preset tiny"}, marks=pytest.mark.slow),
    ],
)
def test_other_benchmarks_run_tiny_and_match_the_schema(
    tmp_path: Path, name: str, cases: set[str]
) -> None:
    assert main(["--out", str(tmp_path), name, "--tiny"]) == 0
    doc = json.loads((tmp_path / f"{name}.json").read_text())
    validate(doc)
    assert doc["name"] == name
    assert {r["case"] for r in doc["results"]} == cases


@pytest.mark.kafka
@pytest.mark.slow
def test_kafka_benchmark_runs_tiny_against_the_session_broker(
    tmp_path: Path, kafka_bootstrap: str
) -> None:
    assert main(["--out", str(tmp_path), "kafka", "--tiny", "--bootstrap", kafka_bootstrap]) == 0
    doc = json.loads((tmp_path / "kafka.json").read_text())
    validate(doc)
    metrics = {(r["case"], r["metric"]) for r in doc["results"]}
    assert ("clickscore worker (saturation)", "throughput") in metrics
    assert {("end-to-end latency", f"p{q}") for q in (50, 95, 99)} <= metrics
    # Every event fed at the latency load came back scored: nothing lost on the way.
    for r in doc["results"]:
        if r["case"] == "end-to-end latency":
            assert r["params"]["scored"] == r["params"]["events"]
