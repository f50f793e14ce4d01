"""A minimal Faust app for the broker test: one agent that forwards every record to another topic.

Run as ``faust -A faust_forward_app worker``; topics and broker come from the environment.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import faust

app = faust.App(
    os.environ["FORWARD_APP_ID"],
    broker=";".join(f"kafka://{hp}" for hp in os.environ["FORWARD_BOOTSTRAP"].split(",")),
    store="memory://",
    topic_partitions=1,
    web_enabled=False,
)
source = app.topic(os.environ["FORWARD_SOURCE"], key_serializer="raw", value_serializer="raw")
sink = app.topic(os.environ["FORWARD_SINK"], key_serializer="raw", value_serializer="raw")


@app.agent(source)
async def forward(stream: faust.StreamT[bytes]) -> AsyncIterator[None]:
    """Send each record on unchanged, key included."""
    async for event in stream.events():
        await sink.send(key=event.key, value=event.value)
        yield None
