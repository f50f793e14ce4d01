"""The churn sweep's pure core: re-score users who went silent, with the churn-head graph.

Clock rule: the sweep's "now" is the newest event time this worker has seen plus the wall time
since it saw it (:class:`SweepClock`), and never later than the worker's own wall clock. Live, that
is the wall clock (minus pipeline delay); on a replay of old data it follows the data, so a replay
does not mark every user idle at once; and a producer whose clock runs ahead cannot move it into
the future, where every other user would look idle (a flood of churn alerts).

Outcomes (worker/core/outcomes.py) decided by the sweep's clock, and the outcome of a sweep alert,
are resolved by the agent too: the sweep sends it a ``resolve`` control record with its clock.

A silence is scored at the checkpoints of :mod:`training.sweep_rule` (the idle time, doubling
while under the churn horizon), the largest one reached, not at the raw elapsed time: training
counts the same points when it sets the churn threshold, so the alert budget covers the sweep's
alerts too.

A timer cannot write the table (Faust needs a current event to pick the partition), so the sweep
remembers in memory which ``(user, last_event_id)`` already got a sweep alert. After a restart that
memory is empty and a repeat alert may be sent: it carries the same ``alert_id`` (derived from the
user's last event id), so consumers dedupe it. For the same reason a user idle past the retention
is not deleted here: the sweep asks for it with an ``expire`` control record (the agent deletes).

The runtime feeds a :class:`Sweep` in chunks and yields to the event loop between them: decoding
and re-scoring a million users takes seconds, which in one piece stalled event scoring.
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
from worker.core.outcomes import CLOCK_GRACE_MS, clock_request, next_due, pending
from worker.core.reasons import sweep_reasons
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
    """Alerts and expiries from a sweep (or one chunk of it), and users looked at / re-scored.

    ``expired`` holds (user, last event id) of users idle past the retention: the runtime sends
    an ``expire`` control record for each (worker/core/control.py).
    """

    alerts: list[Emit] = field(default_factory=list)
    expired: list[tuple[str, str]] = field(default_factory=list)
    # (user, clock request): the runtime sends a ``resolve`` control record for each (outcomes)
    resolve: list[tuple[str, bytes]] = field(default_factory=list)
    users: int = 0
    rescored: int = 0


@dataclass
class SweepMemory:
    """What a worker remembers between sweeps: sweep alerts sent, expiries requested.

    Each is keyed by (user, last event id), so a user's new event makes the user new to both.
    """

    alerted: set[tuple[str, str]] = field(default_factory=set)
    expiring: set[tuple[str, str]] = field(default_factory=set)
    resolving: set[tuple[str, str, int]] = field(default_factory=set)  # (user, last id, due)


class Sweep:
    """One pass over a worker's users, fed in chunks so the runtime can yield between them.

    The pass reads ``model`` once (a hot swap mid-pass applies from the next pass). Call
    :meth:`finish` after the last chunk: it prunes the memory to the users seen.
    """

    def __init__(
        self,
        *,
        now_ms: int,
        idle_ms: int,
        model: Model,
        cfg: PipelineConfig,
        memory: SweepMemory,
        batch_size: int,
        retention_ms: int = 0,
    ) -> None:
        self.now_ms, self.idle_ms, self.retention_ms = now_ms, idle_ms, retention_ms
        self.model, self.cfg, self.memory, self.batch_size = model, cfg, memory, batch_size
        self.total = SweepResult()
        self._alerted: set[tuple[str, str]] = set()
        self._expiring: set[tuple[str, str]] = set()
        self._resolving: set[tuple[str, str, int]] = set()

    def feed(self, users: Iterable[tuple[str, UserState]]) -> SweepResult:
        """Re-score the idle users among ``users`` (in batches); what this chunk produced."""
        result = SweepResult()
        batch: list[tuple[str, UserState]] = []
        for user, state in users:
            result.users += 1
            if state.last_event_id is None or state.ctx.last_ts_ms is None:
                continue
            if not MIN_TS_MS <= state.ctx.last_ts_ms <= MAX_TS_MS:
                continue  # a corrupt record (no datetime holds it): repaired on the next event
            key = (user, state.last_event_id)
            idle = self.now_ms - state.ctx.last_ts_ms
            if self.retention_ms and idle >= self.retention_ms:
                self._expiring.add(key)
                if key not in self.memory.expiring:
                    result.expired.append(key)
                continue
            self._due(user, state, result)
            if state.state_spec != self.model.state_key or not state.tensors:
                continue  # stored under another model's shapes: reset on the next event instead
            if key in self.memory.alerted:
                self._alerted.add(key)
                continue
            if idle < self.idle_ms:
                continue
            batch.append((user, state))
            if len(batch) >= self.batch_size:
                _score(
                    batch, self.now_ms, self.idle_ms, self.model, self.cfg, self._alerted, result
                )
                batch = []
        if batch:
            _score(batch, self.now_ms, self.idle_ms, self.model, self.cfg, self._alerted, result)
        self.total.users += result.users
        self.total.rescored += result.rescored
        self.total.alerts += result.alerts
        self.total.expired += result.expired
        self.total.resolve += result.resolve
        return result

    def _due(self, user: str, state: UserState, result: SweepResult) -> None:
        """Ask for the outcomes the clock decides: a pending alert's horizon has passed."""
        due, decided = next_due(state.pending), self.now_ms - CLOCK_GRACE_MS
        if due is None or due >= decided:
            return
        key = (user, state.last_event_id or "", due)
        self._resolving.add(key)
        if key not in self.memory.resolving:
            result.resolve.append((user, clock_request(decided, key[1])))

    def finish(self) -> SweepResult:
        """Keep in memory only the users seen in this pass (and what they got); the totals."""
        self.memory.alerted = self._alerted
        self.memory.expiring = self._expiring
        self.memory.resolving = self._resolving
        return self.total


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
    """A whole pass at once (tests, benches): :class:`Sweep` fed one chunk.

    ``alerted`` is updated in place and pruned to the users' current last event ids.
    """
    memory = SweepMemory(alerted=set(alerted))
    run = Sweep(
        now_ms=now_ms, idle_ms=idle_ms, model=model, cfg=cfg, memory=memory, batch_size=batch_size
    )
    run.feed(users)
    result = run.finish()
    alerted.clear()
    alerted.update(memory.alerted)
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
    for j, ((user, state), p, idle) in enumerate(zip(batch, p_churn, idle_s, strict=True)):
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
            reasons=sweep_reasons(
                model.scorer, score, arrays[j], float(idle), state.ctx, float(at[j])
            ),
        )
        result.alerts.append(Emit("churn", doc["user_id"], doc, None))
        alerted.add((user, event_id))
        horizon_s = model.manifest["horizons"]["churn_seconds"]
        wait = pending("churn", doc["alert_id"], model.version, now_ms, horizon_s)
        result.resolve.append((user, clock_request(now_ms - CLOCK_GRACE_MS, event_id, wait)))
