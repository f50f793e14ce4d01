"""Offline scoring: the reference the streaming worker is compared against (invariant 3).

Every event is scored with the ONNX **step** graph, event by event per user in file order, with
``elapsed = 0`` and :func:`training.featurizer.featurize` -- exactly what the worker does. For speed
the events are grouped into *waves*: wave k holds every user's k-th event, so each user appears at
most once per wave and its waves run in order; a wave is one batched ``session.run``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from schemas.event import Event
from training.export import read_manifest
from training.featurizer import FEATURE_DIM, FeatureContext, featurize

MAX_BATCH = 4096  # bounds the memory of one session.run; waves larger than this are chunked


@dataclass(frozen=True)
class Scores:
    """Per-event scores in input order."""

    event_id: list[str]
    user_id: list[str]
    timestamp: np.ndarray  # (N,) int64 epoch ms
    p_purchase: np.ndarray  # (N,) float32
    p_churn: np.ndarray  # (N,) float32


class StepScorer:
    """The artifact's step graph on CPU plus the manifest's state layout (a ``StepScoring``).

    Written apart from the worker's ``worker.core.scoring.Scorer`` on purpose: it is the reference
    the streamed scores are compared against (invariant 3), so sharing the worker's code would
    make that test compare the worker with itself. Only the contract is shared
    (:class:`training.artifact.StepScoring`); training never imports the worker.
    """

    def __init__(self, model_dir: str | Path, threads: int = 1) -> None:
        self.manifest: dict[str, Any] = read_manifest(model_dir)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads  # the machine is shared; scoring is cheap per step
        step_file = Path(model_dir) / self.manifest["graphs"]["step"]["file"]
        self.session = ort.InferenceSession(
            str(step_file), sess_options=opts, providers=["CPUExecutionProvider"]
        )
        self.state_shapes: dict[str, tuple[int, ...]] = {
            name: tuple(shape) for name, shape in self.manifest["state"].items()
        }
        self.outputs = [o.name for o in self.session.get_outputs()]

    def step(
        self, x: np.ndarray, elapsed: np.ndarray, state: dict[str, np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        """One step for a batch: ``x (B, F)``, ``elapsed (B)`` -> ``p_purchase (B)``,
        ``p_churn (B)``, next state."""
        outs = self.session.run(None, {"x": x, "elapsed": elapsed, **state})
        named = dict(zip(self.outputs, outs, strict=True))
        new_state = {name: named[name + "_out"] for name in self.state_shapes}
        return named["p_purchase"], named["p_churn"], new_state


def featurize_in_order(events: Sequence[Event]) -> np.ndarray:
    """Feature rows ``(N, F)`` in input order, each user's context carried in file order."""
    contexts: dict[str, FeatureContext] = {}
    out: list[np.ndarray] = []
    for event in events:
        row, contexts[event.user_id] = featurize(
            event, contexts.get(event.user_id, FeatureContext())
        )
        out.append(row)
    return np.stack(out) if out else np.zeros((0, FEATURE_DIM), np.float32)


def waves(user_index: np.ndarray) -> list[np.ndarray]:
    """Event positions grouped by their rank within their user: wave k = every user's k-th event."""
    rank = np.zeros(len(user_index), np.int64)
    seen: dict[int, int] = {}
    for i, u in enumerate(user_index.tolist()):
        rank[i] = seen.get(u, 0)
        seen[u] = rank[i] + 1
    order = np.argsort(rank, kind="stable")  # keeps file order inside a wave
    bounds = np.searchsorted(rank[order], np.arange(1, int(rank.max(initial=-1)) + 1))
    return [w for w in np.split(order, bounds) if len(w)]


def score_events(model_dir: str | Path, events: Sequence[Event], threads: int = 1) -> Scores:
    """Score every event with the step graph (elapsed = 0), batching waves of distinct users."""
    scorer = StepScorer(model_dir, threads=threads)
    n = len(events)
    rows = featurize_in_order(events)  # (N, F)
    users: dict[str, int] = {}
    user_index = np.fromiter((users.setdefault(e.user_id, len(users)) for e in events), np.int64, n)
    state = {
        name: np.zeros((len(users), *shape), np.float32)
        for name, shape in scorer.state_shapes.items()
    }  # per-user state, (U, ...) each; a fresh user starts with zeros
    p_purchase = np.zeros(n, np.float32)
    p_churn = np.zeros(n, np.float32)
    for wave in waves(user_index):
        for start in range(0, len(wave), MAX_BATCH):
            pos = wave[start : start + MAX_BATCH]  # (B,) event positions, distinct users
            who = user_index[pos]  # (B,)
            batch_state = {name: s[who] for name, s in state.items()}
            elapsed = np.zeros(len(pos), np.float32)
            pp, pc, new_state = scorer.step(rows[pos], elapsed, batch_state)
            p_purchase[pos], p_churn[pos] = pp, pc
            for name, s in new_state.items():
                state[name][who] = s
    return Scores(
        event_id=[e.event_id for e in events],
        user_id=[e.user_id for e in events],
        timestamp=np.fromiter((e.ts_ms for e in events), np.int64, n),
        p_purchase=p_purchase,
        p_churn=p_churn,
    )


def write_scores(scores: Scores, out: str | Path) -> None:
    """Write scores as CSV or Parquet, chosen by ``out``'s extension."""
    import pyarrow as pa  # local: pyarrow is a training extra, and only writing needs it

    table = pa.table(
        {
            "event_id": pa.array(scores.event_id, pa.string()),
            "user_id": pa.array(scores.user_id, pa.string()),
            "timestamp": pa.array(scores.timestamp, pa.int64()),
            "p_purchase": pa.array(scores.p_purchase, pa.float32()),
            "p_churn": pa.array(scores.p_churn, pa.float32()),
        }
    )
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        pq.write_table(table, path)
    elif suffix == ".csv":
        import pyarrow.csv as pcsv

        pcsv.write_csv(table, path)
    else:
        raise ValueError(f"--out {out}: extension must be .csv or .parquet")
