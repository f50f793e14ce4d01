"""The ``worker_factory`` fixture: a pytest plugin, listed in tests/conftest.py pytest_plugins."""

from __future__ import annotations

from collections.abc import Generator, Iterator
from pathlib import Path

import pytest

from tests.e2e.worker_process import WorkerFactory


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None]:
    # Keep each phase's report on the test item, so a fixture's teardown can see a failure.
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"report_{report.when}", report)


@pytest.fixture
def worker_factory(
    kafka_bootstrap: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[WorkerFactory]:
    """``worker_factory.start(model_dir, **settings)``: workers on their own topics and group.

    Every worker still running is stopped after the test; when the test failed, each worker's log
    is printed with the failure.
    """
    factory = WorkerFactory(kafka_bootstrap, tmp_path)
    yield factory
    report = getattr(request.node, "report_call", None)
    factory.close(failed=report is None or report.failed)
