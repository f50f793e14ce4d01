"""The churn sweep's pure core: re-score users who went silent, with the churn-head graph.

Clock rule: the sweep's "now" is the newest event time this worker has seen plus the wall time
since it saw it (:class:`SweepClock`), and never later than the worker's own wall clock. Live, that
is the wall clock (minus pipeline delay); on a replay of old data it follows the data, so a replay
does not mark every user idle at once; and a producer whose clock runs ahead cannot move it into
the future, where every other user would look idle (a flood of churn alerts).

A silence is scored at the checkpoints of :mod:`training.sweep_rule` (the idle time, doubling
while under the churn horizon), the largest one reached, not at the raw elapsed time: training
counts the same points when it sets the churn threshold, so the alert budget covers the sweep's
alerts too.

A timer cannot write the table (Faust needs a current event to pick the partition), so the sweep
remembers in memory which ``(user, last_event_id)`` already got a sweep alert. After a restart that
memory is empty and a repeat alert may be sent: it carries the same ``alert_id`` (derived from the
user's last event id), so consumers dedupe it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np

from schemas.event import MAX_TS_MS, MIN_TS_MS
from training.sweep_rule import checkpoints, scored_elapsed
from worker.core.alerts import alert_record, may_fire
from worker.core.model_store import Model
from worker.core.records import Emit, PipelineConfig
from worker.core.state import UserState, state_arrays


class SweepClock:
    """Newest event time seen, advanced by wall time since; the sweep's notion of now (ms)."""

    def __init__(self, wall: Callable[[], float] = time.time) -> None:
        self._wall = wall
        self._newest_ms: int | None = None
        self._seen_at = 0.0

    def observe(self, event_ts_ms: int) -> None:
        """Note an event time; only a newer one moves the clock."""
        if self._newest_ms is None or event_ts_ms > self._newest_ms:
            self._newest_ms = event_ts_ms
            self._seen_at = self._wall()

    def now_ms(self) -> int | None:
        """None before any event: the sweep then has nothing to compare against."""
        if self._newest_ms is None:
            return None
        wall = self._wall()
        return min(self._newest_ms + int((wall - self._seen_at) * 1000), int(wall * 1000))


def idle_mismatch(model: Model, idle_s: float) -> str | None:
    """A warning when the model's churn threshold counted a sweep from another idle time.

    Training replays the sweep from its assumed idle time (the manifest's first checkpoint); a
    worker sweeping from another one sends more or fewer churn alerts than the budget allows.
    """
    rule = (model.manifest.get("threshold_rule") or {}).get("churn")
    points = rule.get("sweep_checkpoints_seconds") if isinstance(rule, dict) else None
    if not points or float(points[0]) == idle_s:
        return None  # the same rule, or a model from before the sweep was counted
    return (
        f"CLICKSCORE_CHURN_IDLE_SECONDS={idle_s:g}, but model {model.version} set its churn "
        f"threshold for a sweep from {float(points[0]):g} s of silence: its churn alerts will "
        "not match the alert budget"
    )


@dataclass
class SweepResult:
    """Alerts from one sweep, and how many users were looked at / re-scored."""

    alerts: list[Emit] = field(default_factory=list)
    users: int = 0
    rescored: int = 0


def sweep(
    users: Iterable[tuple[str, UserState]],
    *,
    now_ms: int,
    idle_ms: int,
    model: Model,
    cfg: PipelineConfig,
    alerted: set[tuple[str, str]],
    batch_size: int,
) -> SweepResult:
    """Re-score every idle user (in batches) and alert those over the churn threshold.

    ``alerted`` is updated in place and pruned to the users' current last event ids.
    """
    result = SweepResult()
    current: set[tuple[str, str]] = set()
    batch: list[tuple[str, UserState]] = []
    for user, state in users:
        result.users += 1
        if state.last_event_id is None or state.ctx.last_ts_ms is None:
            continue
        if not MIN_TS_MS <= state.ctx.last_ts_ms <= MAX_TS_MS:
            continue  # a corrupt record (no datetime holds it): repaired on the user's next event
        if state.state_spec != model.state_key or not state.tensors:
            continue  # stored under another model's shapes: reset on the user's next event instead
        key = (user, state.last_event_id)
        if key in alerted:
            current.add(key)
            continue
        if now_ms - state.ctx.last_ts_ms < idle_ms:
            continue
        batch.append((user, state))
        if len(batch) >= batch_size:
            _score(batch, now_ms, idle_ms, model, cfg, current, result)
            batch = []
    if batch:
        _score(batch, now_ms, idle_ms, model, cfg, current, result)
    alerted.intersection_update(current)
    alerted.update(current)
    return result


def _score(
    batch: list[tuple[str, UserState]],
    now_ms: int,
    idle_ms: int,
    model: Model,
    cfg: PipelineConfig,
    alerted: set[tuple[str, str]],
    result: SweepResult,
) -> None:
    arrays = [state_arrays(s, model.state_spec, model.state_key)[0] for _, s in batch]
    stacked = {n: np.stack([a[n] for a in arrays]) for n in model.state_spec}  # (B, *shape)
    idle_s = np.array([(now_ms - (s.ctx.last_ts_ms or 0)) / 1000.0 for _, s in batch])  # (B,)
    # Every user here is idle for at least the idle time, the first checkpoint: no NaN.
    points = checkpoints(idle_ms / 1000.0, model.churn_seconds)
    at = scored_elapsed(idle_s, points)  # (B,) the checkpoint each silence has reached
    p_churn = model.scorer.churn(stacked, at.astype(np.float32))  # (B,)
    result.rescored += len(batch)
    threshold = model.thresholds["churn"]
    for (user, state), p, idle in zip(batch, p_churn, idle_s, strict=True):
        score = float(p)
        if not may_fire(
            state.churn, score, threshold=threshold, cooldown_ms=cfg.cooldown_ms, now_ms=now_ms
        ):
            continue
        event_id = state.last_event_id or ""
        doc = alert_record(
            alert_type="churn",
            user_id=user,
            trigger="sweep",
            event_id=event_id,
            event_ts_ms=state.ctx.last_ts_ms or 0,
            score=score,
            threshold=threshold,
            model_version=model.version,
            key=cfg.pseudonym_key,
            idle_seconds=float(idle),
        )
        result.alerts.append(Emit("churn", doc["user_id"], doc, None))
        alerted.add((user, event_id))
