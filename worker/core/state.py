"""Per-user state: what the worker keeps in its Faust table between a user's events.

Plain msgspec/numpy, no Faust: the agent reads the bytes from the table, :func:`decode_state`s them,
lets the pipeline update the struct, and writes :func:`encode_state` back so the changelog sees it.

>>> s = UserState()
>>> s = remember_event(s, "e1", window=2)
>>> is_duplicate(s, "e1"), is_duplicate(s, "e2")
(True, False)
>>> decode_state(encode_state(s)) == s
True
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

import msgspec
import numpy as np

from schemas.event import MAX_TS_MS, MIN_TS_MS
from training.featurizer import FeatureContext

STATE_FORMAT = 1  # bump on an incompatible change of UserState; old records are then reset
_SCORE_ROW_BYTES = 8  # one float32 (p_purchase, p_churn) row per recent event id
MAX_RECENT_ALERTS = 8  # alerts kept to re-send when their triggering event is redelivered


class AlertArm(msgspec.Struct, frozen=True):
    """One alert type's policy state: armed (may fire) and when it last fired (event time, ms)."""

    armed: bool = True
    last_fired_ms: int | None = None


class UserState(msgspec.Struct, frozen=True):
    """Everything the worker remembers about one user (a few hundred floats plus ids)."""

    format: int = STATE_FORMAT
    ctx: FeatureContext = FeatureContext()
    # Recurrent state tensors (float32 bytes, C order), valid for the shapes in ``state_spec``.
    tensors: dict[str, bytes] = {}
    state_spec: str = ""
    recent_ids: tuple[str, ...] = ()
    # float32 (len(recent_ids), 2): p_purchase, p_churn of each recent id, and the JSON of the
    # last alerts. A crash after the state reached the changelog but before the scores/alerts
    # reached their topics redelivers events that are now duplicates: their outputs are re-sent
    # from here (same alert ids), so no output is lost.
    recent_scores: bytes = b""
    recent_alerts: tuple[bytes, ...] = ()
    last_event_id: str | None = None
    last_event_ts_ms: int | None = None
    events: int = 0
    propensity: AlertArm = AlertArm()
    churn: AlertArm = AlertArm()


class _AlertRef(msgspec.Struct):
    """The fields of a remembered alert that a re-send reads (the rest is sent as stored)."""

    alert_type: Literal["propensity", "churn"]
    trigger: str
    event_id: str
    user_id: str


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(UserState)
_alert_ref = msgspec.json.Decoder(_AlertRef)


def encode_state(state: UserState) -> bytes:
    """The table value for ``state`` (msgpack)."""
    return _encoder.encode(state)


def decode_state(raw: bytes | None) -> UserState | None:
    """The state stored in a table value; None for a missing or unreadable (other format) value."""
    if not raw:
        return None
    try:
        state = _decoder.decode(raw)
    except (msgspec.DecodeError, RecursionError):
        return None  # an unreadable record is treated as a new user, never a crash
    return state if state.format == STATE_FORMAT else None


def repair_state(state: UserState) -> tuple[UserState, bool]:
    """``state`` with its inconsistent parts reset, and whether there were any.

    A record can decode and still not fit together (a bug of an older version, a hand-edited
    changelog). Scores that are not whole (p_purchase, p_churn) rows and alerts that are not
    alert documents are dropped; a time no datetime holds resets the feature context (it would
    raise in the sweep). Tensors are checked against the model's shapes in :func:`state_arrays`.
    """
    changes: dict[str, object] = {}
    if len(state.recent_scores) % _SCORE_ROW_BYTES:
        changes["recent_scores"] = b""
    alerts = tuple(a for a in state.recent_alerts if _is_alert(a))
    if len(alerts) != len(state.recent_alerts):
        changes["recent_alerts"] = alerts
    if not all(_in_range(t) for t in (state.ctx.last_ts_ms, state.last_event_ts_ms)):
        changes |= {"ctx": FeatureContext(), "last_event_ts_ms": None}
    if not changes:
        return state, False
    return msgspec.structs.replace(state, **changes), True


