"""Small model artifacts and synthetic events for the worker's tests (built with training.export).

A randomly initialised model is enough: the worker's tests check plumbing and parity, not skill.
"""

from __future__ import annotations

import atexit
import functools
import random
import shutil
import tempfile
from pathlib import Path
from typing import Any

from schemas.event import EVENT_TYPES, Event, encode_event

T0_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z


def make_artifact(
    out: Path,
    *,
    seed: int = 0,
    hidden: int = 16,
    thresholds: dict[str, float] | None = None,
    model_version: str | None = None,
    churn_from_silence: bool = False,
    horizons: tuple[float, float] = (86_400.0, 259_200.0),
) -> dict[str, Any]:
    """Write a tiny (random weights) artifact to ``out``; returns its manifest.

    ``churn_from_silence``: the churn head ignores the hidden state and reads only the elapsed
    time: p_churn ~ 0.007 when scoring an event (elapsed 0), ~ 1 after a few minutes of silence,
    so the sweep fires and event scoring never does (a hand-set model, for the sweep's tests).
    ``horizons``: the manifest's (propensity H, churn D) in seconds (alert outcomes use them).
    """
    import torch

    from training.export import write_artifact
    from training.featurizer import FEATURE_DIM
    from training.model import ClickModel, ModelConfig

    torch.manual_seed(seed)
    model = ClickModel(ModelConfig(feature_dim=FEATURE_DIM, hidden_size=hidden, conv_channels=8))
    if churn_from_silence:
        first, last = model.churn_mlp.mlp[0], model.churn_mlp.mlp[2]
        with torch.no_grad():
            assert model.churn_mlp.wide is not None
            model.churn_mlp.wide.weight.zero_()  # the wide path would pass the feature row
            model.churn_mlp.wide.bias.zero_()
            first.weight.zero_()
            first.weight[:, -1] = 1.0  # only log1p(elapsed / 60) passes
            first.bias.zero_()
            last.weight.fill_(1.0)
            last.bias.fill_(-5.0)  # (churn_hidden * log1p(elapsed / 60)) - 5
    return write_artifact(
        model,
        out,
        propensity_seconds=horizons[0],
        churn_seconds=horizons[1],
        thresholds=thresholds or {"propensity": 0.5, "churn": 0.5},
        model_version=model_version or f"test-{seed}-h{hidden}",
    )


@functools.cache
def shared_artifact(
    seed: int = 0, hidden: int = 16, propensity: float = 0.5, churn: float = 0.5
) -> Path:
    """One artifact per parameter set per test session (torch export takes seconds): read-only!

    Tests that change files copy it first (:func:`copy_artifact`).
    """
    root = Path(tempfile.mkdtemp(prefix="clickscore-model-"))
    atexit.register(shutil.rmtree, root, True)
    make_artifact(
        root, seed=seed, hidden=hidden, thresholds={"propensity": propensity, "churn": churn}
    )
    return root


def copy_artifact(src: Path, dst: Path) -> Path:
    """A writable copy of an artifact directory."""
    shutil.copytree(src, dst, dirs_exist_ok=True)
    return dst


def make_events(n: int, users: int, *, seed: int = 0, prefix: str = "e") -> list[Event]:
    """``n`` valid events over ``users`` users, one second apart, unique ids, seeded."""
    rng = random.Random(seed)
    events = []
    for i in range(n):
        events.append(
            Event(
                event_id=f"{prefix}{i}",
                user_id=f"u{rng.randrange(users)}",
                event_type=rng.choice(EVENT_TYPES),
                ts_ms=T0_MS + i * 1000,
                session_id=f"s{i // 50}",
                item_id=f"i{rng.randrange(40)}",
                category_id=f"c{rng.randrange(6)}",
                price=round(rng.uniform(1, 200), 2) if rng.random() < 0.5 else None,
                quantity=rng.choice([None, 1, 2]),
            )
        )
    return events


def keyed(events: list[Event]) -> list[tuple[bytes, bytes]]:
    """(key, value) records keyed by user id, as every producer of ours writes them."""
    return [(e.user_id.encode(), encode_event(e)) for e in events]
