"""Poison records: a record whose processing keeps failing is a dead letter after N tries.

The fault here is a table read that raises for one user (what a corrupt RocksDB block does):
every batch holding that user's event failed, the worker exited 70 and got the same batch back,
forever. Each loop below is one worker start: a fresh :class:`StrikeBook` on the same file.
"""

from __future__ import annotations

import base64
from pathlib import Path

import numpy as np
import pytest

import schemas
from schemas.event import Event, encode_event
from tests.worker_artifacts import T0_MS, keyed, make_events, shared_artifact
from worker.core.micro_batch import PipelineConfig, Record, process_batch
from worker.core.model_store import Model, load_model
from worker.core.poison import BatchFailed, StrikeBook, settle
from worker.core.state import UserState

POISON_USER = "u-poison"
ATTEMPTS = 3


@pytest.fixture(scope="module")
def model() -> Model:
    return load_model(shared_artifact())


def _batch() -> list[Record]:
    good = keyed(make_events(30, users=4, seed=2))
    bad = Event(event_id="p1", user_id=POISON_USER, event_type="view", ts_ms=T0_MS)
    pairs = [*good[:10], (POISON_USER.encode(), encode_event(bad)), *good[10:]]
    return [Record(k, v, "events", 0, 100 + i, T0_MS) for i, (k, v) in enumerate(pairs)]


def _load(user: str, _index: int) -> UserState | None:
    if user == POISON_USER:
        raise OSError("Corruption: block checksum mismatch")
    return None


def test_a_poison_record_is_dead_lettered_within_n_restarts_and_the_rest_scored(
    model: Model, tmp_path: Path
) -> None:
    records = _batch()
    cfg = PipelineConfig()
    with pytest.raises(OSError):  # the fault is real: the batch as a whole fails
        process_batch(records, _load, model, cfg)
    restarts = 0
    while True:
        book = StrikeBook(tmp_path / "strikes.json", limit=ATTEMPTS)  # a new process each time
        try:
            result, failed = settle(records, _load, model, cfg, book)
            break
        except BatchFailed:
            restarts += 1  # the worker exits 70 and gets the batch again
            assert restarts < ATTEMPTS, "the loop did not end"
    assert restarts == ATTEMPTS - 1
    assert [i for i, _ in failed] == [10]
    (dead,) = result.dead_letters
    assert dead.index == 10 and dead.reason == "internal"
    schemas.validate("dead_letter", dead.doc)
    assert dead.doc["source"]["offset"] == 110
    assert base64.b64decode(dead.doc["value_b64"]) == records[10].value
    assert "block checksum mismatch" in dead.doc["detail"]
    # Every record accounted for; the other users' events were scored, in order.
    assert result.scored + result.duplicates + len(result.dead_letters) == len(records)
    assert POISON_USER not in result.writes and len(result.writes) == 4
    assert not (tmp_path / "strikes.json").exists() or book._read() == {}


def test_the_record_by_record_result_equals_the_batch_result(model: Model, tmp_path: Path) -> None:
    """A batch that fails once but not record by record: same states, scores and alerts."""
    records = [r for r in _batch() if r.key != POISON_USER.encode()]
    cfg = PipelineConfig(emit_scores=True, cooldown_ms=0)
    whole = process_batch(records, lambda _u, _i: None, model, cfg)
    book = StrikeBook(tmp_path / "strikes.json", limit=ATTEMPTS)
    alone, failed = settle(records, lambda _u, _i: None, model, cfg, book)
    assert failed == []
    assert alone.scored == whole.scored == len(records)
    assert alone.writes.keys() == whole.writes.keys()
    for user, (state, index) in whole.writes.items():
        other, other_index = alone.writes[user]
        assert (other.ctx, other.recent_id_hashes, other.events, index) == (
            state.ctx,
            state.recent_id_hashes,
            state.events,
            other_index,
        )
        assert (other.propensity, other.churn) == (state.propensity, state.churn)
        # Batch size changes float rounding only.
        diff = np.frombuffer(state.tensors, np.float32) - np.frombuffer(other.tensors, np.float32)
        assert np.abs(diff).max() <= 1e-5
    scores = sorted((s.doc["event_id"], s.doc["p_purchase"]) for s in alone.scores)
    assert [e for e, _ in scores] == sorted(s.doc["event_id"] for s in whole.scores)
    assert sorted(a.doc["alert_id"] for a in alone.alerts) == sorted(
        a.doc["alert_id"] for a in whole.alerts
    )
    assert alone.new_users == whole.new_users == 4
