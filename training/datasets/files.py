"""Rows out of files: CSV, whitespace-separated text, gzip, Parquet; chosen by the file's extension.

Text is read with the ``csv`` module (or ``str.split`` for whitespace formats) rather than a bulk
parser, so each bad row is counted and named instead of failing or vanishing inside a library.
Parquet is read with pyarrow, imported only here and only for ``.parquet`` files: the worker's image
imports the readers but has no pyarrow.
"""

from __future__ import annotations

import csv
import gzip
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

from training.datasets.errors import DatasetError, RowError
from training.datasets.formats import FormatSpec, Row

_TEXT_SUFFIXES = (".csv", ".tsv", ".txt", ".parquet")
PARQUET_BATCH_ROWS = 65_536


def source_stem(path: Path) -> str:
    """The file name without ``.gz`` and its format extension: the ``<stem>`` of default event ids.

    >>> source_stem(Path("/data/events.csv.gz")), source_stem(Path("CDNOW_master.txt"))
    ('events', 'CDNOW_master')
    """
    name = path.name
    if name.endswith(".gz"):
        name = name[:-3]
    for suffix in _TEXT_SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return name


def iter_rows(path: Path, spec: FormatSpec) -> Iterator[Row | RowError]:
    """Each data row as ``{column: value}``, or a :class:`RowError` for a row of the wrong shape."""
    if path.name.endswith(".parquet"):
        yield from _parquet_rows(path, spec)
        return
    try:
        with _open_text(path) as stream:
            if spec.delimiter == "whitespace":
                yield from _whitespace_rows(path, stream, spec)
            else:
                yield from _csv_rows(path, stream, spec)
    except (OSError, EOFError, zlib.error) as exc:
        # Opening errors (missing, a directory, no permission) and gzip corruption both land here.
        raise DatasetError(f"{path}: cannot read: {_os_reason(exc)}") from None
    except csv.Error as exc:
        raise DatasetError(f"{path}: corrupt or not CSV: {exc}") from None


def _open_text(path: Path) -> IO[str]:
    # utf-8-sig drops a byte-order mark; surrogateescape keeps undecodable bytes so the row holding
    # them is counted as bad (not_utf8) instead of the whole file failing at that line.
    if path.name.endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8-sig", errors="surrogateescape", newline="")
    return open(path, encoding="utf-8-sig", errors="surrogateescape", newline="")


def _os_reason(exc: BaseException) -> str:
    if isinstance(exc, FileNotFoundError):
        return "no such file"
    if isinstance(exc, IsADirectoryError):
        return "is a directory"
    if isinstance(exc, PermissionError):
        return "permission denied"
    if isinstance(exc, EOFError | zlib.error | gzip.BadGzipFile):
        return f"corrupt gzip data ({exc or type(exc).__name__})"
    return str(exc) or type(exc).__name__


def _csv_rows(path: Path, stream: IO[str], spec: FormatSpec) -> Iterator[Row | RowError]:
    reader = csv.reader(stream)
    header = _header(path, next(reader, None), spec)
    width = len(header)
    for values in reader:
        if not values:
            continue  # a blank line is not a data row
        if len(values) != width:
            yield RowError(f"schema: {len(values)} fields, the header has {width}")
            continue
        yield dict(zip(header, values, strict=True))


def _whitespace_rows(path: Path, stream: IO[str], spec: FormatSpec) -> Iterator[Row | RowError]:
    first = next(stream, None)
    header = _header(path, None if first is None else first.split(), spec)
    width = len(header)
    for line in stream:
        values = line.split()
        if not values:
            continue
        if len(values) != width:
            yield RowError(f"schema: {len(values)} fields, the header has {width}")
            continue
        yield dict(zip(header, values, strict=True))


def _header(path: Path, names: Sequence[str] | None, spec: FormatSpec) -> list[str]:
    """The column names, checked against the format: a wrong format or garbage fails here."""
    if names is None or not any(name.strip() for name in names):
        raise DatasetError(f"{path}: empty file (no header row)")
    header = [name.strip() for name in names]
    _check_columns(path, header, spec)
    return header


def _check_columns(path: Path, header: Sequence[str], spec: FormatSpec) -> None:
    missing = [name for name in spec.required if name not in header]
    if missing:
        found = ", ".join(repr(name[:40]) for name in header[:12])
        more = f" and {len(header) - 12} more" if len(header) > 12 else ""
        raise DatasetError(
            f"{path}: not a {spec.name} file: missing column(s) {', '.join(missing)}"
            f" (found {found}{more})"
        )


def _parquet_rows(path: Path, spec: FormatSpec) -> Iterator[Row | RowError]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except (OSError, pa.ArrowException) as exc:
        raise DatasetError(f"{path}: cannot read as Parquet: {_os_reason(exc)}") from None
    _check_columns(path, parquet.schema_arrow.names, spec)
    try:
        for batch in parquet.iter_batches(batch_size=PARQUET_BATCH_ROWS):
            rows: list[dict[str, Any]] = batch.to_pylist()
            yield from rows
    except (OSError, pa.ArrowException) as exc:
        raise DatasetError(f"{path}: corrupt Parquet data: {exc}") from None
