"""A small timer: median seconds per call over a few repeats, each long enough to trust the clock.

Speed is measured here and reported, never asserted in tests (the machine is shared and noisy).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def seconds_per_call(fn: Callable[[], object], min_time: float, repeats: int = 5) -> float:
    """Median over ``repeats`` of the mean time of ``n`` calls, ``n`` grown until a repeat lasts
    ``min_time / repeats`` (so a 2 µs call and a 50 ms call are both timed fairly)."""
    for _ in range(3):  # warm-up: lazy allocations, thread pools, CUDA kernels
        fn()
    per_repeat = min_time / repeats
    n = 1
    while True:
        elapsed = _run(fn, n)
        if elapsed >= per_repeat or n >= 1 << 20:
            break
        n = max(n * 2, int(n * per_repeat / max(elapsed, 1e-9)))
    samples = [elapsed / n] + [_run(fn, n) / n for _ in range(repeats - 1)]
    return statistics.median(samples)


def _run(fn: Callable[[], object], n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return time.perf_counter() - start
