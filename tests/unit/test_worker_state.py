"""Per-user state: encode/decode, dedup window, reset on a model with other state shapes."""

from __future__ import annotations

import msgspec
import numpy as np

from training.featurizer import FeatureContext
from worker.core.state import (
    AlertArm,
    UserState,
    decode_state,
    encode_state,
    is_duplicate,
    pack_tensors,
    remember_event,
    spec_key,
    state_arrays,
)

SPEC = {"conv_state": (2, 32), "h_state": (1, 16)}


def _state() -> UserState:
    arrays = {n: np.arange(np.prod(s), dtype=np.float32).reshape(s) for n, s in SPEC.items()}
    return UserState(
        ctx=FeatureContext(last_ts_ms=5, last_item="i1", last_session="s", session_events=3),
        tensors=pack_tensors(arrays),
        state_spec=spec_key(SPEC),
        recent_ids=("a", "b"),
        last_event_id="b",
        last_event_ts_ms=5,
        events=2,
        propensity=AlertArm(armed=False, last_fired_ms=4),
    )


def test_encode_decode_round_trip() -> None:
    state = _state()
    assert decode_state(encode_state(state)) == state


def test_unreadable_or_missing_value_is_a_new_user() -> None:
    assert decode_state(None) is None
    assert decode_state(b"") is None
    assert decode_state(b"\xff\x00garbage") is None
    other_format = msgspec.structs.replace(_state(), format=999)
    assert decode_state(encode_state(other_format)) is None


def test_dedup_window_keeps_the_last_n_ids() -> None:
    state = UserState()
    for i in range(5):
        state = remember_event(state, f"e{i}", window=3)
    assert state.recent_ids == ("e2", "e3", "e4")
    assert is_duplicate(state, "e4") and is_duplicate(state, "e2")
    assert not is_duplicate(state, "e1")
    assert not is_duplicate(None, "e4")


def test_state_arrays_round_trip_and_fresh_user_gets_zeros() -> None:
    arrays, reset = state_arrays(_state(), SPEC, spec_key(SPEC))
    assert not reset
    assert arrays["h_state"].shape == (1, 16)
    assert float(arrays["h_state"][0, 3]) == 3.0
    fresh, reset = state_arrays(None, SPEC, spec_key(SPEC))
    assert not reset and all(not a.any() for a in fresh.values())


def test_other_state_shapes_reset_the_tensors() -> None:
    new_spec = {"conv_state": (2, 32), "h_state": (1, 64)}
    arrays, reset = state_arrays(_state(), new_spec, spec_key(new_spec))
    assert reset
    assert arrays["h_state"].shape == (1, 64) and not arrays["h_state"].any()
