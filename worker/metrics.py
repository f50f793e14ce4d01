"""Every metric of docs/contracts.md in one bundle, built against an injectable registry.

Tests build ``Metrics.create(CollectorRegistry())`` and read values back; the worker builds one on
its own registry and serves it on ``/metrics``. No user id is ever a label.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

# Batch sizes: powers of two up to a few times the default BATCH_SIZE (256), so both small
# latency-bound batches and full throughput batches are resolved.
BATCH_SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
# One ONNX step call takes ~10 µs (tiny batch) to a few ms (B=1024 on one thread).
SCORING_BUCKETS = (1e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 0.1, 0.5)
# Record timestamp -> sent: batch wait (20 ms default) + scoring, up to seconds under lag.
E2E_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
# A sweep walks every local user: milliseconds for thousands, seconds for millions.
SWEEP_BUCKETS = (0.001, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60)


@dataclass(frozen=True)
class Metrics:
    """The worker's metrics (prefix ``clickscore_``, base units, ``_total`` counters)."""

    registry: CollectorRegistry
    events_consumed: Counter
    events_scored: Counter
    events_dead_lettered: Counter
    events_duplicate: Counter
    events_rekeyed: Counter
    alerts_emitted: Counter
    scoring_batch_size: Histogram
    scoring_latency: Histogram
    end_to_end_latency: Histogram
    users_in_state: Gauge
    model_info: Gauge
    model_loads: Counter
    state_resets: Counter
    state_deleted: Counter
    control_records: Counter
    alert_outcomes: Counter
    expected_precision: Gauge
    consumer_lag: Gauge
    churn_sweep_duration: Histogram
    ready: Gauge
    score_psi: Gauge
    input_psi: Gauge
    score_bin_fraction: Gauge

    @classmethod
    def create(cls, registry: CollectorRegistry) -> Metrics:
        """Register every metric on ``registry`` (a fresh one per test)."""
        r = registry
        return cls(
            registry=r,
            events_consumed=Counter(
                "clickscore_events_consumed", "Records read from the events topic", registry=r
            ),
            events_scored=Counter(
                "clickscore_events_scored", "Events scored by the step graph", registry=r
            ),
            events_dead_lettered=Counter(
                "clickscore_events_dead_lettered",
                "Records sent to the dead-letter topic",
                ["reason"],
                registry=r,
            ),
            events_duplicate=Counter(
                "clickscore_events_duplicate",
                "Events whose id was already applied to the user (not scored again)",
                registry=r,
            ),
            events_rekeyed=Counter(
                "clickscore_events_rekeyed",
                "Valid events under a key != user_id, re-sent keyed by user_id",
                registry=r,
            ),
            alerts_emitted=Counter(
                "clickscore_alerts_emitted",
                "Alerts sent",
                ["alert_type", "trigger"],
                registry=r,
            ),
            scoring_batch_size=Histogram(
                "clickscore_scoring_batch_size",
                "Rows per step-graph call (one wave)",
                buckets=BATCH_SIZE_BUCKETS,
                registry=r,
            ),
            scoring_latency=Histogram(
                "clickscore_scoring_latency_seconds",
                "Seconds per step-graph call",
                buckets=SCORING_BUCKETS,
                registry=r,
            ),
            end_to_end_latency=Histogram(
                "clickscore_end_to_end_latency_seconds",
                "Kafka record timestamp to alert/score sent",
                buckets=E2E_BUCKETS,
                registry=r,
            ),
            users_in_state=Gauge(
                "clickscore_users_in_state", "Users in this worker's local state", registry=r
            ),
            model_info=Gauge(
                "clickscore_model_info",
                "The serving model (value 1)",
                ["model_version", "featurizer_version", "provider"],
                registry=r,
            ),
            model_loads=Counter(
                "clickscore_model_loads", "Model loads by result", ["result"], registry=r
            ),
            state_resets=Counter(
                "clickscore_state_resets",
                "User states reset because the model's state shapes changed",
                registry=r,
            ),
            state_deleted=Counter(
                "clickscore_state_deleted",
                "User states deleted (RocksDB and a changelog tombstone) by action: forget, expire",
                ["action"],
                registry=r,
            ),
            # model_version: the few versions that alerted within a horizon (bounded by swaps)
            alert_outcomes=Counter(
                "clickscore_alert_outcomes",
                "Alert outcomes resolved (alerts.outcomes records): true, false, unknown",
                ["head", "model_version", "outcome"],
                registry=r,
            ),
            expected_precision=Gauge(
                "clickscore_expected_precision",
                "Precision the manifest expects at its threshold (validation), per loaded model",
                ["head", "model_version"],
                registry=r,
            ),
            control_records=Counter(
                "clickscore_control_records",
                "Control records consumed (forget, expire, resolve), applied or not",
                ["action"],
                registry=r,
            ),
            consumer_lag=Gauge(
                "clickscore_consumer_lag",
                "End offset minus committed offset, per assigned partition",
                ["topic", "partition"],
                registry=r,
            ),
            churn_sweep_duration=Histogram(
                "clickscore_churn_sweep_duration_seconds",
                "Seconds per churn sweep",
                buckets=SWEEP_BUCKETS,
                registry=r,
            ),
            ready=Gauge(
                "clickscore_ready",
                "1 once partitions are assigned, recovery is done and a model is loaded",
                registry=r,
            ),
            score_psi=Gauge(
                "clickscore_score_psi",
                "Population stability index of live scores (sliding window) vs the manifest's"
                " test-split reference",
                ["head"],
                registry=r,
            ),
            input_psi=Gauge(
                "clickscore_input_psi",
                "Population stability index of a key input (sliding window) vs the reference",
                ["input"],
                registry=r,
            ),
            # At most 10 bins (the reference's deciles) x 2 heads x 2 sources: a bounded set.
            score_bin_fraction=Gauge(
                "clickscore_score_bin_fraction",
                "Fraction of scores in each reference bin: the live window or the reference",
                ["head", "bin", "source"],
                registry=r,
            ),
        )

    def set_model(self, version: str, featurizer_version: int, provider: str) -> None:
        """Point ``clickscore_model_info`` at the serving model only (old label set removed)."""
        self.model_info.clear()
        self.model_info.labels(version, str(featurizer_version), provider).set(1)

    def set_expected_precision(self, version: str, threshold_rule: Mapping[str, Any]) -> None:
        """``clickscore_expected_precision`` of a loaded model (kept: its alerts resolve later).

        Also starts its true/false outcome counters at 0, so live precision (a ratio of their
        increases, deploy/prometheus/rules) exists from the first outcome of either kind.
        """
        for head in ("propensity", "churn"):
            for outcome in ("true", "false"):
                self.alert_outcomes.labels(head, version, outcome)
            rule = threshold_rule.get(head)
            value = rule.get("expected_precision") if isinstance(rule, Mapping) else None
            if isinstance(value, int | float):
                self.expected_precision.labels(head, version).set(float(value))

    def set_drift(
        self,
        score_psi: dict[str, float],
        input_psi: dict[str, float],
        histograms: dict[str, tuple[np.ndarray, np.ndarray]] | None = None,
    ) -> None:
        """Export what the drift monitor has; a head without a PSI (yet) has no series."""
        for gauge, values in ((self.score_psi, score_psi), (self.input_psi, input_psi)):
            gauge.clear()
            for name, value in values.items():
                gauge.labels(name).set(value)
        self.score_bin_fraction.clear()
        for head, (live, reference) in (histograms or {}).items():
            for source, fractions in (("live", live), ("reference", reference)):
                for i, value in enumerate(fractions):
                    self.score_bin_fraction.labels(head, f"{i:02d}", source).set(float(value))

    def exposition(self) -> bytes:
        """The text exposition format for ``/metrics``."""
        return generate_latest(self.registry)
