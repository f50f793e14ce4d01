"""Replay's pacing arithmetic (token bucket, event-time clock), on a fake clock: no sleeping."""

from __future__ import annotations

import pytest

from worker.tools.replay import EventTimePacer, TokenBucket


def test_token_bucket_spaces_events_at_the_rate_after_the_burst() -> None:
    bucket = TokenBucket(rate=100.0, burst=5.0)
    now = bucket._last
    waits = [bucket.delay(now) for _ in range(8)]
    assert waits[:5] == [0.0] * 5  # the burst goes out at once
    assert waits[5:] == pytest.approx([0.01, 0.02, 0.03])  # then one every 1/rate seconds


def test_token_bucket_refills_with_time_but_never_beyond_the_burst() -> None:
    bucket = TokenBucket(rate=10.0, burst=2.0)
    now = bucket._last
    bucket.delay(now), bucket.delay(now)
    later = now + 60.0  # a long pause must not save up 600 tokens
    assert [bucket.delay(later) for _ in range(3)] == pytest.approx([0.0, 0.0, 0.1])


def test_event_clock_divides_event_time_by_the_speedup() -> None:
    clock = EventTimePacer(speedup=10.0)
    assert clock.delay(1_000_000, now=50.0) == 0.0  # the first event sets the origin
    assert clock.delay(1_010_000, now=50.0) == pytest.approx(1.0)  # 10 s of events -> 1 s
    assert clock.delay(1_010_000, now=50.4) == pytest.approx(0.6)
    assert clock.delay(1_005_000, now=51.0) == 0.0  # late or out of order: send now
