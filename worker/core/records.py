"""What goes into and comes out of one micro-batch (plain dataclasses, no logic)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from schemas.event import Reason
from worker.core.alerts import AlertType
from worker.core.state import UserState


@dataclass(frozen=True)
class Record:
    """One raw Kafka record as consumed (key and value undecoded, so a dead letter keeps them)."""

    key: bytes | None
    value: bytes | None
    topic: str
    partition: int
    offset: int
    timestamp_ms: int | None
    control: bytes | None = None  # the ``clickscore-control`` header (worker/core/control.py)


@dataclass(frozen=True)
class PipelineConfig:
    """The settings the pure core needs (a subset of :class:`worker.settings.Settings`).

    Its defaults equal the worker's (tests/unit/test_worker_pipeline.py checks it).
    """

    max_event_bytes: int = 65536
    dedup_window: int = 16
    cooldown_ms: int = 1_800_000
    hysteresis: float = 0.05
    pseudonym_key: bytes = b""
    emit_scores: bool = False


@dataclass(frozen=True)
class DeadLetter:
    """A record that cannot be scored: its dead-letter document and why."""

    index: int
    reason: Reason
    doc: dict[str, Any]


@dataclass(frozen=True)
class Rekey:
    """A valid event under the wrong key: re-sent to the events topic keyed by its user id."""

    index: int
    user_id: str
    value: bytes


@dataclass(frozen=True)
class Emit:
    """A record to send: an alert (propensity/churn) or a score; ``source_ts_ms`` for latency."""

    kind: AlertType | str
    key: str
    doc: dict[str, Any]
    source_ts_ms: int | None


@dataclass
class BatchResult:
    """What one batch produced; ``writes`` maps user -> (new state, index of its last event).

    ``deletes`` maps user -> index of the control record that deletes its state; a write of the
    same user comes from a later event (applied after the delete).
    """

    dead_letters: list[DeadLetter] = field(default_factory=list)
    rekeys: list[Rekey] = field(default_factory=list)
    writes: dict[str, tuple[UserState, int]] = field(default_factory=dict)
    deletes: dict[str, int] = field(default_factory=dict)
    deleted: dict[str, int] = field(default_factory=dict)  # action -> users deleted
    controls: dict[str, int] = field(default_factory=dict)  # action -> records (applied or not)
    alerts: list[Emit] = field(default_factory=list)
    scores: list[Emit] = field(default_factory=list)
    outcomes: list[Emit] = field(default_factory=list)  # alerts.outcomes records
    scored: int = 0
    duplicates: int = 0
    resets: int = 0
    new_users: int = 0
    wave_sizes: list[int] = field(default_factory=list)
    wave_seconds: list[float] = field(default_factory=list)
    # Per wave: x (B, F), p_purchase (B,), p_churn (B,) (the drift windows read them).
    scored_waves: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = field(default_factory=list)


LoadState = Callable[[str, int], UserState | None]
