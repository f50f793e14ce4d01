"""Fixtures for the fault tests: one model + event set + offline reference per session.

The worker-process helpers live in tests/e2e/worker_process.py (the e2e tests import them by
module name because pytest puts each test file's folder on sys.path); this folder's tests need the
same helpers, so that folder goes on sys.path here too rather than copying them.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))

# Imported after the path change: oracle imports worker_artifacts, fleet imports worker_process.
from oracle import Oracle, build_oracle


@pytest.fixture(scope="session")
def oracle(tmp_path_factory: pytest.TempPathFactory) -> Oracle:
    """Events, a model whose thresholds fire alerts all along, and the uninterrupted-run answer."""
    return build_oracle(tmp_path_factory.mktemp("fault-oracle"))
