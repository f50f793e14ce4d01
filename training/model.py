"""The CNN+RNN scorer: causal Conv1d over feature rows -> GRU -> propensity and churn heads.

Imports torch only. The same weights serve three forms, which are exported as three ONNX graphs:

- :meth:`ClickModel.forward` (sequence form): ``x (B, T, F)``, ``elapsed (B, T)`` -> two ``(B, T)``;
- :meth:`ClickModel.step` (step form): one event per user plus its state, for the streaming worker;
- :meth:`ClickModel.churn` (churn head alone): re-score a silent user from its stored state.

Each head sees the GRU's state and, beside it, the current feature row (whose second block holds
the featurizer's running aggregates) through an MLP plus a wide linear path. A silent user's last
feature row is the last row of its conv state, so the churn head needs no extra state.

Inputs are standardised inside the model (mean/std buffers, set from training rows by
training.warm_start), so the exported graphs take the featurizer's raw rows and a fresh user's
conv state stays raw zeros.

Because the convolution is causal (left padding K-1) and the GRU runs forward, stepping event by
event with a zero initial state gives exactly the sequence form's outputs (invariant 1).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class ModelConfig:
    """Shape of the network; written into the manifest's ``architecture``."""

    feature_dim: int = 58  # training.featurizer.FEATURE_DIM (this module imports torch only)
    conv_channels: int = 32
    kernel_size: int = 2
    hidden_size: int = 64
    num_layers: int = 1
    churn_hidden: int = 32  # width of each head's hidden layer
    dropout: float = 0.0
    # Heads see the current feature row (running aggregates included) beside the GRU state, and a
    # wide linear path from it: the network starts from what a linear baseline sees.
    side_inputs: bool = True
    # Ablation: zero the feature columns from ``aggregate_from`` on (the running aggregates).
    aggregates: bool = True
    aggregate_from: int = 32
    # Standardise every input (feature columns and the churn head's log elapsed time) with the
    # training rows' mean and std, held in buffers and exported inside the graphs.
    standardise: bool = True

    def to_dict(self) -> dict[str, float | int | str]:
        """Plain dict (for JSON), with the cell type spelled out."""
        return {"cell": "gru", **asdict(self)}


def elapsed_transform(elapsed: torch.Tensor) -> torch.Tensor:
    """Seconds since the user's last event -> the churn head's input, ``log1p(elapsed / 60)``."""
    # Clamp: a clock skew must never give log1p of a negative number (NaN in the worker).
    return torch.log1p(torch.clamp(elapsed, min=0.0) / 60.0)


class Head(nn.Module):
    """One head: an MLP over ``[hidden, side]`` plus a wide linear path from ``side``."""

    def __init__(self, hidden: int, side: int, width: int, dropout: float) -> None:
        super().__init__()
        self.drop = nn.Dropout(dropout)
        self.mlp = nn.Sequential(nn.Linear(hidden + side, width), nn.ReLU(), nn.Linear(width, 1))
        self.wide = nn.Linear(side, 1) if side else None

    def forward(self, h: torch.Tensor, side: torch.Tensor | None) -> torch.Tensor:
        """``h (..., H)``, ``side (..., S)`` or None -> logit ``(...)``."""
        if side is None:
            return self.mlp(self.drop(h)).squeeze(-1)
        logit = self.mlp(torch.cat([self.drop(h), side], dim=-1))  # (..., 1)
        assert self.wide is not None
        return (logit + self.wide(side)).squeeze(-1)

    @torch.no_grad()
    def fold_affine(self, a: float, b: float) -> None:
        """Make the head emit ``a * logit + b`` (calibration folded into its last layers)."""
        last = self.mlp[-1]
        assert isinstance(last, nn.Linear)
        last.weight.mul_(a)
        last.bias.mul_(a).add_(b)
        if self.wide is not None:
            self.wide.weight.mul_(a)
            self.wide.bias.mul_(a)


