"""A Faust app whose agent does nothing with each record: Faust's own ceiling on this broker.

Run by ``python -m bench kafka`` as ``python -m bench.faust_noop worker``; the broker, topic and
record count come from the environment. When it has seen BENCH_COUNT records it writes
``{"count", "seconds"}`` (first record to last) to BENCH_RESULT and stops itself with SIGTERM.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path

import faust

app = faust.App(
    os.environ.get("BENCH_APP_ID", "bench-noop"),
    broker=";".join(f"kafka://{hp}" for hp in os.environ.get("BENCH_BOOTSTRAP", "").split(",")),
    store="memory://",
    topic_partitions=int(os.environ.get("BENCH_PARTITIONS", "8")),
    web_enabled=False,
)
source = app.topic(
    os.environ.get("BENCH_TOPIC", "bench"), key_serializer="raw", value_serializer="raw"
)
_seen = {"count": 0, "first": 0.0}


@app.agent(source)
async def noop(stream: faust.StreamT[bytes]) -> AsyncIterator[None]:
    """Count records, nothing else; report once the expected number has gone by."""
    target = int(os.environ.get("BENCH_COUNT", "0"))
    async for _value in stream:
        if _seen["count"] == 0:
            _seen["first"] = time.perf_counter()
        _seen["count"] += 1
        if _seen["count"] == target:
            seconds = time.perf_counter() - _seen["first"]
            Path(os.environ["BENCH_RESULT"]).write_text(
                json.dumps({"count": target, "seconds": seconds})
            )
            os.kill(os.getpid(), signal.SIGTERM)
        yield None


if __name__ == "__main__":
    app.main()
