"""What the command-line tools (replay, alerts view) print: plain lines, and librdkafka's log.

Both print through a rich ``Console``, which writes no escape codes when its output is not a
terminal, and prints log lines above a live table instead of gluing them to its last row.
"""

from __future__ import annotations

import logging

from rich.console import Console

from worker.logs import LIBRDKAFKA, RoutineRetries


def say(console: Console, message: str, style: str = "") -> None:
    """One plain line (no rich markup: messages hold [brackets]); never wrapped mid-message."""
    console.print(message, style=style, markup=False, highlight=False, soft_wrap=True)


class ConsoleHandler(logging.Handler):
    """A logging handler that prints each record as one line on a rich console."""

    def __init__(self, console: Console, prefix: str) -> None:
        super().__init__()
        self.console = console
        self.setFormatter(logging.Formatter(f"{prefix}: %(levelname)s %(name)s: %(message)s"))
        self.addFilter(RoutineRetries())

    def emit(self, record: logging.LogRecord) -> None:
        """Print the record (warnings and worse in colour where the console is a terminal)."""
        try:
            style = "red" if record.levelno >= logging.ERROR else "yellow"
            say(self.console, self.format(record), style)
        except Exception:
            self.handleError(record)


def route_client_logs(console: Console, prefix: str) -> None:
    """Send the librdkafka clients' log (warnings and worse) to ``console`` as ``prefix:`` lines."""
    logger = logging.getLogger(LIBRDKAFKA)
    for handler in [h for h in logger.handlers if isinstance(h, ConsoleHandler)]:
        logger.removeHandler(handler)
    logger.addHandler(ConsoleHandler(console, prefix))
    logger.setLevel(logging.WARNING)
    logger.propagate = False
