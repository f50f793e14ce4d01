"""Recognizing a full data dir among the errors a batch can raise (worker/runtime/disk_full.py)."""

from __future__ import annotations

import errno
import logging
import os
from pathlib import Path

import pytest

from worker.runtime.disk_full import is_disk_full, report

# The text rocksdict raised when a 16 MiB tmpfs data dir was full (tests/faults/test_disk_full.py).
NO_SPACE = os.strerror(errno.ENOSPC)
ROCKSDB_ENOSPC = (
    f"IO error: {NO_SPACE}: While appending to file: "
    f"/data/v1/tables/user-state-0.db/000004.log: {NO_SPACE}"
)


def _chained() -> BaseException:
    try:
        raise OSError(errno.ENOSPC, "No room", "/data/poison-strikes.json.tmp")
    except OSError as inner:
        try:
            raise RuntimeError("writing the strikes failed") from inner
        except RuntimeError as outer:
            return outer


@pytest.mark.parametrize(
    ("exc", "full"),
    [
        (Exception(ROCKSDB_ENOSPC), True),
        (OSError(errno.ENOSPC, "No room"), True),
        (_chained(), True),
        (OSError(errno.EIO, "Input/output error"), False),
        (Exception("IO error: Corruption: block checksum mismatch"), False),
        (ValueError("bad tensor"), False),
    ],
)
def test_a_full_disk_is_recognized_whatever_raised_it(exc: BaseException, full: bool) -> None:
    assert is_disk_full(exc) is full


def test_the_report_names_the_data_dir_only_for_a_full_disk(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.CRITICAL, logger="worker"):
        report(ValueError("bad tensor"), Path("/srv/clickscore"))
        assert not caplog.records
        report(Exception(ROCKSDB_ENOSPC), Path("/srv/clickscore"))
    (line,) = caplog.records
    assert "the data dir /srv/clickscore is full" in line.getMessage()
    assert "without committing" in line.getMessage()
