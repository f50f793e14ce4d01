"""A stateful Faust app: the clickscore worker's Faust work without clickscore's own.

The peer the worker should be compared with (the no-op agent writes no state): the same
``take_events`` micro-batches, one table write per user per batch (a changelog record and a
RocksDB write, a state-sized value, on the user's own partition as the worker does it), and the
web server on. Run by ``python -m bench kafka`` as ``python -m bench.faust_stateful worker``; the
broker, topic and record count come from the environment, as for bench/faust_noop.py. When it has
seen BENCH_COUNT records it writes ``{"count", "seconds"}`` to BENCH_RESULT and stops itself.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import faust

from worker.runtime import faust_private

STATE_BYTES = 1000  # about a long-lived user's encoded state (python -m bench state)
BATCH = 256  # the worker's CLICKSCORE_BATCH_SIZE and BATCH_MAX_WAIT_MS defaults
WITHIN_SECONDS = 0.02

app = faust.App(
    os.environ.get("BENCH_APP_ID", "bench-stateful"),
    broker=";".join(f"kafka://{hp}" for hp in os.environ.get("BENCH_BOOTSTRAP", "").split(",")),
    store="rocksdb://",
    topic_partitions=int(os.environ.get("BENCH_PARTITIONS", "8")),
    web_enabled=True,
    web_bind="127.0.0.1",
    web_port=int(os.environ.get("BENCH_WEB_PORT", "6067")),
    producer_linger=0.005,  # as the worker's app
    producer_max_batch_size=256 * 1024,
)
source = app.topic(
    os.environ.get("BENCH_TOPIC", "bench"), key_serializer="raw", value_serializer="raw"
)
table = app.Table("state", default=None, key_type=bytes, value_type=bytes)
_seen = {"count": 0, "first": 0.0}


@app.task
async def _buffer_limit() -> None:
    # The worker raises Faust's send-buffer limit the same way (one batch queues a write per user).
    faust_private.raise_send_buffer_limit(app.producer.buffer, 4 * BATCH)


@app.agent(source)
async def stateful(stream: faust.StreamT[bytes]) -> None:
    """Per batch: one state-sized write per user; report once the expected count has gone by."""
    target = int(os.environ.get("BENCH_COUNT", "0"))
    value = bytes(STATE_BYTES)
    async for batch in stream.take_events(BATCH, within=WITHIN_SECONDS):  # type: ignore[attr-defined]
        if _seen["count"] == 0:
            _seen["first"] = time.perf_counter()
        last = {event.key: event for event in batch}  # one write per user per batch
        for key, event in last.items():
            faust_private.make_current(event)  # the user's own partition, as the worker does
            table[key] = value
        _seen["count"] += len(batch)
        if _seen["count"] >= target > 0:
            seconds = time.perf_counter() - _seen["first"]
            Path(os.environ["BENCH_RESULT"]).write_text(
                json.dumps({"count": _seen["count"], "seconds": seconds})
            )
            os.kill(os.getpid(), signal.SIGTERM)
            target = 0  # report once


if __name__ == "__main__":
    app.main()