def _is_alert(raw: bytes) -> bool:
    try:
        _alert_ref.decode(raw)
    except (msgspec.DecodeError, RecursionError):
        return False
    return True


def _in_range(ts_ms: int | None) -> bool:
    return ts_ms is None or MIN_TS_MS <= ts_ms <= MAX_TS_MS


def spec_key(spec: Mapping[str, Sequence[int]]) -> str:
    """A stable string for a model's state shapes; a change means stored tensors no longer fit."""
    return ";".join(f"{name}={'x'.join(map(str, shape))}" for name, shape in sorted(spec.items()))


def state_arrays(
    state: UserState | None, spec: Mapping[str, Sequence[int]], key: str
) -> tuple[dict[str, np.ndarray], bool]:
    """The user's state tensors for the current model, and whether stored tensors were reset.

    Reset policy: tensors stored under another model's shapes cannot be fed to this one, so the
    user restarts from zeros (feature context, dedup ids and alert arms are kept).
    """
    fresh = {name: np.zeros(tuple(shape), dtype=np.float32) for name, shape in spec.items()}
    if state is None or not state.tensors:
        return fresh, False
    if state.state_spec != key or not _tensors_fit(state.tensors, spec):
        return fresh, True  # other shapes, or a missing or short tensor under these
    arrays = {}
    for name, shape in spec.items():
        arrays[name] = np.frombuffer(state.tensors[name], dtype=np.float32).reshape(tuple(shape))
    return arrays, False


def _tensors_fit(tensors: Mapping[str, bytes], spec: Mapping[str, Sequence[int]]) -> bool:
    if set(tensors) != set(spec):
        return False
    return all(len(tensors[n]) == 4 * int(np.prod(shape)) for n, shape in spec.items())


def pack_tensors(arrays: Mapping[str, np.ndarray]) -> dict[str, bytes]:
    """Tensors as float32 bytes for :class:`UserState` (shape comes from the model's spec)."""
    return {name: np.ascontiguousarray(a, dtype=np.float32).tobytes() for name, a in arrays.items()}


def is_duplicate(state: UserState | None, event_id: str) -> bool:
    """True when ``event_id`` is among the user's recently applied ids."""
    return state is not None and event_id in state.recent_ids


def remember_event(
    state: UserState,
    event_id: str,
    *,
    window: int,
    scores: tuple[float, float] = (float("nan"), float("nan")),
) -> UserState:
    """Add ``event_id`` (and its scores) to the recent ids, keeping only the last ``window``."""
    ids = (*state.recent_ids, event_id)[-window:]
    rows = np.vstack([_score_rows(state), np.asarray([scores], dtype=np.float32)])[-window:]
    return msgspec.structs.replace(state, recent_ids=ids, recent_scores=rows.tobytes())


def recent_score(state: UserState, event_id: str) -> tuple[float, float] | None:
    """The scores a recent event got (for re-sending after a redelivery), if remembered."""
    rows = _score_rows(state)  # (len(recent_ids), 2)
    for i in range(len(state.recent_ids) - 1, -1, -1):
        if state.recent_ids[i] == event_id and not np.isnan(rows[i]).any():
            return float(rows[i, 0]), float(rows[i, 1])
    return None


def remember_alert(state: UserState, doc_json: bytes) -> UserState:
    """Keep an alert's JSON (the last few) so a redelivered trigger re-sends the same alert."""
    alerts = (*state.recent_alerts, doc_json)[-MAX_RECENT_ALERTS:]
    return msgspec.structs.replace(state, recent_alerts=alerts)


def _score_rows(state: UserState) -> np.ndarray:
    # Rows aligned with recent_ids; a record written before scores were kept gets NaN rows.
    rows = np.frombuffer(state.recent_scores, dtype=np.float32).reshape(-1, 2)
    missing = len(state.recent_ids) - len(rows)
    if missing > 0:
        rows = np.vstack([np.full((missing, 2), np.nan, dtype=np.float32), rows])
    return rows[len(rows) - len(state.recent_ids) :]
