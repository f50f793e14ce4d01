"""Per-user state: what the worker keeps in its Faust table between a user's events.

Plain msgspec/numpy, no Faust: the agent reads the bytes from the table, :func:`decode_state`s them,
lets the pipeline update the struct, and writes :func:`encode_state` back so the changelog sees it.

The encoding is compact because every event rewrites it (a changelog record per event) and a
worker holds millions: structs are msgpack arrays (no field names), tensors one float32 blob,
event ids 8-byte keyed hashes, and only the last few events keep what a re-send needs.
docs/policies.md has the budget.

>>> s = UserState()
>>> s = remember_event(s, "e1", window=2)
>>> is_duplicate(s, "e1"), is_duplicate(s, "e2")
(True, False)
>>> decode_state(encode_state(s)) == s
True
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Literal

import msgspec
import numpy as np

from schemas.event import MAX_TS_MS, MIN_TS_MS
from training.featurizer import FEATURIZER_VERSION, FeatureContext
from worker.core.outcomes import Pending, Resolved

STATE_LAYOUT = 2  # bump on an incompatible change of UserState's fields or their encoding
# 1: msgpack maps, event ids in clear, alert JSON; 2: arrays, id hashes, re-send window.
# The feature context inside is the featurizer's own: one written by another featurizer version
# would feed wrong running aggregates (new fields decode as zeros), so a featurizer bump resets
# stored users too. Old records of either kind are then treated as new users.
STATE_FORMAT = STATE_LAYOUT * 1000 + FEATURIZER_VERSION
ID_HASH_BYTES = 8  # per remembered event id; see docs/policies.md for the collision rate
# Events whose outputs (scores, alerts) are kept to re-send on a redelivery: a crash loses at
# most the sends of the batch in flight, and a user has few events in one batch.
RESEND_WINDOW = 8
_SCORE_ROW_BYTES = 8  # one float32 (p_purchase, p_churn) row per event of the re-send window
# A fixed key: it separates these hashes from any other use of BLAKE2b of an event id. It is no
# secret (forging a match with a stored id is a 2**64 second-preimage search either way), and it
# must not change between workers or restarts, or redelivered events would look new.
_ID_HASH_KEY = b"clickscore dedup event id v1"


class AlertArm(msgspec.Struct, frozen=True, array_like=True):
    """One alert type's policy state: armed (may fire) and when it last fired (event time, ms)."""

    armed: bool = True
    last_fired_ms: int | None = None


class RecentAlert(msgspec.Struct, frozen=True, array_like=True):
    """An alert fired by one of the last RESEND_WINDOW events: enough to send it again as it was.

    The rest of the alert document (user, event id and time, alert id) comes from the redelivered
    event itself.
    """

    id_hash: bytes  # of the triggering event's id
    alert_type: Literal["propensity", "churn"]
    score: float
    threshold: float
    model_version: str
    emitted_ms: int
    reasons: bytes = b""  # worker/core/reasons.py pack_reasons: 5 bytes per reason


class UserState(msgspec.Struct, frozen=True, array_like=True):
    """Everything the worker remembers about one user (a few hundred floats plus id hashes)."""

    format: int = STATE_FORMAT
    ctx: FeatureContext = FeatureContext()
    # Recurrent state tensors: float32, C order, concatenated in name order; valid for the
    # shapes in ``state_spec`` (see :func:`pack_tensors`).
    tensors: bytes = b""
    state_spec: str = ""
    # Keyed hashes (ID_HASH_BYTES each, oldest first) of the last ``dedup_window`` event ids.
    recent_id_hashes: bytes = b""
    # float32 (n, 2): p_purchase, p_churn of the newest n <= RESEND_WINDOW ids, and the alerts
    # those events fired. A crash after the state reached the changelog but before the
    # scores/alerts reached their topics redelivers events that are now duplicates: their outputs
    # are re-sent from here (same alert ids), so no output is lost.
    recent_scores: bytes = b""
    recent_alerts: tuple[RecentAlert, ...] = ()
    last_event_id: str | None = None
    last_event_ts_ms: int | None = None
    events: int = 0
    propensity: AlertArm = AlertArm()
    churn: AlertArm = AlertArm()
    # Alerts waiting for their outcome, and outcomes kept for a re-send (worker/core/outcomes.py).
    pending: tuple[Pending, ...] = ()
    recent_outcomes: tuple[Resolved, ...] = ()


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(UserState)


def encode_state(state: UserState) -> bytes:
    """The table value for ``state`` (msgpack arrays)."""
    return _encoder.encode(state)


def decode_state(raw: bytes | None) -> UserState | None:
    """The state stored in a table value; None for a missing or unreadable (other format) value."""
    if not raw:
        return None
    try:
        state = _decoder.decode(raw)
    except (msgspec.DecodeError, RecursionError):
        return None  # an unreadable record (an older layout too) is treated as a new user
    return state if state.format == STATE_FORMAT else None


