"""Log formats: one line per notable thing, as text or JSON (``CLICKSCORE_LOG_FORMAT``).

Also where the Kafka clients' own logs are made honest: routine start-up retries (a fresh
broker's group coordinator not elected or still loading) are demoted to INFO rather than shown
as errors (:class:`RoutineRetries`), and librdkafka's log goes through Python logging
(:func:`librdkafka_logger`) instead of raw ``%4|...`` lines on stderr.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any, ClassVar

import msgspec

_json = msgspec.json.Encoder()
LIBRDKAFKA = "librdkafka"  # parent of every librdkafka client's Python logger


class RoutineRetries(logging.Filter):
    """Demote the Kafka clients' retries while a group coordinator is found to INFO (start-up only).

    On a fresh broker the ``__consumer_offsets`` coordinator is elected and loaded during the
    first second; aiokafka logs each retry meanwhile as ERROR/WARNING, librdkafka as ``%4|``. Once
    the worker is ready (:meth:`settle`) the same lines mean a broker failure and keep their level.
    """

    MARKERS: ClassVar[tuple[str, ...]] = (
        "GroupCoordinatorNotAvailable",
        "NotCoordinatorForGroup",
        "CoordinatorLoadInProgress",
        "Coordinator load in progress",
        "Marking the coordinator dead",
    )
    settled: ClassVar[bool] = False

    @classmethod
    def settle(cls) -> None:
        """Start-up is over: from now on coordinator trouble is reported at its own level."""
        cls.settled = True

    def filter(self, record: logging.LogRecord) -> bool:
        """Demote a routine retry; drop it when its logger is not enabled for INFO."""
        if self.settled or not logging.INFO < record.levelno < logging.CRITICAL:
            return True
        if not record.name.startswith(("aiokafka", LIBRDKAFKA)):
            return True
        message = record.getMessage()
        if not any(marker in message for marker in self.MARKERS):
            return True
        record.levelno, record.levelname = logging.INFO, "INFO"
        return logging.getLogger(record.name).isEnabledFor(logging.INFO)


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
        "filters": {"routine": {"()": "worker.logs.RoutineRetries"}},
        "handlers": {
            "default": {
                "class": "logging.StreamHandler",
                "formatter": "default",
                "filters": ["routine"],
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"level": level, "handlers": ["default"]},
        # Faust and aiokafka are chatty at INFO (every rebalance step); keep their warnings.
        "loggers": {
            "faust": {"level": "WARNING"},
            "aiokafka": {"level": "WARNING"},
            "mode": {"level": "WARNING"},
            LIBRDKAFKA: {"level": "WARNING"},
        },
    }


def configure(level: str, fmt: str) -> None:
    """Apply :func:`logging_config` now (for code paths before Faust's worker starts)."""
    import logging.config

    logging.config.dictConfig(logging_config(level, fmt))


def librdkafka_logger(client: str) -> logging.Logger:
    """The Python logger for one librdkafka client (pass it as the client's ``logger`` config).

    confluent-kafka then hands librdkafka's log lines to this logger (served by ``poll()``), so
    they get the process's format and filters instead of ``%4|...`` written straight to stderr.
    """
    return logging.getLogger(f"{LIBRDKAFKA}.{client}")
