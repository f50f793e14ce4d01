"""Poison records: an event whose processing keeps failing goes to the dead-letter topic.

Before, any exception in a batch exited the process (so the batch is redelivered and nothing is
committed past it) and the same batch failed on every restart: the partition stalled for good.
Now a failed batch is run again record by record (:func:`settle`). Records that succeed alone are
kept; each record that still fails gets a strike, counted in a small file in the data dir so the
count survives the exit. While a failing record has fewer than ``limit`` strikes the batch fails
as before (a transient fault gets its retries); at ``limit`` strikes the record becomes a dead
letter with reason ``internal`` and the partition moves on. A record thus costs at most
``limit - 1`` restarts, and is accounted for either way.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from worker.core.micro_batch import dead_letter, process_batch
from worker.core.model_store import Model
from worker.core.records import BatchResult, DeadLetter, LoadState, PipelineConfig, Record, Rekey
from worker.core.state import UserState

MAX_STRIKE_ENTRIES = 10_000  # a bound on the file: the oldest entries go first


class BatchFailed(RuntimeError):
    """Some record of the batch failed and still has retries left: redeliver the batch."""


@dataclass
class StrikeBook:
    """Failure counts per record (topic, partition, offset), kept in a JSON file."""

    path: Path
    limit: int

    def _read(self) -> dict[str, int]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}  # none yet, or unreadable: start counting again (costs retries, not data)
        return {str(k): int(v) for k, v in data.items()} if isinstance(data, dict) else {}

    def _write(self, counts: dict[str, int]) -> None:
        kept = dict(list(counts.items())[-MAX_STRIKE_ENTRIES:])
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(kept), encoding="utf-8")
        os.replace(tmp, self.path)  # atomic: a crash leaves the old or the new file

    def strike(self, records: Sequence[Record]) -> list[int]:
        """Add a strike to each record; returns each one's count so far."""
        counts = self._read()
        out = []
        for rec in records:
            key = _position(rec)
            counts[key] = counts.pop(key, 0) + 1  # re-inserted: newest last
            out.append(counts[key])
        self._write(counts)
        return out

    def forget(self, records: Sequence[Record]) -> None:
        """Drop the counts of records that are settled (scored or dead-lettered)."""
        counts = self._read()
        if any(_position(r) in counts for r in records):
            for rec in records:
                counts.pop(_position(rec), None)
            self._write(counts)


def _position(rec: Record) -> str:
    return f"{rec.topic}/{rec.partition}/{rec.offset}"


def settle(
    records: Sequence[Record],
    load_state: LoadState,
    model: Model,
    cfg: PipelineConfig,
    strikes: StrikeBook,
) -> tuple[BatchResult, list[tuple[int, Exception]]]:
    """The batch run record by record, poison records dead-lettered at their last strike.

    Returns the merged result and the failures seen; raises :class:`BatchFailed` while a failing
    record has strikes left (the caller exits so the batch is redelivered).
    """
    result, failed = isolate(records, load_state, model, cfg)
    if failed:
        counts = strikes.strike([records[i] for i, _ in failed])
        if any(n < strikes.limit for n in counts):
            raise BatchFailed(
                f"{len(failed)} record(s) failed; strikes {counts} of {strikes.limit}"
            )
        for i, exc in failed:
            detail = f"processing failed {strikes.limit} times: {exc!r}"
            result.dead_letters.append(dead_letter(i, records[i], "internal", detail))
    strikes.forget(records)
    return result, failed


def isolate(
    records: Sequence[Record], load_state: LoadState, model: Model, cfg: PipelineConfig
) -> tuple[BatchResult, list[tuple[int, Exception]]]:
    """Process ``records`` one at a time (same order, same states); collect what fails."""
    merged = BatchResult()
    overlay: dict[str, UserState | None] = {}  # states written (or deleted) earlier in the batch
    failed: list[tuple[int, Exception]] = []
    for i, rec in enumerate(records):

        def load(user: str, _index: int, i: int = i) -> UserState | None:
            return overlay[user] if user in overlay else load_state(user, i)

        try:
            one = process_batch([rec], load, model, cfg)
        except Exception as exc:  # any fault of this record: it is the poison
            failed.append((i, exc))
            continue
        _merge(merged, one, i, overlay)
    return merged, failed


def _merge(
    merged: BatchResult, one: BatchResult, i: int, overlay: dict[str, UserState | None]
) -> None:
    merged.dead_letters += [DeadLetter(i, d.reason, d.doc) for d in one.dead_letters]
    merged.rekeys += [Rekey(i, r.user_id, r.value) for r in one.rekeys]
    for user in one.deletes:
        merged.deletes[user] = i
        merged.writes.pop(user, None)
        overlay[user] = None
    for action, n in one.deleted.items():
        merged.deleted[action] = merged.deleted.get(action, 0) + n
    for action, n in one.controls.items():
        merged.controls[action] = merged.controls.get(action, 0) + n
    for user, (state, _) in one.writes.items():
        merged.writes[user] = (state, i)
        overlay[user] = state
    merged.alerts += one.alerts
    merged.scores += one.scores
    merged.scored += one.scored
    merged.duplicates += one.duplicates
    merged.resets += one.resets
    merged.new_users += one.new_users
    merged.wave_sizes += one.wave_sizes
    merged.wave_seconds += one.wave_seconds
