"""``read_events``: a file in one of the supported formats -> validated, time-sorted events.

Every row, whatever its format, is validated by :func:`schemas.event.decode_event`, the decoder the
worker runs on Kafka records, so training never learns from an event the worker would dead-letter.
A bad row is counted, its reason kept (the first few), and skipped; too many bad rows, or none good,
stop the read with one line that says why.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import msgspec

from schemas.event import Event, EventError, decode_event
from training.datasets.errors import DatasetError, RowError
from training.datasets.files import iter_rows, source_stem
from training.datasets.formats import FORMATS, FORMATS_BY_NAME, FormatSpec, Row

MAX_BAD_EXAMPLES: Final = 5

_encode = msgspec.json.Encoder().encode


@dataclass(frozen=True)
class ReadStats:
    """How many data rows a read saw, how many it skipped as bad, and why (first few, by row)."""

    rows: int
    bad: int
    bad_examples: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class EventLog:
    """Events sorted by ``(ts_ms, original row order)``, with the read's accounting and source."""

    events: list[Event]
    stats: ReadStats
    source: str


def read_events(
    path: str | Path,
    format: str = "generic",
    *,
    max_bad_fraction: float = 0.01,
    require_purchase: bool = True,
) -> EventLog:
    """Read ``path`` as ``format`` (one of :data:`FORMATS`); :class:`DatasetError` if unusable.

    Rows without an event id get ``<file stem>:<row number>`` (0-based over data rows), the id the
    worker's replay and ``training score`` give the same row.
    """
    spec = _spec(format)
    if not 0.0 <= max_bad_fraction <= 1.0:
        raise DatasetError(f"max_bad_fraction={max_bad_fraction}: must be within [0, 1]")
    source = Path(path)
    stem = source_stem(source)
    events: list[Event] = []
    examples: list[str] = []
    rows = bad = 0
    for number, item in enumerate(iter_rows(source, spec)):
        rows = number + 1
        try:
            events.append(_event(spec, item, f"{stem}:{number}"))
        except RowError as exc:
            bad += 1
            if len(examples) < MAX_BAD_EXAMPLES:
                examples.append(f"row {number}: {exc}")
    stats = ReadStats(rows=rows, bad=bad, bad_examples=examples)
    _check(source, spec, stats, events, max_bad_fraction, require_purchase)
    events.sort(key=_time)  # list.sort is stable: equal times keep their row order
    return EventLog(events=events, stats=stats, source=str(source))


def _spec(name: str) -> FormatSpec:
    try:
        return FORMATS_BY_NAME[name]
    except (KeyError, TypeError):
        raise DatasetError(f"unknown format {name!r}: choose one of {', '.join(FORMATS)}") from None


def _event(spec: FormatSpec, item: Row | RowError, default_id: str) -> Event:
    """One row through its format's converter and then the wire validator; RowError if bad."""
    if isinstance(item, RowError):
        raise item
    try:
        return decode_event(_encode(spec.to_wire(item, default_id)))
    except RowError:
        raise
    except EventError as exc:
        raise RowError(str(exc)) from None
    except UnicodeEncodeError:
        # Bytes that were not UTF-8 survive decoding as surrogates, and stop here.
        raise RowError("not_utf8: the row holds bytes that are not UTF-8") from None
    except (ValueError, OverflowError, TypeError) as exc:
        # A value no converter foresaw: still one bad row, never a crashed read.
        raise RowError(f"schema: {exc}") from None


def _time(event: Event) -> int:
    return event.ts_ms


def _check(
    source: Path,
    spec: FormatSpec,
    stats: ReadStats,
    events: list[Event],
    max_bad_fraction: float,
    require_purchase: bool,
) -> None:
    """Refuse a read that would mislead training: empty, mostly bad, or with nothing to predict."""
    if stats.rows == 0:
        raise DatasetError(f"{source}: empty file (a header but no data rows)")
    first = "; ".join(stats.bad_examples)
    if not events:
        raise DatasetError(
            f"{source}: none of its {stats.rows} rows is a valid {spec.name!r} event;"
            f" first: {first}"
        )
    if stats.bad > max_bad_fraction * stats.rows:
        raise DatasetError(
            f"{source}: {stats.bad} of {stats.rows} rows are bad for format {spec.name!r}"
            f" ({stats.bad / stats.rows:.2%}, more than max_bad_fraction {max_bad_fraction:.2%});"
            f" first: {first}"
        )
    if require_purchase and not any(e.event_type == "purchase" for e in events):
        raise DatasetError(
            f"{source}: no purchase events among {len(events)} events, so every purchase label"
            " would be 0"
        )
