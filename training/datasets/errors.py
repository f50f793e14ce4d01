"""The one exception a reader raises for a file it cannot turn into events."""

from __future__ import annotations


class DatasetError(ValueError):
    """A file that cannot be read as events; the message is one line meant for the user.

    Raised for: a missing or unreadable file, a corrupt file or one with the wrong columns for its
    format, an empty file, an unknown format name, too many bad rows, and no purchase at all.
    """

    def __init__(self, message: str) -> None:
        # One line, whatever the underlying library said: CLIs print it as is.
        super().__init__(" ".join(message.split()))


class RowError(ValueError):
    """One bad data row; the reader counts it, keeps the first few reasons, and skips it."""
