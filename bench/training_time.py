"""Training cost: wall time and peak memory of ``python -m training train --quick``.

The command runs as a child process, exactly as a user types it; its own peak RSS comes from
``wait4`` (the kernel's per-process high-water mark), so the simulator run before it cannot
inflate the number.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.report import Result
from bench.scoring import BenchError

__all__ = ["BenchError", "add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``python -m bench training``."""
    parser.add_argument("--events", type=Path, default=None, help="event file (default: simulate)")
    parser.add_argument("--users", type=int, default=600, help="simulated users (no --events)")
    parser.add_argument("--days", type=int, default=7, help="simulated days (no --events)")
    parser.add_argument("--preset", choices=("quick", "tiny", "default"), default="quick")
    parser.add_argument("--tiny", action="store_true", help="seconds-long smoke configuration")


def run(args: argparse.Namespace) -> Result:
    """Simulate (unless given events), then time ``train`` and read its peak RSS."""
    preset = "tiny" if args.tiny else args.preset
    users, days = (100, 8) if args.tiny else (args.users, args.days)
    with tempfile.TemporaryDirectory() as tmp:
        events = args.events
        if events is None:
            events = Path(tmp) / "events.csv"
            sim = ["simulate", "--users", str(users), "--days", str(days), "--seed", "7"]
            _measure([*sim, "--out", str(events)])
        n_events = sum(1 for _ in events.open("rb")) - 1
        train = ["train", "--events", str(events), "--out", str(Path(tmp) / "model")]
        wall, peak = _measure([*train, "--preset", preset, "--no-progress"])
    result = Result(
        "training",
        {
            "preset": preset,
            "events_file": str(args.events)
            if args.events
            else f"simulated {users} users, {days} d",
            "events": n_events,
            "torch_threads": os.cpu_count(),
        },
    )
    result.add(f"train --preset {preset}", "wall_time", wall, "s", events=n_events)
    result.add(f"train --preset {preset}", "peak_rss", peak, "bytes", events=n_events)
    result.add(f"train --preset {preset}", "events_per_second", n_events / wall, "events/s")
    return result


def _measure(argv: list[str]) -> tuple[float, int]:
    """Run ``python -m training ARGV``; return (wall seconds, peak RSS bytes) of that process."""
    with tempfile.TemporaryFile() as log:  # a file, not a pipe: a chatty child never blocks
        started = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-m", "training", *argv], stdout=log, stderr=subprocess.STDOUT
        )
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        proc.returncode = code = os.waitstatus_to_exitcode(status)
        if code != 0:
            log.seek(0)
            tail = log.read().decode(errors="replace")[-2000:]
            raise BenchError(f"training {argv[0]} failed (exit {code}): {tail}")
    return wall, usage.ru_maxrss * 1024  # Linux reports kilobytes
