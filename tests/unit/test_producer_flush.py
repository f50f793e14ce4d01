"""worker/runtime/producer_flush.py: a flush returns only once every buffered send has left.

Faust's own ``ProducerBuffer.flush()`` gives up after 0.1 s without progress (the commit that
follows then covers sends still in memory); a sender slower than that shows the difference.
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from faust.transport.producer import ProducerBuffer

from worker.runtime import producer_flush

SEND_SECONDS = 0.3  # slower than Faust's 0.1 s patience


class SlowBuffer(ProducerBuffer):
    """A buffer whose sends take SEND_SECONDS each and are recorded."""

    sent: list[Any]

    async def _send_pending(self, fut: Any) -> None:
        await asyncio.sleep(SEND_SECONDS)
        self.sent.append(fut)


async def _flush_three(fixed: bool) -> tuple[int, int]:
    buffer = SlowBuffer()
    buffer.app = SimpleNamespace(conf=SimpleNamespace(producer_threaded=False))  # type: ignore[assignment]
    buffer.sent = []
    if fixed:
        producer_flush.install(buffer)
    await buffer.start()
    loop = asyncio.get_running_loop()
    for _ in range(3):
        buffer.put(loop.create_future())  # type: ignore[arg-type]
    await buffer.flush()
    done = len(buffer.sent), buffer.size
    await asyncio.sleep(4 * SEND_SECONDS)  # let the rest go, so stopping finds an empty buffer
    await buffer.stop()
    return done


def test_faust_flush_returns_with_sends_still_buffered() -> None:
    # The bug the workaround exists for; if Faust fixes it this fails and the workaround can go.
    sent, _left = asyncio.run(_flush_three(fixed=False))
    assert sent < 3


def test_installed_flush_waits_for_every_send() -> None:
    assert asyncio.run(_flush_three(fixed=True)) == (3, 0)
