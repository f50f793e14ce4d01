"""A send the broker refused stops the worker before the batch's offsets are committed.

Faust only logged a warning when an output send failed for good (ACL denied, record too large)
and then committed the batch's offsets: a dead letter, an alert, a score or a changelog write was
gone without a trace. Every output of a batch is sent before its offsets are committed (see
worker/runtime/app.py), so exiting at the first refused send leaves the batch uncommitted: it is
redelivered once the cause is fixed, and duplicates are deduplicated by event id.
"""

from __future__ import annotations

import logging
from typing import Any

from faust.sensors import Sensor

from worker.runtime import faust_private

log = logging.getLogger("worker")


class SendFailureSensor(Sensor):
    """Exits (status 70, no ack, no commit) when any send of this process fails."""

    def on_send_error(self, producer: Any, exc: BaseException, state: Any) -> None:
        """Faust's hook for a send that failed for good."""
        log.critical("a send to Kafka failed; stopping before the offsets are committed")
        faust_private.exit_without_ack(exc)


def install(app: Any) -> None:
    """Watch every send of ``app`` and let failures land before each commit."""
    app.sensors.add(SendFailureSensor())
    faust_private.report_sends_before_commit(app.producer)
