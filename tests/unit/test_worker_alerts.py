"""The alert policy (threshold, hysteresis, cooldown in event time), ids, pseudonyms, records."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest

import schemas
from worker.core.alerts import alert_id, alert_record, decide, pseudonym
from worker.core.deadletter import (
    MAX_KEY_BYTES,
    MAX_VALUE_BYTES,
    dead_letter_key,
    dead_letter_record,
)
from worker.core.state import AlertArm

POLICY = {"threshold": 0.8, "hysteresis": 0.1, "cooldown_ms": 60_000}


def _run(scores: list[tuple[int, float]]) -> list[int]:
    """Feed (time ms, score) pairs; return the times at which an alert fired."""
    arm, fired = AlertArm(), []
    for now, score in scores:
        arm, fire = decide(arm, score, now_ms=now, **POLICY)  # type: ignore[arg-type]
        if fire:
            fired.append(now)
    return fired


def test_fires_once_until_rearmed_below_threshold_minus_hysteresis() -> None:
    # 0.75 is below the threshold but inside the hysteresis band: no re-arm, no second alert.
    assert _run([(0, 0.9), (100_000, 0.75), (200_000, 0.95)]) == [0]
    # 0.65 < 0.8 - 0.1 re-arms; the next high score (out of cooldown) fires again.
    assert _run([(0, 0.9), (100_000, 0.65), (200_000, 0.95)]) == [0, 200_000]


def test_cooldown_is_in_event_time() -> None:
    # Re-armed at 10 s, but the cooldown (60 s from the first alert) holds until 60 s.
    assert _run([(0, 0.9), (10_000, 0.1), (30_000, 0.9), (70_000, 0.9)]) == [0, 70_000]


def test_below_threshold_never_fires() -> None:
    assert _run([(i * 1000, 0.79) for i in range(10)]) == []


def test_alert_id_is_deterministic_and_per_trigger() -> None:
    a = alert_id("churn", "u1", "event", "e9")
    assert a == alert_id("churn", "u1", "event", "e9")
    assert a == hashlib.sha256(b"churn|u1|event|e9").hexdigest()[:32]
    assert a != alert_id("churn", "u1", "sweep", "e9")
    assert a != alert_id("propensity", "u1", "event", "e9")


@pytest.mark.parametrize("key", [b"", b"secret-key"])
def test_alert_record_matches_schema_and_hides_the_id_with_a_key(key: bytes) -> None:
    doc = alert_record(
        alert_type="propensity",
        user_id="u1",
        trigger="event",
        event_id="e1",
        event_ts_ms=1_767_225_600_000,
        score=0.91,
        threshold=0.8,
        model_version="m1",
        key=key,
    )
    schemas.validate("alert", doc)
    # Derived from the raw id (a consumer of either topic dedupes on it), under the key if any.
    assert doc["alert_id"] == alert_id("propensity", "u1", "event", "e1", key)
    if key:
        assert doc["user_id"] == pseudonym("u1", key) and doc["user_id_pseudonymized"]
        assert "u1" not in doc["user_id"]
    else:
        assert doc["user_id"] == "u1" and not doc["user_id_pseudonymized"]


def _dictionary_attack(doc: dict[str, object], candidates: list[str], key: bytes) -> list[str]:
    """User ids whose alert id under ``key`` equals the alert's: what an attacker recovers."""
    fields = (doc["alert_type"], doc["trigger"], doc["event_id"])
    return [
        user
        for user in candidates
        if alert_id(fields[0], user, fields[1], fields[2], key) == doc["alert_id"]  # type: ignore[arg-type]
    ]


def test_a_dictionary_attack_on_a_pseudonymized_alert_recovers_no_user_id() -> None:
    """Finding: an unkeyed hash of (type, raw id, trigger, event id) gave the raw id back."""
    secret = b"k" * 32
    doc = alert_record(alert_type="churn", user_id="customer-0048213", trigger="event",
                       event_id="evt-77", event_ts_ms=1_767_225_600_000, score=0.9,
                       threshold=0.5, model_version="m1", key=secret)  # fmt: skip
    candidates = [f"customer-{i:07d}" for i in range(100_000)]
    assert "customer-0048213" not in str(doc)
    # Without the key: the published unkeyed formula, and keys an attacker would guess first.
    for guess in (b"", b"REPLACE-ME", b"secret", b"clickscore"):
        assert _dictionary_attack(doc, candidates, guess) == [], guess
    # The search itself works: whoever holds the key finds the one user.
    assert _dictionary_attack(doc, candidates, secret) == ["customer-0048213"]
    again = alert_record(alert_type="churn", user_id="customer-0048213", trigger="event",
                         event_id="evt-77", event_ts_ms=1_767_225_600_000, score=0.7,
                         threshold=0.5, model_version="m1", key=secret)  # fmt: skip
    assert again["alert_id"] == doc["alert_id"]  # still deterministic: consumers dedupe


def test_dead_letter_record_matches_schema_and_truncates_big_values() -> None:
    big = b"x" * (MAX_VALUE_BYTES + 10)
    doc = dead_letter_record(
        reason="too_large",
        detail="too big",
        topic="t",
        partition=3,
        offset=42,
        timestamp_ms=None,
        key=None,
        value=big,
    )
    schemas.validate("dead_letter", doc)
    assert doc["value_truncated"] is True
    assert base64.b64decode(doc["value_b64"]) == big[:MAX_VALUE_BYTES]
    assert doc["source"] == {"topic": "t", "partition": 3, "offset": 42, "timestamp_ms": None}


def test_dead_letter_size_limits_agree_with_the_schema() -> None:
    """The schema said values were cut at 1 MiB while the code cut at 64 KiB."""
    props = schemas.load("dead_letter")["properties"]
    for field, limit in (("value_b64", MAX_VALUE_BYTES), ("key_b64", MAX_KEY_BYTES)):
        assert props[field]["maxLength"] == len(base64.b64encode(b"x" * limit)), field
        assert f"{limit // 1024} KiB" in props[field]["description"], field


def test_a_dead_letter_of_a_1_mb_key_and_value_fits_one_record() -> None:
    """Key and value together stay far under the producer's and broker's 1 MB record limit."""
    key, value = b"k" * 1_000_000, b"v" * 1_000_000
    doc = dead_letter_record(reason="not_json", detail="d" * 5000, topic="t", partition=0,
                             offset=1, timestamp_ms=None, key=key, value=value)  # fmt: skip
    schemas.validate("dead_letter", doc)
    assert doc["key_truncated"] and doc["value_truncated"]
    assert base64.b64decode(doc["key_b64"]) == key[:MAX_KEY_BYTES] == dead_letter_key(key)
    size = len(dead_letter_key(key) or b"") + len(json.dumps(doc).encode())
    assert size < 100_000
