"""The Faust seam: every private name still exists, and the producer flush empties the buffer.

Faust's own ``ProducerBuffer.flush()`` gives up after 0.1 s without progress (the commit that
follows then covers sends still in memory); a sender slower than that shows the difference.
"""

from __future__ import annotations

import asyncio
from importlib.metadata import version
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import faust
import faust.stores.rocksdb
import pytest
from faust.transport.producer import ProducerBuffer

from worker.runtime import faust_private

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
        faust_private.install_full_flush(buffer)
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


def test_every_private_name_exists_in_the_installed_faust() -> None:
    # Fails after an upgrade that removed or renamed one: read the new Faust before moving the pin.
    assert [f"{r.module}.{r.name}" for r in faust_private.missing()] == []
    faust_private.check()


def test_a_missing_name_stops_the_check_with_one_line_naming_the_version(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delattr(faust.stores.rocksdb.Store, "_db_for_partition")
    with pytest.raises(faust_private.FaustMismatch) as err:
        faust_private.check()
    message = str(err.value)
    assert "\n" not in message
    assert f"faust-streaming {version('faust-streaming')} lacks" in message
    assert "faust.stores.rocksdb.Store._db_for_partition" in message


def test_an_instance_attribute_set_in_code_counts_and_a_made_up_one_does_not() -> None:
    present = faust_private.Reach("asyncio", "Queue._getters", "x", instance=True)
    made_up = faust_private.Reach("asyncio", "Queue._no_such_thing", "x", instance=True)
    assert present.present() and not made_up.present()


def test_the_pin_is_the_tested_minor_version() -> None:
    pyproject = (Path(__file__).resolve().parents[2] / "pyproject.toml").read_text()
    assert f'"faust-streaming[rocksdict]{faust_private.TESTED}"' in pyproject


async def _worker_consumer_wait() -> int:
    app = faust.App(f"fetch-wait-{id(object())}", broker="kafka://127.0.0.1:1", web_enabled=False)
    thread = app.consumer._thread  # type: ignore[attr-defined]  # the driver's consumer thread
    consumer = thread._create_worker_consumer(app.transport)  # built, not started: no broker
    return int(consumer._fetch_max_wait_ms)


def test_the_fetch_wait_setting_replaces_fausts_hard_coded_one() -> None:
    faust_private.set_fetch_max_wait(40)
    assert asyncio.run(_worker_consumer_wait()) == 40
    faust_private.set_fetch_max_wait(1500)  # a second call changes the value, it does not re-wrap
    assert asyncio.run(_worker_consumer_wait()) == 1500