class ClickModel(nn.Module):
    """Two-headed causal CNN+GRU over a user's feature rows."""

    input_mask: torch.Tensor  # (F,) 1 for the columns the network sees, a buffer
    in_mean: torch.Tensor  # (F + 1,) feature columns, then log elapsed: identity until fitted
    in_scale: torch.Tensor  # (F + 1,) 1 / std

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        if config.kernel_size < 2:
            raise ValueError("kernel_size must be >= 2 (the conv state holds K-1 rows)")
        self.config = config
        self.conv = nn.Conv1d(config.feature_dim, config.conv_channels, config.kernel_size)
        self.rnn = nn.GRU(
            config.conv_channels,
            config.hidden_size,
            num_layers=config.num_layers,
            batch_first=True,
            dropout=config.dropout if config.num_layers > 1 else 0.0,
        )
        side = config.feature_dim if config.side_inputs else 0
        width, p = config.churn_hidden, config.dropout
        self.propensity_head = Head(config.hidden_size, side, width, p)
        self.churn_mlp = Head(config.hidden_size, side + 1, width, p)  # + log elapsed, last
        mask = torch.ones(config.feature_dim)
        if not config.aggregates:
            mask[config.aggregate_from :] = 0.0
        self.register_buffer("input_mask", mask, persistent=False)
        self.register_buffer("in_mean", torch.zeros(config.feature_dim + 1))
        self.register_buffer("in_scale", torch.ones(config.feature_dim + 1))

    @torch.no_grad()
    def set_standardisation(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """Use ``(v - mean) / std`` for the ``F`` columns and log elapsed (``F + 1`` each); a
        constant column (std 0) is only centred. A no-op unless ``config.standardise``."""
        if self.config.standardise:
            self.in_mean.copy_(mean)
            self.in_scale.copy_(torch.where(std > 1e-6, 1.0 / std.clamp(min=1e-6), 1.0))

    # -- heads ---------------------------------------------------------------------------
    def seen_rows(self, x: torch.Tensor) -> torch.Tensor:
        """Raw feature rows ``(..., F)`` as the network sees them: standardised (identity until
        fitted), aggregates zeroed if ablated."""
        f = self.config.feature_dim
        if self.config.standardise:
            x = (x - self.in_mean[:f]) * self.in_scale[:f]
        return x if self.config.aggregates else x * self.input_mask

    def propensity_logit(self, h: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Top-layer hidden ``(..., H)`` and feature row ``(..., F)`` -> propensity logit."""
        return self.propensity_head(h, x if self.config.side_inputs else None)

    def churn_side(self, x: torch.Tensor, elapsed: torch.Tensor) -> torch.Tensor:
        """The churn head's side input: the seen feature row ``(..., F)`` (with side inputs) and
        the (standardised) log elapsed time, last -> ``(..., F + 1)`` or ``(..., 1)``."""
        e = elapsed_transform(elapsed).unsqueeze(-1)  # (..., 1)
        if self.config.standardise:
            e = (e - self.in_mean[-1]) * self.in_scale[-1]
        return torch.cat([x, e], dim=-1) if self.config.side_inputs else e

    def churn_logit(self, h: torch.Tensor, x: torch.Tensor, elapsed: torch.Tensor) -> torch.Tensor:
        """Hidden ``(..., H)``, the last seen feature row ``(..., F)``, elapsed seconds -> logit."""
        return self.churn_mlp(h, self.churn_side(x, elapsed))

    # -- sequence form ---------------------------------------------------------------------
    def hidden_sequence(self, x: torch.Tensor) -> torch.Tensor:
        """Raw feature rows ``(B, T, F)`` -> top-layer hidden state at every step ``(B, T, H)``."""
        k = self.config.kernel_size
        # Causal: K-1 *raw* zero rows on the left, then the input transform -- the step form's
        # fresh conv state is raw zeros too, so both forms see the same (standardised) padding.
        xt = nn.functional.pad(x.transpose(1, 2), (k - 1, 0))  # (B, F, T+K-1)
        seen = self.seen_rows(xt.transpose(1, 2)).transpose(1, 2)  # (B, F, T+K-1)
        c = torch.relu(self.conv(seen)).transpose(1, 2)  # (B, T, C)
        out, _ = self.rnn(c)  # (B, T, H)
        return out

    def logits(self, x: torch.Tensor, elapsed: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Sequence-form logits ``(B, T)`` each; training uses these (BCE-with-logits is stable)."""
        h = self.hidden_sequence(x)  # (B, T, H)
        seen = self.seen_rows(x)  # (B, T, F)
        return self.propensity_logit(h, seen), self.churn_logit(h, seen, elapsed)

    def forward(self, x: torch.Tensor, elapsed: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Sequence form: ``x (B, T, F)``, ``elapsed (B, T)`` -> ``p_purchase, p_churn (B, T)``."""
        lp, lc = self.logits(x, elapsed)
        return torch.sigmoid(lp), torch.sigmoid(lc)

    # -- step form -------------------------------------------------------------------------
    def step(
        self,
        x: torch.Tensor,
        elapsed: torch.Tensor,
        conv_state: torch.Tensor,
        h_state: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """One event per user: ``x (B, F)``, ``elapsed (B)``, ``conv_state (B, K-1, F)``,
        ``h_state (B, L, H)`` -> ``p_purchase (B)``, ``p_churn (B)``, new conv and hidden states."""
        window = torch.cat([conv_state, x.unsqueeze(1)], dim=1)  # (B, K, F), raw rows
        seen = self.seen_rows(window)  # (B, K, F)
        c = torch.relu(self.conv(seen.transpose(1, 2)))  # (B, C, 1)
        h0 = h_state.transpose(0, 1).contiguous()  # (L, B, H): GRU's own layout
        out, h1 = self.rnn(c.transpose(1, 2), h0)  # out (B, 1, H), h1 (L, B, H)
        top, now = out[:, 0, :], seen[:, -1, :]  # (B, H), (B, F)
        p_purchase = torch.sigmoid(self.propensity_logit(top, now))  # (B,)
        p_churn = torch.sigmoid(self.churn_logit(top, now, elapsed))  # (B,)
        return p_purchase, p_churn, window[:, 1:, :], h1.transpose(0, 1)

    def churn(
        self, h_state: torch.Tensor, elapsed: torch.Tensor, conv_state: torch.Tensor
    ) -> torch.Tensor:
        """Churn head alone: ``h_state (B, L, H)``, ``elapsed (B)``, ``conv_state (B, K-1, F)``
        (its last row is the user's last event) -> ``p_churn (B)``."""
        top = h_state[:, -1, :]  # (B, H): the last layer's state is the top-layer output
        last = self.seen_rows(conv_state[:, -1, :])  # (B, F)
        return torch.sigmoid(self.churn_logit(top, last, elapsed))

    def initial_state(self, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        """A fresh user's state: zeros ``(B, K-1, F)`` and ``(B, L, H)``."""
        cfg = self.config
        return (
            torch.zeros(batch, cfg.kernel_size - 1, cfg.feature_dim),
            torch.zeros(batch, cfg.num_layers, cfg.hidden_size),
        )


class StepGraph(nn.Module):
    """Wrapper whose ``forward`` is the step form, for ONNX export."""

    def __init__(self, model: ClickModel) -> None:
        super().__init__()
        self.model = model

    def forward(
        self,
        x: torch.Tensor,
        elapsed: torch.Tensor,
        conv_state: torch.Tensor,
        h_state: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """See :meth:`ClickModel.step`."""
        return self.model.step(x, elapsed, conv_state, h_state)


class ChurnHeadGraph(nn.Module):
    """Wrapper whose ``forward`` is the churn head alone, for ONNX export."""

    def __init__(self, model: ClickModel) -> None:
        super().__init__()
        self.model = model

    def forward(
        self, h_state: torch.Tensor, elapsed: torch.Tensor, conv_state: torch.Tensor
    ) -> torch.Tensor:
        """See :meth:`ClickModel.churn` (conv_state last: unused, and pruned, without side
        inputs)."""
        return self.model.churn(h_state, elapsed, conv_state)