def repair_state(state: UserState) -> tuple[UserState, bool]:
    """``state`` with its inconsistent parts reset, and whether there were any.

    A record can decode and still not fit together (a bug of an older version, a hand-edited
    changelog). Id hashes that are not whole hashes are dropped with the outputs kept for them;
    scores that are not whole (p_purchase, p_churn) rows or outnumber the ids are dropped, and
    alerts whose id hash is not a hash; a time no datetime holds resets the feature context (it
    would raise in the sweep). Tensors are checked against the model's shapes in
    :func:`state_arrays`.
    """
    changes: dict[str, object] = {}
    ids = state.recent_id_hashes
    if len(ids) % ID_HASH_BYTES:
        changes |= {"recent_id_hashes": b"", "recent_scores": b"", "recent_alerts": ()}
    elif len(state.recent_scores) % _SCORE_ROW_BYTES or _rows(state) > len(ids) // ID_HASH_BYTES:
        changes["recent_scores"] = b""
    alerts = tuple(a for a in state.recent_alerts if len(a.id_hash) == ID_HASH_BYTES)
    if "recent_alerts" not in changes and len(alerts) != len(state.recent_alerts):
        changes["recent_alerts"] = alerts
    if not all(_in_range(t) for t in (state.ctx.last_ts_ms, state.last_event_ts_ms)):
        changes |= {"ctx": FeatureContext(), "last_event_ts_ms": None}
    if not changes:
        return state, False
    return msgspec.structs.replace(state, **changes), True


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
    sizes = {name: int(np.prod(shape)) for name, shape in spec.items()}
    if state.state_spec != key or len(state.tensors) != 4 * sum(sizes.values()):
        return fresh, True  # other shapes, or a short or long blob under these
    flat = np.frombuffer(state.tensors, dtype=np.float32)
    arrays, start = {}, 0
    for name in sorted(spec):
        arrays[name] = flat[start : start + sizes[name]].reshape(tuple(spec[name]))
        start += sizes[name]
    return arrays, False


def pack_tensors(arrays: Mapping[str, np.ndarray]) -> bytes:
    """Tensors as one float32 blob for :class:`UserState`, in name order (shapes: the spec's)."""
    return b"".join(
        np.ascontiguousarray(arrays[name], dtype=np.float32).tobytes() for name in sorted(arrays)
    )


def id_hash(event_id: str) -> bytes:
    """The 8-byte keyed BLAKE2b of an event id that the dedup window stores."""
    return hashlib.blake2b(
        event_id.encode("utf-8"), digest_size=ID_HASH_BYTES, key=_ID_HASH_KEY
    ).digest()


def is_duplicate(state: UserState | None, event_id: str) -> bool:
    """True when ``event_id`` is among the user's recently applied ids."""
    return state is not None and _age(state, id_hash(event_id)) is not None


def remember_event(
    state: UserState,
    event_id: str,
    *,
    window: int,
    scores: tuple[float, float] = (float("nan"), float("nan")),
) -> UserState:
    """Add ``event_id`` (and its scores) to the recent ids, keeping only the last ``window``."""
    ids = (state.recent_id_hashes + id_hash(event_id))[-window * ID_HASH_BYTES :]
    kept = min(window, RESEND_WINDOW)
    row = np.asarray(scores, dtype=np.float32).tobytes()  # (2,)
    rows = (state.recent_scores + row)[-kept * _SCORE_ROW_BYTES :]
    resendable = {ids[i : i + ID_HASH_BYTES] for i in _offsets(ids)[-kept:]}
    alerts = tuple(a for a in state.recent_alerts if a.id_hash in resendable)
    return msgspec.structs.replace(
        state, recent_id_hashes=ids, recent_scores=rows, recent_alerts=alerts
    )


def recent_score(state: UserState, event_id: str) -> tuple[float, float] | None:
    """The scores a recent event got (for re-sending after a redelivery), if still kept."""
    age = _age(state, id_hash(event_id))  # 0 = the newest id
    if age is None or age >= _rows(state):
        return None
    end = len(state.recent_scores) - age * _SCORE_ROW_BYTES
    row = np.frombuffer(state.recent_scores[end - _SCORE_ROW_BYTES : end], dtype=np.float32)
    if np.isnan(row).any():
        return None
    return float(row[0]), float(row[1])


def remember_alert(
    state: UserState,
    event_id: str,
    alert_type: Literal["propensity", "churn"],
    *,
    score: float,
    threshold: float,
    model_version: str,
    emitted_ms: int,
    reasons: bytes = b"",
) -> UserState:
    """Keep what a re-send of this alert needs (its event must be the newest remembered id)."""
    alert = RecentAlert(
        id_hash(event_id), alert_type, score, threshold, model_version, emitted_ms, reasons
    )
    return msgspec.structs.replace(state, recent_alerts=(*state.recent_alerts, alert))


def recent_alerts(state: UserState, event_id: str) -> list[RecentAlert]:
    """The kept alerts that ``event_id`` triggered (to re-send after a redelivery)."""
    h = id_hash(event_id)
    return [a for a in state.recent_alerts if a.id_hash == h]


def _offsets(ids: bytes) -> range:
    return range(0, len(ids) - len(ids) % ID_HASH_BYTES, ID_HASH_BYTES)


def _age(state: UserState, h: bytes) -> int | None:
    """How many ids were remembered after ``h`` (0: the newest), None when it is not there."""
    ids = state.recent_id_hashes
    at = ids.rfind(h)
    while at >= 0 and at % ID_HASH_BYTES:  # a match across two hashes is no match
        at = ids.rfind(h, 0, at + ID_HASH_BYTES - 1)
    if at < 0:
        return None
    return (len(ids) - at) // ID_HASH_BYTES - 1


def _rows(state: UserState) -> int:
    return len(state.recent_scores) // _SCORE_ROW_BYTES
