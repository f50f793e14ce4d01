"""Drift reference: the test split's scores and key inputs, binned for the manifest.

The worker compares its live scores with these (worker/core/drift.py: a population stability
index per head). Bins are the reference's own deciles, fixed in the manifest: equal-width bins on
[0, 1] would put nearly every propensity score in the first bin, where no shift shows. A value
``v`` falls in bin ``i`` = the number of edges ``< v`` (bins ``(edges[i-1], edges[i]]``); the
worker bins the same way. Numpy only: the worker never needs this module, only its output.

>>> ref = histogram(np.arange(100.0), bins=4)
>>> ref["edges"], ref["fractions"]
([24.75, 49.5, 74.25], [0.25, 0.25, 0.25, 0.25])
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import numpy as np

from training.featurizer import FEATURE_NAMES

BINS: Final = 10
# The inputs whose shift an operator can act on: activity rate, history length, cart intent,
# prices, the mix of browsing. A few, so the label set of the worker's gauge stays small.
KEY_INPUTS: Final = (
    "log_gap",
    "log_events",
    "log_count_add_to_cart",
    "log_decayed_any_600s",
    "log_price",
)


def histogram(values: np.ndarray, bins: int = BINS) -> dict[str, Any]:
    """Decile edges (ties merged) and the fraction of ``values`` in each bin."""
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    qs = np.quantile(values, np.arange(1, bins) / bins) if len(values) else np.empty(0)
    edges = np.unique(np.round(qs, 6))  # rounded first: the worker bins by the stored edges
    counts = np.bincount(np.searchsorted(edges, values, side="left"), minlength=len(edges) + 1)
    fractions = counts / max(1, len(values))
    return {
        "edges": [float(e) for e in edges],
        "fractions": [round(float(f), 6) for f in fractions],
    }


def reference(
    scores: dict[str, np.ndarray], x: np.ndarray, split: str, inputs: Sequence[str] = KEY_INPUTS
) -> dict[str, Any]:
    """The manifest's ``reference``: per head and per key input, from the same rows ``x (N, F)``."""
    return {
        "split": split,
        "rows": len(x),
        "bins": BINS,
        "scores": {head: histogram(s) for head, s in scores.items()},
        "inputs": {name: histogram(x[:, FEATURE_NAMES.index(name)]) for name in inputs},
    }
