"""The dead-letter record (schemas/dead_letter.schema.json): original bytes, reason, source."""

from __future__ import annotations

import base64
import time
from typing import Any

from schemas.event import Reason, format_timestamp

DLQ_SCHEMA_VERSION = 1
# A dead letter must fit under the broker's and the producer's default 1 MB record limit, key
# included: a ~1 MB key sent whole made aiokafka raise inside Faust's send buffer (a hang or a
# crash loop). The schema states the same limits (maxLength of the base64 fields; a test checks).
MAX_VALUE_BYTES = 64 * 1024
MAX_KEY_BYTES = 1024  # user ids are <= 256 characters (<= 1 KiB of UTF-8); longer is not one
MAX_DETAIL_CHARS = 2000


def dead_letter_record(
    *,
    reason: Reason,
    detail: str,
    topic: str,
    partition: int,
    offset: int,
    timestamp_ms: int | None,
    key: bytes | None,
    value: bytes | None,
    now_ms: int | None = None,
) -> dict[str, Any]:
    """A dead-letter document; value and key are cut (64 KiB, 1 KiB) and flagged when longer."""
    truncated = value is not None and len(value) > MAX_VALUE_BYTES
    kept = value[:MAX_VALUE_BYTES] if value is not None else None
    now = int(time.time() * 1000) if now_ms is None else now_ms
    return {
        "schema_version": DLQ_SCHEMA_VERSION,
        "reason": reason,
        "detail": detail[:MAX_DETAIL_CHARS],
        "source": {
            "topic": topic,
            "partition": partition,
            "offset": offset,
            "timestamp_ms": timestamp_ms,
        },
        "value_b64": _b64(kept),
        "value_truncated": truncated,
        "key_b64": _b64(dead_letter_key(key)),
        "key_truncated": key is not None and len(key) > MAX_KEY_BYTES,
        "dead_lettered_at": format_timestamp(now),
    }


def _b64(raw: bytes | None) -> str | None:
    return None if raw is None else base64.b64encode(raw).decode("ascii")


def dead_letter_key(key: bytes | None) -> bytes | None:
    """The Kafka key of a dead letter: the source record's key, cut to :data:`MAX_KEY_BYTES`."""
    return None if key is None else key[:MAX_KEY_BYTES]
