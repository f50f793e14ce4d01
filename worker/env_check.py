"""``CLICKSCORE_*`` variables that no one reads: a warning each, with the closest real name.

Settings ignore unknown variables, so ``CLICKSCORE_BATCHSIZE=10`` would quietly leave the batch
size at its default; saying so at start turns a silent typo into a one-line fix.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping

from worker.settings import ENV_PREFIX, Settings, env_name

# CLICKSCORE_* variables read by deploy/local/kafka.sh or training, not by the worker: never
# "unknown".
OTHER_VARIABLES = frozenset(
    f"{ENV_PREFIX}{name}"
    for name in (
        "TRAIN_PRESET",
        "CACHE",
        "KAFKA_PORT",
        "KAFKA_CONTROLLER_PORT",
        "KAFKA_START_TIMEOUT",
        "KAFKA_JVM_OPTS",
        "PYTHON",
    )
)


def known_variables() -> frozenset[str]:
    """Every ``CLICKSCORE_*`` name the worker or the local broker script reads."""
    return frozenset(env_name(name) for name in Settings.model_fields) | OTHER_VARIABLES


def unknown_variables(env: Mapping[str, str] | None = None) -> list[str]:
    """A warning per ``CLICKSCORE_*`` variable nothing reads, with the nearest name if any."""
    env = os.environ if env is None else env
    known = known_variables()
    # Compare what follows the prefix: the shared prefix would make every name look close.
    suffixes = sorted(k.removeprefix(ENV_PREFIX) for k in known)
    warnings = []
    for name in sorted(k.upper() for k in env if k.upper().startswith(ENV_PREFIX)):
        if name in known:
            continue
        close = difflib.get_close_matches(name.removeprefix(ENV_PREFIX), suffixes, n=1, cutoff=0.7)
        hint = f" (did you mean {ENV_PREFIX}{close[0]}?)" if close else ""
        warnings.append(f"{name} is not a setting and is ignored{hint}")
    return warnings
