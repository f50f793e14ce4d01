"""An alert's top reasons: which feature groups the score owes most to, by occlusion.

Only when an alert fires (alerts are rare): the alerting event's feature row is re-scored once per
group of training/feature_groups.py with that group's columns set to zero (what an event without
that information gives), all groups in one step-graph call from the same state the event saw.
A group's contribution is the alert's score minus the occluded score, so switching the reason's
inputs off lowers the score by exactly what the alert says (tests/unit/test_reasons.py). The
largest positive contributions are the reasons; a group that pulled the score down is not one.

A churn alert of the sweep has no new event: its candidates are the silence (the elapsed time set
to zero) and, where the churn head reads the user's last feature row (the last row of
``conv_state``), the groups of that row.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import numpy as np

from schemas.event import Event
from training.feature_groups import GROUP_COLUMNS, describe
from training.featurizer import FeatureContext
from worker.core.scoring import Scorer

TOP = 3
LAST_ROW_STATE = "conv_state"  # (K-1, F): its last row is the user's last event (contracts.md)

Reason = dict[str, Any]  # {"group": str, "text": str, "contribution": float}


def occluded_rows(row: np.ndarray) -> np.ndarray:
    """``(G, F)``: ``row`` once per group with that group's columns zeroed (GROUP_COLUMNS order)."""
    rows = np.repeat(row[None, :], len(GROUP_COLUMNS), axis=0)  # (G, F)
    for g, columns in enumerate(GROUP_COLUMNS.values()):
        rows[g, list(columns)] = 0.0
    return rows


def event_reasons(
    scorer: Scorer,
    head: Literal["propensity", "churn"],
    score: float,
    row: np.ndarray,
    state: Mapping[str, np.ndarray],
    event: Event,
    ctx: FeatureContext,
) -> list[Reason]:
    """Top reasons for an alert fired on ``event``: ``row`` (F,), the state before it (no batch)."""
    x = occluded_rows(row)  # (G, F)
    tiled = {n: np.repeat(a[None], len(x), axis=0) for n, a in state.items()}  # (G, *shape)
    out = scorer.step(x, np.zeros(len(x), dtype=np.float32), tiled)
    occluded = out.p_purchase if head == "propensity" else out.p_churn  # (G,)
    groups = [(g, describe(g, event, ctx)) for g in GROUP_COLUMNS]
    return _top(score, occluded, groups)


def sweep_reasons(
    scorer: Scorer,
    score: float,
    state: Mapping[str, np.ndarray],
    idle_seconds: float,
    ctx: FeatureContext,
    scored_seconds: float | None = None,
) -> list[Reason]:
    """Top reasons for a sweep's churn alert: the silence, and the last event's feature groups.

    ``scored_seconds`` is the elapsed time the alert's score was computed at (the sweep's
    checkpoint, :mod:`training.sweep_rule`); the occluded rows are scored there too, so each
    contribution is a difference at one elapsed time. The words quote the real silence.
    """
    at = idle_seconds if scored_seconds is None else scored_seconds
    minutes = idle_seconds / 60.0
    groups = [("silence", f"no activity for {minutes:.0f} min")]
    batches = [dict(state)]
    elapsed = [0.0]
    if LAST_ROW_STATE in scorer.churn_inputs and LAST_ROW_STATE in state:
        last = state[LAST_ROW_STATE]  # (K-1, F)
        for g, occluded_row in zip(GROUP_COLUMNS, occluded_rows(last[-1]), strict=True):
            batches.append({**state, LAST_ROW_STATE: np.vstack([last[:-1], occluded_row[None]])})
            elapsed.append(at)
            groups.append((g, describe(g, None, ctx)))
    stacked = {n: np.stack([b[n] for b in batches]) for n in state}  # (G+1, *shape)
    occluded = scorer.churn(stacked, np.asarray(elapsed, dtype=np.float32))  # (G+1,)
    return _top(score, occluded, groups)


def _top(score: float, occluded: np.ndarray, groups: list[tuple[str, str]]) -> list[Reason]:
    """The ``TOP`` largest positive contributions, largest first."""
    ranked = sorted(
        ((score - float(o), g, text) for (g, text), o in zip(groups, occluded, strict=True)),
        key=lambda r: -r[0],
    )
    # float32: what the per-user state keeps for a re-send (pack_reasons), so both are equal
    return [
        {"group": g, "text": t, "contribution": float(np.float32(c))}
        for c, g, t in ranked[:TOP]
        if c > 0.0
    ]


_PACKED = np.dtype([("group", "u1"), ("contribution", "<f4")])  # 5 bytes per reason
_GROUP_NAMES = tuple(GROUP_COLUMNS)


def pack_reasons(reasons: list[Reason]) -> bytes:
    """An event alert's reasons as the state keeps them: group index and float32 contribution."""
    rows = [(_GROUP_NAMES.index(r["group"]), r["contribution"]) for r in reasons]
    return np.array(rows, dtype=_PACKED).tobytes()


def unpack_reasons(raw: bytes, event: Event, ctx: FeatureContext) -> list[Reason]:
    """The reasons of :func:`pack_reasons`, words rebuilt from ``event`` and the user's ``ctx``.

    Groups and contributions are the original's; the words equal the original's while ``ctx`` is
    still the context right after ``event`` (no later event of the user applied).
    """
    rows = np.frombuffer(raw[: len(raw) - len(raw) % _PACKED.itemsize], dtype=_PACKED)
    return [
        {
            "group": _GROUP_NAMES[int(g)],
            "text": describe(_GROUP_NAMES[int(g)], event, ctx),
            "contribution": float(c),
        }
        for g, c in rows
        if int(g) < len(_GROUP_NAMES)
    ]
