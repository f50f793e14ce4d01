"""The alert policy (thresholds, hysteresis, cooldown in event time) and the alert record.

Pure functions: the same events give the same alerts, live or replayed.

>>> arm, fire = decide(AlertArm(), 0.9, threshold=0.8, hysteresis=0.05, cooldown_ms=1000, now_ms=0)
>>> fire, arm.armed
(True, False)
>>> decide(arm, 0.9, threshold=0.8, hysteresis=0.05, cooldown_ms=1000, now_ms=5000)[1]
False
>>> arm, _ = decide(arm, 0.7, threshold=0.8, hysteresis=0.05, cooldown_ms=1000, now_ms=6000)
>>> arm.armed
True
"""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Any, Literal

from schemas.event import format_timestamp
from worker.core.state import AlertArm

AlertType = Literal["propensity", "churn"]
Trigger = Literal["event", "sweep"]
ALERT_SCHEMA_VERSION = 1


def decide(
    arm: AlertArm,
    score: float,
    *,
    threshold: float,
    hysteresis: float,
    cooldown_ms: int,
    now_ms: int,
) -> tuple[AlertArm, bool]:
    """Next arm state and whether to fire: armed, out of cooldown and score >= threshold."""
    if not arm.armed and score < threshold - hysteresis:
        arm = AlertArm(armed=True, last_fired_ms=arm.last_fired_ms)
    cooled = arm.last_fired_ms is None or now_ms - arm.last_fired_ms >= cooldown_ms
    if arm.armed and cooled and score >= threshold:
        return AlertArm(armed=False, last_fired_ms=now_ms), True
    return arm, False


def may_fire(
    arm: AlertArm, score: float, *, threshold: float, cooldown_ms: int, now_ms: int
) -> bool:
    """The read-only check the churn sweep uses (it cannot write the user's arm state)."""
    cooled = arm.last_fired_ms is None or now_ms - arm.last_fired_ms >= cooldown_ms
    return arm.armed and cooled and score >= threshold


def alert_id(
    alert_type: AlertType, user_id: str, trigger: Trigger, event_id: str, key: bytes = b""
) -> str:
    """Deterministic id: a redelivered triggering event yields the same id (consumers dedupe).

    With a pseudonymization key it is an HMAC under that key: an unkeyed hash of the raw user id
    (beside the event id, which travels in clear) let a dictionary search over plausible user ids
    undo the pseudonym. Without a key the alert carries the raw id anyway.
    """
    text = f"{alert_type}|{user_id}|{trigger}|{event_id}".encode()
    if key:
        return hmac.new(key, text, hashlib.sha256).hexdigest()[:32]
    return hashlib.sha256(text).hexdigest()[:32]


def pseudonym(user_id: str, key: bytes) -> str:
    """HMAC-SHA256 of the user id (hex): stable per key, not reversible without it."""
    return hmac.new(key, user_id.encode("utf-8"), hashlib.sha256).hexdigest()


def public_user_id(user_id: str, key: bytes) -> str:
    """What leaves the worker as the user id: the pseudonym when a key is set, else the id."""
    return pseudonym(user_id, key) if key else user_id


def alert_record(
    *,
    alert_type: AlertType,
    user_id: str,
    trigger: Trigger,
    event_id: str,
    event_ts_ms: int,
    score: float,
    threshold: float,
    model_version: str,
    key: bytes,
    idle_seconds: float | None = None,
    emitted_ms: int | None = None,
    reasons: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The alert document of schemas/alert.schema.json (``reasons``: worker/core/reasons.py)."""
    emitted = int(time.time() * 1000) if emitted_ms is None else emitted_ms
    return {
        "schema_version": ALERT_SCHEMA_VERSION,
        "alert_id": alert_id(alert_type, user_id, trigger, event_id, key),
        "alert_type": alert_type,
        "user_id": public_user_id(user_id, key),
        "user_id_pseudonymized": bool(key),
        "score": min(1.0, max(0.0, float(score))),
        "threshold": float(threshold),
        "model_version": model_version,
        "trigger": trigger,
        "event_id": event_id,
        "event_time": format_timestamp(event_ts_ms),
        "emitted_at": format_timestamp(emitted),
        "idle_seconds": idle_seconds,
        "reasons": reasons or [],
    }
