"""Fixtures for the fault tests: one model + event set + offline reference per session."""

from __future__ import annotations

import pytest

from tests.faults.oracle import Oracle, build_oracle


@pytest.fixture(scope="session")
def oracle(tmp_path_factory: pytest.TempPathFactory) -> Oracle:
    """Events, a model whose thresholds fire alerts all along, and the uninterrupted-run answer."""
    return build_oracle(tmp_path_factory.mktemp("fault-oracle"))
