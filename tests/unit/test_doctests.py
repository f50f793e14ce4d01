"""Every docstring example in schemas/, training/ and worker/ runs and still holds.

Modules are found by scanning source for ``>>>`` (no import at collection time): a new module with
examples is picked up without touching this file, and each one collected must run some example.
"""

from __future__ import annotations

import doctest
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("schemas", "training", "worker")


def _modules_with_examples() -> list[str]:
    found = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            # __main__ modules run a CLI when imported.
            if path.name == "__main__.py" or ">>>" not in path.read_text("utf-8"):
                continue
            parts = path.relative_to(ROOT).with_suffix("").parts
            found.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return found


@pytest.mark.parametrize("module_name", _modules_with_examples())
def test_doctests(module_name: str, capsys: pytest.CaptureFixture[str]) -> None:
    module = importlib.import_module(module_name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    report = capsys.readouterr().out
    assert result.attempted > 0, f"{module_name}: '>>>' found but no example collected"
    assert result.failed == 0, report
