"""Drift: live scores and key inputs over a sliding window, against the manifest's reference.

The manifest's optional ``reference`` (training/reference.py) holds, per head and per key input,
fixed bin edges and the test split's fraction in each bin. The worker keeps the bins of the last
``window`` scored events (a ring of bin indices and their counts: O(1) per event, exact) and
reports the population stability index ``sum((a - e) * ln(a / e))`` of live fractions ``a``
against reference fractions ``e``. Customary reading: < 0.1 stable, 0.1-0.2 a shift worth a
look, > 0.2 a shift (the ``ClickscoreScoreDrift`` rule). Below ``MIN_COUNT`` live values the index
is mostly noise, so none is reported.

>>> ref = Reference(edges=np.array([0.5]), fractions=np.array([0.5, 0.5]))
>>> w = Window(ref, size=400)
>>> w.add(np.r_[np.full(100, 0.1), np.full(100, 0.9)]); round(w.psi() or 0.0, 6)
0.0
>>> w.add(np.full(400, 0.9)); w.psi() > 0.2
True
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np

from training.featurizer import FEATURE_NAMES

MIN_COUNT = 200  # with 10 bins, an unshifted window of 200 gives PSI ~ 0.02-0.05
EPSILON = 1e-4  # floor for an empty bin's fraction (ln(0) otherwise)
HEADS = ("propensity", "churn")


class Reference(NamedTuple):
    """Bin edges (``E``,) and the reference fraction in each of the ``E + 1`` bins."""

    edges: np.ndarray
    fractions: np.ndarray

    def bins(self, values: np.ndarray) -> np.ndarray:
        """Bin index of each value: the number of edges below it (bins ``(e[i-1], e[i]]``)."""
        return np.searchsorted(self.edges, values, side="left")


def psi(expected: np.ndarray, actual: np.ndarray) -> float:
    """Population stability index of ``actual`` fractions against ``expected`` ones."""
    e = np.clip(np.asarray(expected, dtype=np.float64), EPSILON, None)
    a = np.clip(np.asarray(actual, dtype=np.float64), EPSILON, None)
    return float(np.sum((a - e) * np.log(a / e)))


class Window:
    """The bins of the last ``size`` values, and their PSI against ``reference``."""

    def __init__(self, reference: Reference, size: int) -> None:
        self.reference = reference
        self.ring = np.zeros(size, dtype=np.int64)  # bin indices, oldest overwritten first
        self.counts = np.zeros(len(reference.fractions), dtype=np.int64)
        self.filled = 0
        self.next = 0

    def add(self, values: np.ndarray) -> None:
        """Add values (any shape); the oldest fall out once the window is full."""
        size = len(self.ring)
        bins = self.reference.bins(np.asarray(values, dtype=np.float64).reshape(-1))[-size:]
        slots = (self.next + np.arange(len(bins))) % size  # (n,) ring positions to overwrite
        old = slots[self.filled + np.arange(len(bins)) >= size]  # those that hold a value
        np.subtract.at(self.counts, self.ring[old], 1)
        np.add.at(self.counts, bins, 1)
        self.ring[slots] = bins
        self.filled = min(size, self.filled + len(bins))
        self.next = int((self.next + len(bins)) % size)

    def psi(self) -> float | None:
        """PSI over the window; None until it holds ``MIN_COUNT`` values."""
        if self.filled < min(MIN_COUNT, len(self.ring)):
            return None
        return psi(self.reference.fractions, self.counts / self.filled)


def references(manifest: Mapping[str, Any]) -> dict[str, dict[str, Reference]]:
    """``{"scores": {head: Reference}, "inputs": {name: Reference}}`` (either may be empty).

    Inputs the featurizer does not have are skipped, so a reference never stops a model loading.
    """
    ref = manifest.get("reference") or {}
    out: dict[str, dict[str, Reference]] = {"scores": {}, "inputs": {}}
    for kind, allowed in (("scores", HEADS), ("inputs", FEATURE_NAMES)):
        for name, hist in (ref.get(kind) or {}).items():
            if name in allowed and len(hist["fractions"]) == len(hist["edges"]) + 1:
                out[kind][name] = Reference(
                    np.asarray(hist["edges"], dtype=np.float64),
                    np.asarray(hist["fractions"], dtype=np.float64),
                )
    return out


class DriftMonitor:
    """One model's windows: a PSI per head and per key input the manifest has a reference for."""

    def __init__(self, manifest: Mapping[str, Any], size: int) -> None:
        refs = references(manifest)
        self.scores = {h: Window(r, size) for h, r in refs["scores"].items()}
        self.inputs = {n: Window(r, size) for n, r in refs["inputs"].items()}
        self._columns = {n: FEATURE_NAMES.index(n) for n in self.inputs}

    def observe(self, waves: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> None:
        """Add a batch's scored waves: ``x (B, F)``, ``p_purchase (B,)``, ``p_churn (B,)``."""
        for x, p_purchase, p_churn in waves:
            for head, scores in (("propensity", p_purchase), ("churn", p_churn)):
                if head in self.scores:
                    self.scores[head].add(scores)
            for name, column in self._columns.items():
                self.inputs[name].add(x[:, column])

    def score_psi(self) -> dict[str, float]:
        """PSI per head, for heads with a reference and enough live scores."""
        return {h: v for h, w in self.scores.items() if (v := w.psi()) is not None}

    def score_histograms(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Per head with enough live scores: (live fractions, reference fractions), bin by bin."""
        out = {}
        for head, w in self.scores.items():
            if w.psi() is not None:
                out[head] = (w.counts / w.filled, w.reference.fractions)
        return out

    def input_psi(self) -> dict[str, float]:
        """PSI per key input, likewise."""
        return {n: v for n, w in self.inputs.items() if (v := w.psi()) is not None}
