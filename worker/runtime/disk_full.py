"""A full data dir (ENOSPC) is named in the log before the worker exits without committing.

RocksDB reports a failed write as a plain ``Exception`` whose text holds the OS error ("IO error:
<strerror(ENOSPC)>: While appending to file: <a file deep in the data dir>"); the poison strikes
file raises ``OSError(ENOSPC)``. Either way the agent exits (70) without acking, so the
batch comes back once there is room; this module adds the one line an operator needs: which
volume to free or grow, and that nothing was committed.
"""

from __future__ import annotations

import errno
import logging
import os
from pathlib import Path

log = logging.getLogger("worker")
_ENOSPC_TEXT = os.strerror(errno.ENOSPC)  # what RocksDB puts in its message


def is_disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` (or an exception it was raised from or during) is a full filesystem."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno == errno.ENOSPC:
            return True
        if _ENOSPC_TEXT in str(current):
            return True
        current = current.__cause__ or current.__context__
    return False


def report(exc: BaseException, data_dir: Path) -> None:
    """Log one critical line naming ``data_dir`` when ``exc`` is a full disk; else nothing."""
    if is_disk_full(exc):
        log.critical(
            "the data dir %s is full (ENOSPC): the state could not be written; "
            "exiting without committing the batch. Free or grow that volume and restart: the "
            "batch is redelivered and scored then",
            data_dir,
        )
