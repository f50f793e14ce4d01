"""The stuck-consumer check behind /healthz: lag with no commit for too long, and nothing else."""

from __future__ import annotations

from worker.core.progress import ProgressWatch


def _watch() -> tuple[ProgressWatch, list[float]]:
    t = [0.0]
    return ProgressWatch(stuck_after_s=60, clock=lambda: t[0]), t


def test_lag_without_a_commit_past_the_limit_is_stuck() -> None:
    watch, t = _watch()
    watch.observe("ev[0]", committed=100, lag=3)
    watch.observe("ev[1]", committed=50, lag=0)
    t[0] = 59.0
    watch.observe("ev[0]", committed=100, lag=9)
    assert watch.stuck() == []  # not yet
    t[0] = 61.0
    watch.observe("ev[0]", committed=100, lag=12)
    watch.observe("ev[1]", committed=50, lag=0)  # idle partition, nothing to consume: fine
    assert watch.stuck() == [("ev[0]", 61.0)]


def test_commits_under_lag_caught_up_and_a_rebalance_are_not_stuck() -> None:
    watch, t = _watch()
    for step in range(1, 10):  # a long backlog drained steadily: always lag, always progress
        t[0] = 30.0 * step
        watch.observe("ev[0]", committed=1000 * step, lag=10**6)
    assert watch.stuck() == []
    watch.observe("ev[1]", committed=5, lag=0)
    t[0] = 1000.0
    watch.observe("ev[1]", committed=5, lag=0)  # quiet for long: caught up, not stuck
    watch.observe("ev[1]", committed=5, lag=1)  # lag appears now: the clock starts now
    assert watch.stuck() == [("ev[0]", 730.0)]
    watch.reset()  # partitions move: start over
    assert watch.stuck() == []
