"""onnxruntime sessions for the step graph and the churn head, fed in micro-batches.

The worker treats the recurrent state generically: every tensor named in ``manifest["state"]`` is an
input of the step graph and comes back as ``<name>_out`` (GRU and LSTM exports alike).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import NamedTuple

import numpy as np
import onnxruntime as ort

CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"


class StepOutput(NamedTuple):
    """Scores and next state for a batch of B users (one event each).

    A tuple, so :class:`Scorer` is a :class:`training.artifact.StepScoring` like the offline one.
    """

    p_purchase: np.ndarray  # (B,)
    p_churn: np.ndarray  # (B,)
    state: dict[str, np.ndarray]  # name -> (B, *shape)


def choose_providers() -> list[str]:
    """CUDA first when this onnxruntime build has it, CPU always as the fallback."""
    available = ort.get_available_providers()
    return [CUDA, CPU] if CUDA in available else [CPU]


def open_session(graph: bytes | Path, providers: list[str]) -> ort.InferenceSession:
    """One session per graph; one intra-op thread, because the worker runs one process per core.

    The model store passes the graph's verified bytes; a path is for callers that checked nothing.
    """
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    source = graph if isinstance(graph, bytes) else str(graph)
    return ort.InferenceSession(source, sess_options=options, providers=providers)


class Scorer:
    """Runs the step graph and the churn head; stateless apart from the sessions.

    A :class:`training.artifact.StepScoring`; tests/unit/test_step_scorers.py holds it to the
    offline reference scorer on the same batch.
    """

    def __init__(
        self,
        step: ort.InferenceSession,
        churn_head: ort.InferenceSession,
        state_spec: Mapping[str, tuple[int, ...]],
    ) -> None:
        self.step_session = step
        self.churn_session = churn_head
        self.state_spec = dict(state_spec)
        self.churn_inputs = [i.name for i in churn_head.get_inputs()]
        self.provider = step.get_providers()[0]

    def step(
        self, x: np.ndarray, elapsed: np.ndarray, state: Mapping[str, np.ndarray]
    ) -> StepOutput:
        """One step for B users: x (B, F), elapsed (B,) seconds, state name -> (B, *shape)."""
        feeds = {"x": x.astype(np.float32, copy=False), "elapsed": elapsed.astype(np.float32)}
        for name in self.state_spec:
            feeds[name] = state[name].astype(np.float32, copy=False)
        names = ["p_purchase", "p_churn", *(f"{n}_out" for n in self.state_spec)]
        out = self.step_session.run(names, feeds)
        return StepOutput(
            p_purchase=np.asarray(out[0]).reshape(-1),  # (B,)
            p_churn=np.asarray(out[1]).reshape(-1),  # (B,)
            state={n: np.asarray(a) for n, a in zip(self.state_spec, out[2:], strict=True)},
        )

    def churn(self, state: Mapping[str, np.ndarray], elapsed: np.ndarray) -> np.ndarray:
        """P(churn) (B,) for B silent users from their state and seconds since their last event."""
        feeds: dict[str, np.ndarray] = {"elapsed": elapsed.astype(np.float32)}
        for name in self.churn_inputs:
            if name != "elapsed":
                feeds[name] = state[name].astype(np.float32, copy=False)
        (p_churn,) = self.churn_session.run(["p_churn"], feeds)
        return np.asarray(p_churn).reshape(-1)
