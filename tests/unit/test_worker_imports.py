"""The worker installs and runs without the training extras: no module of it imports them.

``pip install .`` (no ``[training]``) has no torch, scikit-learn, onnx, matplotlib or pyarrow;
a worker module that imported one at import time would fail there only.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TRAINING_EXTRAS = ("torch", "sklearn", "onnx", "matplotlib", "pyarrow")

PROBE = """
import importlib, pkgutil, sys
import worker, worker.cli
for m in pkgutil.walk_packages(worker.__path__, "worker."):
    if not m.name.endswith("__main__"):
        importlib.import_module(m.name)
worker.cli.build_parser()
print(" ".join(sorted({n.split(".")[0] for n in sys.modules})))
"""


def test_no_worker_module_imports_a_training_extra() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    loaded = set(done.stdout.split())
    assert "worker" in loaded and "faust" in loaded  # the probe did import the worker
    assert not loaded & set(TRAINING_EXTRAS), loaded & set(TRAINING_EXTRAS)
