"""``python -m training {simulate,train,score}``.

A user's mistake (unreadable data, a horizon longer than the data, an unknown format, a bad
artifact) prints one line to stderr and exits 2; anything else is a bug and keeps its traceback.
Heavy imports (torch, sklearn) happen inside the subcommands, so ``--help`` is instant.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

if TYPE_CHECKING:
    from training.datasets import EventLog

USAGE_ERROR = 2
PRESET_NAMES = ("default", "quick", "tiny")  # training.train.PRESETS (not imported: torch is slow)
PRESET_ENV = "CLICKSCORE_TRAIN_PRESET"


class UserError(Exception):
    """An error the user can fix; printed as one line."""


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line (the usage text is one ``--help`` away)."""

    def error(self, message: str) -> NoReturn:
        """Print ``prog: error: message`` and exit 2."""
        self.exit(USAGE_ERROR, f"{self.prog}: error: {message}\n")


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be > 0 seconds")
    return value


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be between 0 and 1")
    return value


def _add_bad_fraction(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--max-bad-fraction", type=_fraction, default=0.01, metavar="F",
                        help="refuse the file when more of its rows than this are bad "
                        "(default 0.01)")  # fmt: skip


def _parser() -> argparse.ArgumentParser:
    from training.datasets import FORMATS  # import-light package: no torch

    parser = _Parser(
        prog="python -m training", description="clickscore training: data, model, scoring."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    sim = sub.add_parser(
        "simulate",
        help="write a synthetic clickstream (generic format)",
        description="Simulate users' clickstreams and write them as CSV/Parquet.",
    )
    sim.add_argument("--users", type=int, default=2000, help="number of users (default 2000)")
    sim.add_argument("--days", type=int, default=14, help="days simulated (default 14)")
    sim.add_argument("--seed", type=int, default=0, help="random seed; same seed, same events")
    sim.add_argument("--out", required=True, help="output file, .csv or .parquet")

    tr = sub.add_parser(
        "train",
        help="train, evaluate against baselines and export an artifact directory",
        description="Read events, build labels and a time split, train the CNN+RNN and the "
        "baselines, write ONNX graphs, manifest.json and report/ into --out.",
    )
    tr.add_argument("--events", required=True, help="event file (CSV/Parquet, maybe .gz)")
    tr.add_argument("--format", default="generic", choices=FORMATS, help="source format")
    tr.add_argument("--out", required=True, help="artifact directory to write")
    group = tr.add_mutually_exclusive_group()
    group.add_argument("--quick", action="store_const", dest="preset", const="quick",
                       help="demo preset: at most 3000 users, small net, 4 epochs")  # fmt: skip
    group.add_argument("--preset", choices=PRESET_NAMES,
                       help=f"training preset (tiny = seconds, for tests); {PRESET_ENV} "
                       "overrides both (tests run documented commands with tiny)")  # fmt: skip
    tr.add_argument("--propensity-horizon", type=_positive, metavar="SECONDS",
                    help="H: purchase within this many seconds (default per format)")  # fmt: skip
    tr.add_argument("--churn-horizon", type=_positive, metavar="SECONDS",
                    help="D: churn = silent this many seconds (default per format)")  # fmt: skip
    tr.set_defaults(preset="default")
    tr.add_argument("--max-users", type=int, metavar="N",
                    help="use a seeded sample of N users (overrides the preset)")  # fmt: skip
    tr.add_argument("--seed", type=int, default=0, help="seed for torch, numpy and sampling")
    tr.add_argument("--no-progress", action="store_true", help="no progress bars")
    _add_bad_fraction(tr)

    sc = sub.add_parser(
        "score",
        help="score every event offline with the step graph (= what the worker emits)",
        description="Score each event with the artifact's ONNX step graph, event by event per "
        "user with elapsed = 0; writes event_id,user_id,timestamp,p_purchase,p_churn.",
    )
    sc.add_argument("--model", required=True, help="artifact directory (with manifest.json)")
    sc.add_argument("--events", required=True, help="event file (CSV/Parquet, maybe .gz)")
    sc.add_argument("--format", default="generic", choices=FORMATS, help="source format")
    sc.add_argument("--out", required=True, help="output file: .csv or .parquet")
    _add_bad_fraction(sc)
    return parser


def _read(args: argparse.Namespace, require_purchase: bool) -> EventLog:
    from training.datasets import read_events

    if not Path(args.events).exists():
        raise UserError(f"--events {args.events}: no such file")
    return read_events(
        args.events,
        args.format,
        max_bad_fraction=args.max_bad_fraction,
        require_purchase=require_purchase,
    )


def _simulate(args: argparse.Namespace) -> None:
    from training.datasets import write_events
    from training.simulate import SimConfig, simulate

    if not args.out.endswith((".csv", ".parquet", ".csv.gz")):
        raise UserError(f"--out {args.out}: extension must be .csv, .csv.gz or .parquet")
    events = simulate(SimConfig(users=args.users, days=args.days, seed=args.seed))
    written = write_events(events, args.out)
    # Count the users in the file: a simulated user may never visit in the period.
    active = len({e.user_id for e in events})
    idle = (
        f" ({args.users - active} of {args.users} simulated never visited)"
        if active < args.users
        else ""
    )
    print(f"wrote {written} events of {active} users{idle} to {args.out}", file=sys.stderr)


def _train(args: argparse.Namespace) -> None:
    import numpy as np

    from training.labels import default_horizons, robust_range
    from training.pipeline import run_training
    from training.verdict import load as load_verdict
    from training.verdict import verdict_lines

    started = time.monotonic()
    preset = _preset(args.preset)
    log = _read(args, require_purchase=True)
    start, end = robust_range(np.fromiter((e.ts_ms for e in log.events), np.int64))
    default_h, default_d = default_horizons(args.format, (end - start) / 1000.0)
    manifest = run_training(
        log.events,
        args.out,
        propensity_seconds=args.propensity_horizon or default_h,
        churn_seconds=args.churn_horizon or default_d,
        preset=preset,
        seed=args.seed,
        max_users=args.max_users,
        source=log.source,
        fmt=args.format,
        progress=not args.no_progress and sys.stderr.isatty(),  # no \r-bars in a log file
    )
    elapsed = time.monotonic() - started
    auc = {head: m["cnn_rnn"]["roc_auc"] for head, m in manifest["metrics"].items()}
    print(
        f"wrote {args.out} ({manifest['model_version']}) in {elapsed:.1f} s; "
        f"test ROC-AUC of the CNN+RNN {auc}",
        file=sys.stderr,
    )
    for line in verdict_lines(manifest, load_verdict(args.out)[1]):  # what the report would bury
        print(f"note: {line}", file=sys.stderr)


def _preset(chosen: str) -> str:
    """The preset from the options, unless the environment overrides it (said on stderr)."""
    override = os.environ.get(PRESET_ENV)
    if not override:
        return chosen
    if override not in PRESET_NAMES:
        raise UserError(f"{PRESET_ENV}={override}: must be one of {', '.join(PRESET_NAMES)}")
    print(f"preset {override} (from {PRESET_ENV}; the options said {chosen})", file=sys.stderr)
    return override


def _score(args: argparse.Namespace) -> None:
    from training.score import score_events, write_scores

    if not args.out.endswith((".csv", ".parquet")):
        raise UserError(f"--out {args.out}: extension must be .csv or .parquet")
    log = _read(args, require_purchase=False)
    scores = score_events(args.model, log.events)
    write_scores(scores, args.out)
    print(f"scored {len(scores.event_id)} events into {args.out}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Parse, run one subcommand, turn user errors into one line and exit status 2."""
    from schemas import SchemaError
    from training.datasets import DatasetError
    from training.export import ArtifactError
    from training.labels import LabelError

    args = _parser().parse_args(argv)
    handlers = {"simulate": _simulate, "train": _train, "score": _score}
    try:
        handlers[args.command](args)
    except (UserError, DatasetError, LabelError, ArtifactError, SchemaError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return USAGE_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0
