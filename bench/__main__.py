"""``python -m bench <name> [...]``: run one benchmark, write bench/results/<name>.{json,md}.

Numbers are printed and written, never asserted: the guard tests only check that the harness runs
in its tiny configuration and that its JSON matches bench/result.schema.json.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

from bench.report import RESULTS_DIR

# name -> module holding add_arguments(parser) and run(args) -> Result
BENCHMARKS = {
    "scoring": "bench.scoring",
    "state": "bench.state_size",
    "training": "bench.training_time",
    "kafka": "bench.kafka_pipeline",
    "recovery": "bench.recovery",
    "sweep": "bench.sweep_stall",
}


def main(argv: list[str] | None = None) -> int:
    """Parse, run the chosen benchmark, write and print its table."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--out", type=Path, default=RESULTS_DIR, help="results directory")
    sub = parser.add_subparsers(dest="name", required=True)
    for name, module_name in BENCHMARKS.items():
        module = importlib.import_module(module_name)
        module.add_arguments(sub.add_parser(name, help=(module.__doc__ or "").splitlines()[0]))
    args = parser.parse_args(argv)
    module = importlib.import_module(BENCHMARKS[args.name])
    try:
        result = module.run(args)
    except module.BenchError as exc:
        print(f"bench {args.name}: {exc}", file=sys.stderr)
        return 2
    json_path, md_path = result.write(args.out)
    print(md_path.read_text("utf-8"))
    print(f"wrote {json_path} and {md_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
