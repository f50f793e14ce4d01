"""Batching users' rows into padded tensors for the sequence form.

Training uses windows: a long user is cut into windows of at most ``max_len`` events that overlap
by ``burn_in`` events; the overlap only warms the GRU up (no loss there), so every labelled row
is trained on once with at least ``burn_in`` events of history (or all of it, near the start).
Evaluation instead runs each user's *full* history, as the worker does. Padding goes on the right:
the model is causal, so padded steps never change the real ones, and masks drop them from the loss.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from training.labels import UserRows, augmented_churn


@dataclass(frozen=True)
class Window:
    """Events ``[start, stop)`` of user ``user``; loss only on ``[loss_from, stop)``."""

    user: int
    start: int
    stop: int
    loss_from: int


@dataclass
class Batch:
    """Padded tensors; masks are False on padding, censored rows and rows outside the split."""

    x: torch.Tensor  # (B, T, F)
    elapsed: torch.Tensor  # (B, T) seconds
    y_prop: torch.Tensor  # (B, T)
    m_prop: torch.Tensor  # (B, T) bool
    y_churn: torch.Tensor  # (B, T)
    m_churn: torch.Tensor  # (B, T) bool


def windows_for(
    users: Sequence[UserRows], split_id: int, max_len: int, burn_in: int
) -> list[Window]:
    """Windows covering every labelled row of ``split_id`` (rows of other splits give context)."""
    if not 0 <= burn_in < max_len:
        raise ValueError("need 0 <= burn_in < max_len")
    out = []
    for ui, u in enumerate(users):
        wanted = (u.split == split_id) & (u.m_prop | u.m_churn)  # (T,)
        if not wanted.any():
            continue
        last = int(np.flatnonzero(wanted)[-1]) + 1
        loss_from = int(np.flatnonzero(wanted)[0])
        while loss_from < last:
            start = max(0, loss_from - burn_in)
            stop = min(last, start + max_len)
            out.append(Window(ui, start, stop, loss_from))
            loss_from = stop
    return out


def augment(
    users: Sequence[UserRows], churn_ms: int, end_ms: int, rng: np.random.Generator
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per user, churn rows at a freshly sampled elapsed time (one draw per epoch)."""
    return [augmented_churn(u.ts, churn_ms, end_ms, rng) for u in users]


def make_batch(
    users: Sequence[UserRows],
    windows: Sequence[Window],
    split_id: int,
    churn_rows: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]] | None = None,
) -> Batch:
    """Pad ``windows`` into one batch; ``churn_rows`` (from ``augment``) replace elapsed-0 rows."""
    b, t = len(windows), max(w.stop - w.start for w in windows)
    f = users[windows[0].user].x.shape[1]
    x = np.zeros((b, t, f), np.float32)  # (B, T, F)
    elapsed = np.zeros((b, t), np.float32)  # (B, T)
    y_prop, y_churn = np.zeros((b, t), np.float32), np.zeros((b, t), np.float32)
    m_prop, m_churn = np.zeros((b, t), bool), np.zeros((b, t), bool)
    for i, w in enumerate(windows):
        u, n, sl = users[w.user], w.stop - w.start, slice(w.start, w.stop)
        in_split = u.split[sl] == split_id
        in_split[: w.loss_from - w.start] = False  # burn-in: context only
        x[i, :n] = u.x[sl]
        y_prop[i, :n], m_prop[i, :n] = u.y_prop[sl], u.m_prop[sl] & in_split
        if churn_rows is None:
            y_churn[i, :n], m_churn[i, :n] = u.y_churn[sl], u.m_churn[sl] & in_split
        else:
            e, y, m = churn_rows[w.user]
            elapsed[i, :n], y_churn[i, :n], m_churn[i, :n] = e[sl], y[sl], m[sl] & in_split
    return Batch(*(torch.from_numpy(a) for a in (x, elapsed, y_prop, m_prop, y_churn, m_churn)))


def full_batches(
    users: Sequence[UserRows], max_tokens: int = 65_536
) -> Iterator[tuple[list[int], torch.Tensor]]:
    """Users' whole histories in length-sorted padded batches: ``(user indices, x (B, T, F))``."""
    order = sorted(range(len(users)), key=lambda i: len(users[i].ts))
    i = 0
    while i < len(order):
        longest = len(users[order[i]].ts)
        j = i + 1
        # Lengths only grow along ``order``; stop when B * T would pass the token budget.
        while j < len(order) and (j - i + 1) * len(users[order[j]].ts) <= max_tokens:
            j += 1
        chosen = order[i:j]
        longest = len(users[chosen[-1]].ts)
        x = np.zeros((len(chosen), longest, users[chosen[0]].x.shape[1]), np.float32)
        for k, ui in enumerate(chosen):
            x[k, : len(users[ui].ts)] = users[ui].x
        yield chosen, torch.from_numpy(x)
        i = j
