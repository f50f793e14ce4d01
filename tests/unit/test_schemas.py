"""The shipped example documents: valid ones pass their schema, broken ones fail it, for a reason.

Examples live in schemas/examples/ as ``<schema>.<what>.json`` (broken ones under invalid/); the
event examples also go through the fast decoder, which must agree with the schema.
"""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

import schemas
from schemas.event import EventError, decode_event

EXAMPLES = Path(schemas.__file__).parent / "examples"

VALID = [(name, file) for name in schemas.SCHEMA_NAMES for file in schemas.examples(name)]
INVALID = [
    (name, file) for name in schemas.SCHEMA_NAMES for file in schemas.examples(name, valid=False)
]

# Why each broken event is broken, as the decoder must say it (its dead-letter reason).
EVENT_REASONS = {
    "clickstream_event.missing_user_id.json": "schema",
    "clickstream_event.empty_user_id.json": "schema",
    "clickstream_event.long_user_id.json": "schema",
    "clickstream_event.bad_timestamp.json": "bad_timestamp",
    "clickstream_event.timestamp_without_offset.json": "bad_timestamp",
    "clickstream_event.timestamp_negative_ms.json": "bad_timestamp",
    "clickstream_event.timestamp_fractional_ms.json": "bad_timestamp",
    "clickstream_event.negative_price.json": "schema",
    "clickstream_event.price_as_string.json": "schema",
    "clickstream_event.fractional_quantity.json": "schema",
    "clickstream_event.unknown_event_type.json": "unknown_event_type",
    "clickstream_event.event_type_wrong_case.json": "unknown_event_type",
    "clickstream_event.not_object.json": "not_object",
}


def _raw(doc: Any) -> bytes:
    return json.dumps(doc).encode()


@pytest.mark.parametrize("name", schemas.SCHEMA_NAMES)
def test_schema_is_a_valid_draft_2020_12_schema(name: schemas.SchemaName) -> None:
    Draft202012Validator.check_schema(schemas.load(name))
    assert schemas.schema_version(name) == 1


def test_every_example_file_belongs_to_a_schema() -> None:
    files = {p.name for p in EXAMPLES.glob("*.json")}
    broken = {p.name for p in (EXAMPLES / "invalid").glob("*.json")}
    assert files == {file for _, file in VALID}
    assert broken == {file for _, file in INVALID}
    for name in schemas.SCHEMA_NAMES:
        assert schemas.examples(name), f"no valid example for {name}"
        assert schemas.examples(name, valid=False), f"no broken example for {name}"
    assert len(schemas.examples("clickstream_event")) >= 2


@pytest.mark.parametrize(("name", "file"), VALID)
def test_valid_example_validates(name: schemas.SchemaName, file: str) -> None:
    schemas.validate(name, schemas.examples(name)[file])


@pytest.mark.parametrize(("name", "file"), INVALID)
def test_broken_example_is_rejected(name: schemas.SchemaName, file: str) -> None:
    with pytest.raises(schemas.SchemaError):
        schemas.validate(name, schemas.examples(name, valid=False)[file])


@pytest.mark.parametrize("file", sorted(schemas.examples("clickstream_event")))
def test_valid_event_example_decodes_to_its_time(file: str) -> None:
    doc = schemas.examples("clickstream_event")[file]
    event = decode_event(_raw(doc))
    stamp = doc["timestamp"]
    expected = (
        stamp if isinstance(stamp, int) else round(datetime.fromisoformat(stamp).timestamp() * 1000)
    )
    assert event.ts_ms == expected
    assert (event.event_id, event.user_id, event.event_type) == (
        doc["event_id"],
        doc["user_id"],
        doc["event_type"],
    )


def test_rfc3339_example_keeps_milliseconds_across_its_offset() -> None:
    event = decode_event(
        _raw(schemas.examples("clickstream_event")["clickstream_event.rfc3339.json"])
    )
    assert event.ts_ms == 1767323045250  # 2026-01-02T05:04:05.250+02:00 = 03:04:05.250Z


@pytest.mark.parametrize("file", sorted(schemas.examples("clickstream_event", valid=False)))
def test_broken_event_example_is_a_dead_letter_with_its_reason(file: str) -> None:
    doc = schemas.examples("clickstream_event", valid=False)[file]
    with pytest.raises(EventError) as caught:
        decode_event(_raw(doc))
    assert caught.value.reason == EVENT_REASONS[file]


@pytest.mark.parametrize("file", sorted(schemas.examples("alert")))
def test_alert_example_id_follows_the_contract(file: str) -> None:
    alert = schemas.examples("alert")[file]
    key = f"{alert['alert_type']}|{alert['user_id']}|{alert['trigger']}|{alert['event_id']}"
    assert alert["alert_id"] == hashlib.sha256(key.encode()).hexdigest()[:32]


@pytest.mark.parametrize("file", sorted(schemas.examples("dead_letter")))
def test_dead_letter_example_carries_bytes_that_fail_for_its_reason(file: str) -> None:
    record = schemas.examples("dead_letter")[file]
    with pytest.raises(EventError) as caught:
        decode_event(base64.b64decode(record["value_b64"]))
    assert caught.value.reason == record["reason"]


def test_manifest_example_names_every_state_tensor_in_the_step_graph() -> None:
    manifest = schemas.examples("manifest")["manifest.gru.json"]
    step = manifest["graphs"]["step"]
    for name, shape in manifest["state"].items():
        assert step["inputs"][name] == [-1, *shape]
        assert step["outputs"][f"{name}_out"] == [-1, *shape]
    assert step["inputs"]["x"] == [-1, manifest["feature_dim"]]
    assert {g["file"] for g in manifest["graphs"].values()} <= set(manifest["files"])


def test_schema_error_names_the_failing_path() -> None:
    alert = schemas.examples("alert", valid=False)["alert.score_above_one.json"]
    with pytest.raises(schemas.SchemaError, match=r"^score: 1\.5 is greater than"):
        schemas.validate("alert", alert)
