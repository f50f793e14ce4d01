"""Every reach into Faust's private API, each with why, and a start-up check that each still exists.

faust-streaming is pinned to the minor version these were read against (pyproject.toml). An
upgrade that renames one of them would otherwise fail far from here (a table write in the wrong
changelog partition, a commit covering unsent records), so :func:`missing` lists what the
installed version lacks and the worker refuses to start with one line naming it
(tests/unit/test_faust_private.py fails the same way).

The reaches:

1. ``faust.streams._current_event``: a table write picks its changelog partition (and RocksDB
   partition db) from the *current event*, which in a ``take_events`` batch is the batch's last
   one; before each user's read and write we make that user's own event current
   (:func:`make_current`). Faust has no public way to say "this key, this partition".
2. ``os._exit`` instead of Faust's stop (:func:`exit_without_ack`): an orderly stop runs
   ``take_events``' ``finally``, which acks the failed batch, and a later commit covers it.
3. ``ProducerBuffer.max_messages``: Faust pauses the stream once 100 sends are buffered; one batch
   queues a changelog write per user plus alerts and scores (:func:`raise_send_buffer_limit`).
4. ``ProducerBuffer.flush_atmost``/``pending`` and ``asyncio.Queue._getters``: Faust's flush
   returns with sends still buffered, and offsets are committed right after it
   (:func:`install_full_flush`; tests/faults/test_crash.py saw 3 of 3000 events never scored).
5. Wrapping ``Table.on_rebalance``: the only moment the partition dbs are open and Faust's
   recovery has not yet looked at them, where the changelog preload runs
   (:func:`wrap_on_rebalance`).
6. ``rocksdb.Store._db_for_partition`` and ``Store.offset_key``: the preload writes into the
   partition db Faust will read, under Faust's own offset key (:func:`partition_db`,
   :data:`OFFSET_KEY`).
7. ``Consumer._committed_offset``: the lag metric is end offset minus *committed* offset, and Faust
   keeps no public record of what it committed (:func:`committed_offset`).
8. Replacing ``Producer.flush`` on the app's producer: Faust commits offsets right after it, and
   a send the broker refused is reported (``Sensor.on_send_error``, worker/runtime/send_guard.py)
   from a callback that may run only after the commit began; the wrapper lets those callbacks run
   first (:func:`report_sends_before_commit`).
9. Wrapping ``AIOKafkaConsumerThread._create_worker_consumer`` and setting aiokafka's
   ``AIOKafkaConsumer._fetch_max_wait_ms`` on what it returns: Faust passes
   ``fetch_max_wait_ms=1500`` and has no setting for it. A broker answers one connection's requests
   in order, so the offset queries Faust makes after a rebalance wait behind a fetch the broker
   holds for up to that long (:func:`set_fetch_max_wait`).

Readiness needs none of these: :class:`worker.runtime.health.RebalanceSensor` uses Faust's public
``Sensor`` hooks (``on_rebalance_start`` / ``on_rebalance_end``).
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import logging
import os
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from importlib.metadata import version
from typing import Any

from faust.stores.rocksdb import Store as RocksDBStore
from faust.streams import _current_event
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread
from faust.types import EventT

log = logging.getLogger("worker")
TESTED = ">=0.15.3,<0.16"  # the pin in pyproject.toml
FLUSH_POLL_SECONDS = 0.005
EXIT_BATCH_FAILED = 70  # EX_SOFTWARE

#: Faust's RocksDB key for the last changelog offset written to a partition database.
OFFSET_KEY: bytes = RocksDBStore.offset_key


@dataclass(frozen=True)
class Reach:
    """One private name: where it lives, what we use it for, and how to see it is still there."""

    module: str
    name: str  # "Class.attribute" or a module-level name
    why: str
    instance: bool = False  # set in the class's code (``self.x = ...``), not on the class itself

    def present(self) -> bool:
        """Whether the installed Faust (or Python) still has it."""
        try:
            target: Any = importlib.import_module(self.module)
        except ImportError:
            return False
        *owners, attr = self.name.split(".")
        for owner in owners:
            target = getattr(target, owner, None)
            if target is None:
                return False
        if self.instance:
            annotated = any(attr in getattr(k, "__annotations__", {}) for k in target.__mro__)
            return annotated or f"self.{attr} =" in inspect.getsource(target)
        return hasattr(target, attr)


REACHES: tuple[Reach, ...] = (
    Reach("faust.streams", "_current_event", "table writes go to the current event's partition"),
    Reach("faust.transport.producer", "ProducerBuffer.max_messages", "send buffer limit"),
    Reach("faust.transport.producer", "ProducerBuffer.flush_atmost", "a flush that empties"),
    Reach("faust.transport.producer", "ProducerBuffer.pending", "a flush that empties", True),
    Reach("faust.transport.producer", "ProducerBuffer.should_stop", "a flush that empties"),
    Reach("asyncio", "Queue._getters", "is the buffer's sender idle", True),
    Reach("faust.tables.base", "Collection.on_rebalance", "changelog preload"),
    Reach("faust.stores.rocksdb", "Store._db_for_partition", "changelog preload"),
    Reach("faust.stores.rocksdb", "Store.offset_key", "changelog preload"),
    Reach("faust.transport.consumer", "Consumer._committed_offset", "consumer lag", True),
    Reach("faust.transport.drivers.aiokafka", "Producer.flush", "send errors before commit"),
    Reach(
        "faust.transport.drivers.aiokafka",
        "AIOKafkaConsumerThread._create_worker_consumer",
        "fetch wait setting",
    ),
    Reach("aiokafka.consumer.consumer", "AIOKafkaConsumer._fetch_max_wait_ms", "fetch wait", True),
)


class FaustMismatch(RuntimeError):
    """The installed faust-streaming lacks a private name the worker relies on (one line)."""


def missing() -> list[Reach]:
    """The reaches the installed version does not have (empty when all is well)."""
    return [reach for reach in REACHES if not reach.present()]


def check() -> None:
    """Raise :class:`FaustMismatch` naming the installed version and every missing name."""
    gone = missing()
    if gone:
        names = ", ".join(f"{r.module}.{r.name} ({r.why})" for r in gone)
        raise FaustMismatch(
            f"faust-streaming {version('faust-streaming')} lacks {names}; "
            f"the worker is tested with faust-streaming{TESTED}"
        )


def make_current(event: EventT) -> None:
    """Make ``event`` Faust's current event, so a table read or write picks *its* partition."""
    _current_event.set(weakref.ref(event))


