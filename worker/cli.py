"""``python -m worker {run,replay,alerts,export,forget}``: the scoring worker and its tool commands.

``run`` reads every setting from ``CLICKSCORE_*`` variables (``run --help`` lists them); a bad
setting or a model that fails its checks exits non-zero with one line, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from typing import TYPE_CHECKING

from worker.env_check import unknown_variables
from worker.settings import Settings, SettingsError, load_settings, settings_help

if TYPE_CHECKING:  # heavy: imported by run_worker only once the settings are good
    from worker.core.model_store import ModelStore
    from worker.metrics import Metrics

EXIT_BAD_SETTINGS = 2
EXIT_BAD_MODEL = 3
EXIT_BAD_KAFKA = 4
EXIT_BAD_FAUST = 5  # the installed faust-streaming lacks a private name we rely on
EXIT_DATA_DIR_FULL = 6
ROOM_PROBE_BYTES = 1 << 20

log = logging.getLogger("worker")


def run_worker(args: argparse.Namespace) -> int:
    """Start the Faust worker; returns only on a start-up error (else Faust exits the process)."""
    unknown = unknown_variables()
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"clickscore worker: bad setting: {exc}", file=sys.stderr)
        for warning in unknown:  # a misspelt name is often why a setting looks missing
            print(f"clickscore worker: warning: {warning}", file=sys.stderr)
        return EXIT_BAD_SETTINGS
    from worker.runtime import event_loop

    loop, why_not = event_loop.select(settings.event_loop)  # before the first import of faust
    # Heavy imports after the settings check, so a bad setting fails fast.
    import faust
    from prometheus_client import CollectorRegistry

    from worker.logs import configure, logging_config
    from worker.metrics import Metrics
    from worker.runtime import faust_private
    from worker.runtime.app import build_app
    from worker.runtime.topics import TopicError, ensure_topics

    try:
        faust_private.check()
    except faust_private.FaustMismatch as exc:
        print(f"clickscore worker: {exc}", file=sys.stderr)
        return EXIT_BAD_FAUST
    configure(settings.log_level, settings.log_format)
    if not _make_data_dir(settings):
        return EXIT_BAD_SETTINGS
    if not _has_room(settings):
        return EXIT_DATA_DIR_FULL
    metrics = Metrics.create(CollectorRegistry())
    store = _open_model(settings, metrics)
    if store is None:
        return EXIT_BAD_MODEL
    for warning in [*unknown, *settings.warnings()]:
        log.warning("%s", warning)
    if why_not:
        log.warning("event loop: %s instead of %s: %s", loop, settings.event_loop, why_not)
    log.info("event loop: %s", loop)
    try:
        created = ensure_topics(settings)
    except TopicError as exc:
        print(f"clickscore worker: {exc}", file=sys.stderr)
        return EXIT_BAD_KAFKA
    if created:
        log.info("created topics: %s", ", ".join(created))
    app = build_app(settings, store, metrics)
    worker = faust.Worker(
        app,
        loglevel=settings.log_level,
        logging_config=logging_config(settings.log_level, settings.log_format),
        quiet=True,
        redirect_stdouts=False,
    )
    try:
        worker.execute_from_commandline()  # exits the process (status 0 after SIGTERM/SIGINT)
    finally:
        log.info("worker stopped (in-flight batch finished, offsets committed, producer flushed)")
    return 0


def _make_data_dir(settings: Settings) -> bool:
    """Create the data dir with its parents: Faust makes only the last level (no ./var yet)."""
    try:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        print(
            f"clickscore worker: bad setting: CLICKSCORE_DATA_DIR={settings.data_dir}: "
            f"cannot create it ({exc.strerror})",
            file=sys.stderr,
        )
        return False
    return True


def _has_room(settings: Settings) -> bool:
    """Write (and remove) a 1 MiB file: a full data dir is one line now, not a crash in a minute.

    Faust retries opening RocksDB for 60 s when the volume is full, then crashes (exit 1) with a
    traceback that names a MANIFEST file and a log line that says offsets were committed.
    """
    probe = settings.data_dir / ".room-probe"
    try:
        with probe.open("wb") as f:
            f.write(bytes(ROOM_PROBE_BYTES))
            f.flush()
            os.fsync(f.fileno())
    except OSError as exc:
        print(
            f"clickscore worker: CLICKSCORE_DATA_DIR={settings.data_dir} has no room for "
            f"{ROOM_PROBE_BYTES >> 20} MiB ({exc.strerror}): free or grow that volume; "
            "nothing was consumed",
            file=sys.stderr,
        )
        return False
    finally:
        probe.unlink(missing_ok=True)
    return True


def _open_model(settings: Settings, metrics: Metrics) -> ModelStore | None:
    """The model store, or None once the refusal is printed (the worker must not start)."""
    from training.artifact import ArtifactError
    from worker.core.model_store import ModelStore
    from worker.core.sweep import idle_mismatch

    try:
        store = ModelStore.open(settings.model_dir)
    except ArtifactError as exc:
        metrics.model_loads.labels("refused").inc()
        print(f"clickscore worker: model refused: {exc}", file=sys.stderr)
        return None
    model = store.current
    metrics.model_loads.labels("ok").inc()
    metrics.set_model(model.version, model.featurizer_version, model.scorer.provider)
    metrics.set_expected_precision(model.version, model.manifest.get("threshold_rule", {}))
    log.info("starting with settings %s", settings.loggable())
    log.info(
        "model loaded: %s from %s, provider %s",
        model.version,
        model.directory,
        model.scorer.provider,
    )
    if note := idle_mismatch(model, settings.churn_idle_seconds):
        log.warning(note)
    return store


def _lazy(module: str) -> tuple[object, object]:
    # replay/watch pull in confluent-kafka and rich; import them only when asked for.
    mod = importlib.import_module(module)
    return mod.add_arguments, mod.run


def build_parser() -> argparse.ArgumentParser:
    """The CLI parser (``run``'s help lists every setting with its variable and default)."""
    parser = argparse.ArgumentParser(prog="python -m worker", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser(
        "run",
        help="run the scoring worker (settings from CLICKSCORE_* environment variables)",
        description="Run the scoring worker. Settings (environment variables):",
        epilog=settings_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.set_defaults(func=run_worker)
    for name, module, text in (
        ("replay", "worker.tools.replay", "replay an event file into the events topic"),
        ("alerts", "worker.tools.alerts_viewer", "show the alert topics"),
        ("export", "worker.tools.export", "write the events topic to an event file for training"),
        ("forget", "worker.tools.forget", "delete one user's stored state (erasure request)"),
    ):
        if name in sys.argv[1:2]:
            add_arguments, runner = _lazy(module)
            p = sub.add_parser(name, help=text)
            add_arguments(p)  # type: ignore[operator]
            p.set_defaults(func=runner)
        else:
            sub.add_parser(name, help=text, add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m worker`` and ``clickscore-worker``."""
    if argv is not None:
        sys.argv = [sys.argv[0], *argv]
    parser = build_parser()
    args = parser.parse_args(sys.argv[1:])
    return int(args.func(args))
