"""Log formats: one line per notable thing, as text or JSON (``CLICKSCORE_LOG_FORMAT``)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import msgspec

_json = msgspec.json.Encoder()


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message (and the exception, if any)."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as a JSON line (msgspec: fast, and never fails on odd str content)."""
        doc: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, tz=UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        return _json.encode(doc).decode("utf-8")


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def logging_config(level: str, fmt: str) -> dict[str, Any]:
    """A dictConfig for the root logger (handed to Faust's worker, which applies it at start)."""
    formatter: dict[str, Any] = (
        {"()": "worker.logs.JsonFormatter"} if fmt == "json" else {"format": TEXT_FORMAT}
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"default": formatter},
        "handlers": {
            "default": {
                "class": "logging.StreamHandler",
                "formatter": "default",
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"level": level, "handlers": ["default"]},
        # Faust and aiokafka are chatty at INFO (every rebalance step); keep their warnings.
        "loggers": {
            "faust": {"level": "WARNING"},
            "aiokafka": {"level": "WARNING"},
            "mode": {"level": "WARNING"},
        },
    }


def configure(level: str, fmt: str) -> None:
    """Apply :func:`logging_config` now (for code paths before Faust's worker starts)."""
    import logging.config

    logging.config.dictConfig(logging_config(level, fmt))
