"""One benchmark's result: measured rows, ratios from the same run, and its JSON + Markdown files.

The JSON is checked against ``bench/result.schema.json`` before it is written, so a harness change
that breaks the format fails in the guard tests rather than in someone's plot script.
"""

from __future__ import annotations

import json
import shlex
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker

from bench.machine import describe

SCHEMA_PATH = Path(__file__).resolve().parent / "result.schema.json"
RESULTS_DIR = Path(__file__).resolve().parent / "results"


@dataclass
class Result:
    """Rows and ratios of one benchmark run."""

    name: str
    config: dict[str, Any]
    rows: list[dict[str, Any]] = field(default_factory=list)
    ratios: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def add(self, case: str, metric: str, value: float, unit: str, **params: Any) -> None:
        """Record one measured number."""
        self.rows.append(
            {"case": case, "metric": metric, "value": float(value), "unit": unit, "params": params}
        )

    def to_json(self) -> dict[str, Any]:
        """The document ``result.schema.json`` describes."""
        return {
            "schema_version": 1,
            "name": self.name,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
            "command": shlex.join(["python", "-m", "bench", *sys.argv[1:]]),
            "machine": describe(),
            "config": self.config,
            "results": self.rows,
            "ratios": self.ratios,
            "notes": self.notes,
        }

    def write(self, out_dir: Path = RESULTS_DIR) -> tuple[Path, Path]:
        """Validate, then write ``<name>.json`` and ``<name>.md``; return both paths."""
        doc = self.to_json()
        validate(doc)
        out_dir.mkdir(parents=True, exist_ok=True)
        json_path, md_path = out_dir / f"{self.name}.json", out_dir / f"{self.name}.md"
        json_path.write_text(json.dumps(doc, indent=2) + "\n", "utf-8")
        md_path.write_text(markdown(doc), "utf-8")
        return json_path, md_path


def validate(doc: dict[str, Any]) -> None:
    """Raise ``jsonschema.ValidationError`` when ``doc`` is not a valid result."""
    schema = json.loads(SCHEMA_PATH.read_text("utf-8"))
    Draft202012Validator(schema, format_checker=FormatChecker()).validate(doc)


def _fmt(value: float) -> str:
    if value == 0 or 0.01 <= abs(value) < 1e6:
        return f"{value:,.3g}" if abs(value) < 100 else f"{value:,.0f}"
    return f"{value:.3g}"


def markdown(doc: dict[str, Any]) -> str:
    """A short table for humans (and the README)."""
    m = doc["machine"]
    versions = ", ".join(f"{k} {v}" for k, v in m["versions"].items() if v)
    lines = [
        f"# bench: {doc['name']}",
        "",
        f"- date: {doc['created_at']}",
        f"- command: `{doc['command']}`",
        f"- machine: {m['cpu_model']}, {m['cpu_cores']} cores, "
        f"{m['memory_bytes'] / 2**30:.1f} GiB, Python {m['python']}, GPU {m.get('gpu') or 'none'}",
        f"- versions: {versions}",
        "",
        "| case | metric | value | unit | params |",
        "|---|---|---:|---|---|",
    ]
    for r in doc["results"]:
        params = ", ".join(f"{k}={v}" for k, v in r.get("params", {}).items())
        lines.append(
            f"| {r['case']} | {r['metric']} | {_fmt(r['value'])} | {r['unit']} | {params} |"
        )
    if doc["ratios"]:
        lines += ["", "| ratio (same run) | value |", "|---|---:|"]
        lines += [f"| {k} | {v:.3g} |" for k, v in doc["ratios"].items()]
    if doc.get("notes"):
        lines += ["", *(f"- {n}" for n in doc["notes"])]
    return "\n".join(lines) + "\n"