def exit_without_ack(exc: BaseException) -> None:
    """Exit at once: Faust's orderly stop would ack, and later commit, the failed batch."""
    log.critical(
        "batch processing failed, exiting so the batch is redelivered: %r", exc, exc_info=exc
    )
    logging.shutdown()
    os._exit(EXIT_BATCH_FAILED)


def raise_send_buffer_limit(buffer: Any, limit: int) -> None:
    """Let ``limit`` sends wait in Faust's buffer before it pauses the stream (default 100)."""
    buffer.max_messages = max(buffer.max_messages, limit)


def _sender_idle(buffer: Any) -> bool:
    # The sender task (``_handle_pending``) waits in ``pending.get()`` only when it holds no
    # message; asyncio.Queue keeps those waiters in ``_getters`` (a CPython detail, no public API).
    return bool(getattr(buffer.pending, "_getters", ()))


def install_full_flush(buffer: Any) -> None:
    """Make ``buffer.flush()`` return only when every buffered message went to aiokafka.

    faust-streaming's ``ProducerBuffer.flush()`` (``flush_atmost(None)``) returns as soon as 0.1 s
    pass without a message leaving the buffer, with messages still in it, and its ``size`` does
    not count the message the sender task has taken but not yet handed to aiokafka.
    """
    partial_flush = buffer.flush_atmost

    async def flush() -> None:
        await partial_flush(None)
        # Stopping: the sender task is gone, so keep Faust's own best effort (the loop would hang).
        while not buffer.should_stop and not (buffer.size == 0 and _sender_idle(buffer)):
            await asyncio.sleep(FLUSH_POLL_SECONDS)
            await partial_flush(None)

    buffer.flush = flush


def report_sends_before_commit(producer: Any) -> None:
    """After ``producer.flush()`` (which Faust awaits right before committing), yield once.

    aiokafka resolves each send's future before its flush returns, but Faust's reaction to a
    failed one (``Topic._on_published`` -> ``Sensor.on_send_error``) is a done-callback the loop
    runs later: yielding lets it run, and stop the worker, before the commit goes out.
    """
    flush = producer.flush

    async def flush_then_report() -> None:
        await flush()
        await asyncio.sleep(0)

    producer.flush = flush_then_report


OnRebalance = Callable[[set[Any], set[Any], set[Any], int], Awaitable[None]]


def wrap_on_rebalance(table: Any, after: Callable[[set[Any]], Awaitable[None]]) -> None:
    """Run ``after(assigned)`` once ``table`` opened its partition dbs, before Faust's recovery.

    Faust calls ``Table.on_rebalance`` *before* its recovery service reads the persisted offsets
    (faust/tables/manager.py ``TableManager.on_rebalance``).
    """
    original: OnRebalance = table.on_rebalance

    async def on_rebalance(
        assigned: set[Any], revoked: set[Any], newly_assigned: set[Any], generation_id: int = 0
    ) -> None:
        await original(assigned, revoked, newly_assigned, generation_id)  # opens the dbs
        await after(assigned)

    table.on_rebalance = on_rebalance


def partition_db(store: Any, partition: int) -> Any:
    """The RocksDB database Faust keeps for ``partition`` of a table's store (opened if needed)."""
    return store._db_for_partition(partition)


def committed_offset(consumer: Any, tp: Any) -> int | None:
    """The offset Faust last committed for ``tp`` (None before its first commit)."""
    offset: int | None = consumer._committed_offset.get(tp)
    return offset


_FETCH_WAIT_MS: list[int] = []  # the value set_fetch_max_wait installed (one per process)


def set_fetch_max_wait(ms: int) -> None:
    """Give the worker's aiokafka consumer ``fetch_max_wait_ms=ms`` instead of Faust's 1500.

    Set on the consumer Faust builds (before it starts: aiokafka hands the value to its fetcher
    at start). Process-wide, like Faust's own constant; a second call only changes the value.
    """
    if not _FETCH_WAIT_MS:
        create = AIOKafkaConsumerThread._create_worker_consumer

        def create_with_wait(self: Any, transport: Any) -> Any:
            consumer = create(self, transport)
            consumer._fetch_max_wait_ms = _FETCH_WAIT_MS[0]
            return consumer

        AIOKafkaConsumerThread._create_worker_consumer = create_with_wait  # type: ignore[method-assign]
        _FETCH_WAIT_MS.append(ms)
    _FETCH_WAIT_MS[0] = ms
