"""``write_events``: events -> a generic-format file (``.csv``, ``.csv.gz`` or ``.parquet``).

The generic format is what ``simulate`` writes and every reader's output can be saved as; its
columns are ``GENERIC_COLUMNS`` (see docs/contracts.md), with ``timestamp`` in epoch milliseconds.
The file appears under its name only once complete (written beside it, then renamed), so a killed
run never leaves a truncated file that looks finished.
"""

from __future__ import annotations

import csv
import gzip
import io
import os
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any

from schemas.event import Event
from training.datasets.errors import DatasetError
from training.datasets.formats import GENERIC_COLUMNS

WRITE_SUFFIXES = (".csv", ".csv.gz", ".parquet")


def write_events(events: Iterable[Event], path: str | Path) -> int:
    """Write ``events`` in the generic format chosen by ``path``'s extension; return how many."""
    target = Path(path)
    if not target.name.endswith(WRITE_SUFFIXES):
        raise DatasetError(f"{target}: cannot tell the format: name it {', '.join(WRITE_SUFFIXES)}")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.partial")
    try:
        if target.name.endswith(".parquet"):
            count = _write_parquet(events, partial)
        else:
            with _open(partial) as stream:
                count = _write_csv(events, stream)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return count


def _open(path: Path) -> IO[str]:
    if path.name.endswith(".gz.partial"):
        # mtime=0: the same events give byte-identical files, so determinism is easy to check.
        # Level 6, gzip's own default: level 9 took 2.6 times as long for a file 0.7 % smaller.
        raw = gzip.GzipFile(path, "wb", compresslevel=6, mtime=0)
        return io.TextIOWrapper(raw, encoding="utf-8", newline="")
    return open(path, "w", encoding="utf-8", newline="")


def _write_csv(events: Iterable[Event], stream: IO[str]) -> int:
    # The default "\r\n" line end (RFC 4180) also makes csv quote a "\r" inside a field;
    # with "\n" a lone "\r" in an id went out unquoted and split the row when read back.
    writer = csv.writer(stream)
    writer.writerow(GENERIC_COLUMNS)
    count = 0
    for event in events:
        writer.writerow(_row(event))
        count += 1
    return count


def _row(event: Event) -> list[Any]:
    # None -> "" (csv does that), which the reader reads back as absent.
    return [
        event.event_id,
        event.user_id,
        event.event_type,
        event.ts_ms,
        event.session_id,
        event.item_id,
        event.category_id,
        event.price,
        event.quantity,
    ]


def _write_parquet(events: Iterable[Event], path: Path) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns: dict[str, list[Any]] = {name: [] for name in GENERIC_COLUMNS}
    for event in events:
        for name, value in zip(GENERIC_COLUMNS, _row(event), strict=True):
            columns[name].append(value)
    types = {"timestamp": pa.int64(), "quantity": pa.int64(), "price": pa.float64()}
    schema = pa.schema([(name, types.get(name, pa.string())) for name in GENERIC_COLUMNS])
    pq.write_table(pa.table(columns, schema=schema), path)
    return len(columns["event_id"])
