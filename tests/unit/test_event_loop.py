"""The worker's event loop choice: uvloop by default, asyncio on request, before faust loads."""

from __future__ import annotations

import subprocess
import sys

import pytest

from worker.runtime import event_loop

# A fresh interpreter: the choice must be made before the first `import faust`.
_PROBE = """
import sys
from worker.runtime.event_loop import select
used, why_not = select(sys.argv[1])
import asyncio, faust
print(used, type(asyncio.get_event_loop_policy()).__module__, repr(why_not))
"""


@pytest.mark.parametrize(
    ("wanted", "policy"), [("uvloop", "uvloop"), ("asyncio", "asyncio.unix_events")]
)
def test_faust_runs_on_the_chosen_loop(wanted: str, policy: str) -> None:
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, wanted], capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == [wanted, policy, "''"]


def test_after_faust_is_imported_the_loop_in_effect_is_reported() -> None:
    import faust  # noqa: F401  # imported: the choice is made, whatever is asked now

    in_effect, _ = event_loop.select("asyncio")
    other = "uvloop" if in_effect == "asyncio" else "asyncio"
    assert event_loop.select(other) == (in_effect, "faust was imported before the loop was chosen")


def test_without_uvloop_installed_it_falls_back_to_asyncio(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delitem(sys.modules, "faust", raising=False)
    monkeypatch.setattr(event_loop.importlib.util, "find_spec", lambda _name: None)
    monkeypatch.delenv("FAUST_LOOP", raising=False)
    assert event_loop.select("uvloop") == ("asyncio", "uvloop is not installed")
    import os

    assert os.environ["FAUST_LOOP"] == "aio"
