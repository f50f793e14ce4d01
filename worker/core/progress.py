"""Is the consumer stuck? Lag above zero while the committed offset does not move, for too long.

A worker whose agent hangs (a send that never completes, a deadlock) keeps answering HTTP, so a
liveness probe that only asks "does the web server answer" never restarts it. ``/healthz`` asks
this instead (worker/runtime/health.py), once partitions are assigned and recovery is done: a
long restore is not a stuck consumer.

>>> t = [0.0]
>>> watch = ProgressWatch(stuck_after_s=60, clock=lambda: t[0])
>>> watch.observe("ev[0]", committed=10, lag=5)
>>> t[0] = 61.0; watch.observe("ev[0]", committed=10, lag=7)
>>> watch.stuck()
[('ev[0]', 61.0)]
>>> watch.observe("ev[0]", committed=12, lag=5); watch.stuck()
[]
"""

from __future__ import annotations

import time
from collections.abc import Callable


class ProgressWatch:
    """Per partition: the last committed offset seen, and since when it stands still under lag."""

    def __init__(self, stuck_after_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.stuck_after_s = stuck_after_s
        self._clock = clock
        self._seen: dict[str, tuple[int, float]] = {}  # partition -> (committed, since)
        self._lagging: set[str] = set()

    def observe(self, partition: str, committed: int, lag: int) -> None:
        """Note a partition's committed offset and lag (every few seconds)."""
        now = self._clock()
        last = self._seen.get(partition)
        if lag <= 0:
            self._lagging.discard(partition)
            self._seen[partition] = (committed, now)  # caught up: nothing to make progress on
            return
        if last is None or last[0] != committed or partition not in self._lagging:
            self._seen[partition] = (committed, now)  # progress, or lag just appeared
        self._lagging.add(partition)

    def reset(self) -> None:
        """Forget everything (a rebalance: partitions, offsets and recovery start over)."""
        self._seen.clear()
        self._lagging.clear()

    def stuck(self) -> list[tuple[str, float]]:
        """Partitions with lag and no commit for longer than the limit, with the seconds."""
        now = self._clock()
        out = []
        for partition in sorted(self._lagging):
            seconds = now - self._seen[partition][1]
            if seconds > self.stuck_after_s:
                out.append((partition, seconds))
        return out
