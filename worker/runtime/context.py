"""What the agent, the timers and the health routes share (its own module: no import loop)."""

from __future__ import annotations

from worker.core.drift import DriftMonitor
from worker.core.model_store import Model, ModelStore
from worker.core.poison import StrikeBook
from worker.core.records import PipelineConfig
from worker.core.sweep import SweepClock, SweepMemory
from worker.metrics import Metrics
from worker.settings import Settings


def pipeline_config(settings: Settings) -> PipelineConfig:
    """The pure core's settings."""
    return PipelineConfig(
        max_event_bytes=settings.max_event_bytes,
        dedup_window=settings.dedup_window,
        cooldown_ms=int(settings.alert_cooldown_seconds * 1000),
        hysteresis=settings.alert_hysteresis,
        pseudonym_key=settings.pseudonymize_key.get_secret_value().encode("utf-8"),
        emit_scores=bool(settings.scores_topic),
    )


class Runtime:
    """What the agent and timers share: settings, model store, metrics, sweep memory."""

    def __init__(self, settings: Settings, store: ModelStore, metrics: Metrics) -> None:
        self.settings = settings
        self.store = store
        self.metrics = metrics
        self.cfg = pipeline_config(settings)
        self.clock = SweepClock()
        self.sweep_memory = SweepMemory()
        self.assigned: frozenset[str] = frozenset()
        self.users_local = 0
        self._drift: tuple[str, DriftMonitor] | None = None
        strikes_file = settings.data_dir / "poison-strikes.json"
        self.strikes = StrikeBook(strikes_file, limit=settings.poison_attempts)

    def drift(self, model: Model) -> DriftMonitor:
        """The drift windows of ``model``: a new model (new reference) starts empty windows."""
        if self._drift is None or self._drift[0] != model.fingerprint:
            self._drift = (
                model.fingerprint,
                DriftMonitor(model.manifest, self.settings.drift_window),
            )
        return self._drift[1]
