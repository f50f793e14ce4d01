"""Per-user state: encode/decode, dedup window, reset on a model with other state shapes."""

from __future__ import annotations

import msgspec
import numpy as np

from training.featurizer import FEATURIZER_VERSION, FeatureContext
from worker.core.state import (
    RESEND_WINDOW,
    STATE_FORMAT,
    AlertArm,
    UserState,
    decode_state,
    encode_state,
    id_hash,
    is_duplicate,
    pack_tensors,
    recent_alerts,
    recent_score,
    remember_alert,
    remember_event,
    repair_state,
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
        recent_id_hashes=id_hash("a") + id_hash("b"),
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


def test_a_state_written_by_the_previous_featurizer_is_reset() -> None:
    # Format 1 is what every worker wrote before featurizer v2 (its context lacks the aggregates).
    written_by_v1 = msgspec.structs.replace(_state(), format=1)
    assert decode_state(encode_state(written_by_v1)) is None
    assert STATE_FORMAT % 1000 == FEATURIZER_VERSION


def test_dedup_window_keeps_the_last_n_ids() -> None:
    state = UserState()
    for i in range(5):
        state = remember_event(state, f"e{i}", window=3)
    assert state.recent_id_hashes == b"".join(id_hash(f"e{i}") for i in (2, 3, 4))
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


def test_a_state_of_the_previous_layout_is_reset() -> None:
    # Layout 1 wrote msgpack maps with event ids in clear: a new user now, not a crash.
    layout_1 = msgspec.msgpack.encode(
        {"format": 1000 + FEATURIZER_VERSION, "recent_ids": ["a"], "tensors": {}, "events": 3}
    )
    assert decode_state(layout_1) is None
    # The format number alone resets it too, whatever shape the record has.
    with_old_number = msgspec.structs.replace(_state(), format=1000 + FEATURIZER_VERSION)
    assert decode_state(encode_state(with_old_number)) is None
    assert STATE_FORMAT // 1000 >= 2


def test_a_hash_match_across_two_stored_hashes_is_no_match() -> None:
    h = id_hash("e1")
    state = UserState(recent_id_hashes=b"\0" * 4 + h + b"\0" * 4)  # h straddles two slots
    assert not is_duplicate(state, "e1")
    state = UserState(recent_id_hashes=h[4:] + h + h[:4] + id_hash("e2"))
    assert is_duplicate(state, "e2") and not is_duplicate(state, "e1")


def test_only_the_resend_window_keeps_scores_and_alerts() -> None:
    # Every id of the dedup window is a duplicate; only the newest RESEND_WINDOW can re-send.
    state, n = UserState(), RESEND_WINDOW + 4
    for i in range(n):
        state = remember_event(state, f"e{i}", window=64, scores=(i / 100, 1 - i / 100))
        state = remember_alert(
            state, f"e{i}", "churn", score=0.9, threshold=0.5, model_version="m", emitted_ms=i
        )
    assert all(is_duplicate(state, f"e{i}") for i in range(n))
    kept = range(n - RESEND_WINDOW, n)
    assert [recent_score(state, f"e{i}") for i in kept] == [
        (np.float32(i / 100), np.float32(1 - i / 100)) for i in kept
    ]
    assert recent_score(state, f"e{n - RESEND_WINDOW - 1}") is None
    assert [a.emitted_ms for i in range(n) for a in recent_alerts(state, f"e{i}")] == list(kept)
    assert decode_state(encode_state(state)) == state


def test_inconsistent_dedup_parts_are_repaired() -> None:
    state = remember_event(UserState(), "e1", window=4, scores=(0.1, 0.2))
    state = remember_event(state, "e2", window=4, scores=(0.3, 0.4))
    assert repair_state(state) == (state, False)
    cut = msgspec.structs.replace(state, recent_id_hashes=state.recent_id_hashes[:-3])
    fixed, changed = repair_state(cut)
    assert changed and (fixed.recent_id_hashes, fixed.recent_scores) == (b"", b"")
    more_rows = msgspec.structs.replace(state, recent_id_hashes=id_hash("e2"))
    fixed, changed = repair_state(more_rows)
    assert changed and fixed.recent_scores == b"" and is_duplicate(fixed, "e2")
