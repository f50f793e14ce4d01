"""The worker's layers hold: the core imports no framework, the tools import no Faust.

Each check imports every module of a layer in a fresh interpreter (this test process has long
imported Faust itself) and lists which forbidden top-level packages ended up in ``sys.modules``.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

KAFKA_FRAMEWORKS = ("faust", "mode", "aiokafka", "confluent_kafka")
LAYERS = {
    # The pure core: no Faust, no Kafka client, no import of the other two layers.
    "worker.core": (*KAFKA_FRAMEWORKS, "worker.runtime", "worker.tools"),
    # Command-line tools are plain Kafka clients: no Faust, nothing of the Faust shell.
    "worker.tools": ("faust", "mode", "aiokafka", "worker.runtime"),
}

PROBE = """
import importlib, json, pkgutil, sys
package = importlib.import_module(sys.argv[1])
names = [m.name for m in pkgutil.iter_modules(package.__path__, package.__name__ + ".")]
for name in names:
    importlib.import_module(name)
forbidden = json.loads(sys.argv[2])
found = sorted({f for f in forbidden for m in sys.modules if m == f or m.startswith(f + ".")})
print(json.dumps({"modules": names, "found": found}))
"""


def _imports(package: str, forbidden: tuple[str, ...]) -> dict[str, list[str]]:
    """Import every module of ``package`` in a new interpreter; which ``forbidden`` got loaded."""
    out = subprocess.run(
        [sys.executable, "-c", PROBE, package, json.dumps(forbidden)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    result: dict[str, list[str]] = json.loads(out.stdout.splitlines()[-1])
    return result


@pytest.mark.parametrize("package", sorted(LAYERS))
def test_layer_imports_nothing_forbidden(package: str) -> None:
    result = _imports(package, LAYERS[package])
    assert len(result["modules"]) >= 3, result  # the probe really imported the layer
    assert result["found"] == [], f"{package} pulls in {result['found']}"


def test_probe_sees_a_forbidden_import() -> None:
    # The runtime is the Faust shell: the same probe must report Faust there, or it proves nothing.
    assert "faust" in _imports("worker.runtime", ("faust",))["found"]
