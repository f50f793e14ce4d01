"""An alert's reasons: switching a reason's inputs off lowers the score by what the alert says."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import schemas
from tests.worker_artifacts import T0_MS, keyed, make_events, shared_artifact
from training.feature_groups import GROUP_COLUMNS, GROUPS
from training.featurizer import FEATURE_NAMES, featurize
from training.sweep_rule import checkpoints, scored_elapsed
from worker.core.micro_batch import PipelineConfig, Record, process_batch
from worker.core.model_store import Model, load_model
from worker.core.state import UserState, state_arrays
from worker.core.sweep import sweep


@pytest.fixture(scope="module")
def model() -> Model:
    return load_model(shared_artifact())


def _thresholds(model: Model, propensity: float, churn: float) -> Model:
    manifest = {**model.manifest, "thresholds": {"propensity": propensity, "churn": churn}}
    return dataclasses.replace(model, manifest=manifest)


def _run(model: Model, table: dict[str, UserState], events: list) -> list:
    records = [Record(k, v, "events", 0, i, T0_MS) for i, (k, v) in enumerate(keyed(events))]
    result = process_batch(records, table.get_fn, model, PipelineConfig())  # type: ignore[attr-defined]
    table.update({u: s for u, (s, _) in result.writes.items()})
    return result.alerts


class _Table(dict[str, UserState]):
    def get_fn(self, user: str, _index: int) -> UserState | None:
        return self.get(user)


def _group_off(row: np.ndarray, group: str) -> np.ndarray:
    row = row.copy()
    row[list(GROUP_COLUMNS[group])] = 0.0
    return row


def test_groups_partition_the_feature_columns() -> None:
    columns = [c for cols in GROUPS.values() for c in cols]
    assert sorted(columns) == sorted(FEATURE_NAMES)


@pytest.mark.parametrize("head", ["propensity", "churn"])
def test_removing_a_reasons_inputs_lowers_the_score_by_its_contribution(
    model: Model, head: str
) -> None:
    events = make_events(240, users=12, seed=5)
    table = _Table()
    assert not _run(_thresholds(model, 1.0, 1.0), table, events[:200])  # history, no alerts
    before = dict(table)
    on = _thresholds(model, 0.0, 1.0) if head == "propensity" else _thresholds(model, 1.0, 0.0)
    alerts = _run(on, table, events[200:])
    assert alerts and all(a.kind == head for a in alerts)
    by_id = {e.event_id: e for e in events}
    checked = 0
    for alert in alerts:
        schemas.validate("alert", alert.doc)
        event = by_id[alert.doc["event_id"]]
        prior = before[event.user_id]  # the alert fires on the user's first event of this batch
        arrays, _ = state_arrays(prior, model.state_spec, model.state_key)
        row, _ = featurize(event, prior.ctx)
        reasons = alert.doc["reasons"]
        assert 1 <= len(reasons) <= 3
        contributions = [r["contribution"] for r in reasons]
        assert contributions == sorted(contributions, reverse=True) and min(contributions) > 0
        others = []
        for group in GROUP_COLUMNS:
            x = _group_off(row, group)[None]  # (1, F)
            out = model.scorer.step(
                x, np.zeros(1, np.float32), {n: a[None] for n, a in arrays.items()}
            )
            drop = alert.doc["score"] - float(
                (out.p_purchase if head == "propensity" else out.p_churn)[0]
            )
            reported = [r for r in reasons if r["group"] == group]
            if reported:
                assert drop == pytest.approx(reported[0]["contribution"], abs=1e-6)
                assert reported[0]["text"]
                checked += 1
            else:
                others.append(drop)
        assert max(others) <= min(contributions) + 1e-6  # the reported ones are the top ones
    assert checked >= len(alerts)


def test_sweep_reasons_are_what_the_silence_and_the_last_row_contribute(model: Model) -> None:
    table = _Table()
    _run(_thresholds(model, 1.0, 1.0), table, make_events(60, users=6, seed=2))
    newest = max(s.ctx.last_ts_ms or 0 for s in table.values())
    result = sweep(
        table.items(), now_ms=newest + 3_600_000, idle_ms=1000, model=_thresholds(model, 1.0, 0.0),
        cfg=PipelineConfig(), alerted=set(), batch_size=4,
    )  # fmt: skip
    assert result.alerts
    for alert in result.alerts:
        user = next(u for u in table if alert.doc["user_id"] == u)
        arrays, _ = state_arrays(table[user], model.state_spec, model.state_key)
        reasons = alert.doc["reasons"]
        assert 1 <= len(reasons) <= 3
        for r in reasons:
            state = {n: a.copy()[None] for n, a in arrays.items()}
            # scored where the sweep scored it: the last checkpoint the silence reached
            points = checkpoints(1.0, model.churn_seconds)
            idle = float(scored_elapsed(np.asarray([alert.doc["idle_seconds"]]), points)[0])
            if r["group"] == "silence":
                idle = 0.0
            else:
                state["conv_state"][0, -1] = _group_off(state["conv_state"][0, -1], r["group"])
            p = float(model.scorer.churn(state, np.asarray([idle], np.float32))[0])
            assert alert.doc["score"] - p == pytest.approx(r["contribution"], abs=1e-6)
