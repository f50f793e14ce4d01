"""State size: bytes per user of the worker's encoded state, and memory for many users.

States are built by the worker's own pure pipeline (``worker.core.micro_batch.process_batch``,
the code the Faust agent runs) from synthetic events with simulator-like ids, then encoded with
``worker.core.state.encode_state`` exactly as the table stores them. Memory is the RSS growth of
this process while it holds N users' encoded states in a dict, which is what the ``memory://`` store
holds; RocksDB (the default store) keeps them on disk behind its own cache instead.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import tempfile
import time
from functools import partial
from pathlib import Path

import msgspec

from bench.report import Result
from bench.scoring import BenchError, _artifact
from schemas.event import Event, encode_event
from worker.core.micro_batch import PipelineConfig, Record, process_batch
from worker.core.model_store import Model, load_model
from worker.core.state import UserState, decode_state, encode_state

__all__ = ["BenchError", "add_arguments", "run"]

TEMPLATE_USERS = 512  # users actually run through the pipeline; the N-user dicts reuse their sizes


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``python -m bench state``."""
    parser.add_argument(
        "--model", type=Path, default=None, help="artifact dir (default: untrained)"
    )
    parser.add_argument(
        "--users", type=int, nargs="+", default=[10_000, 100_000], help="user counts for RSS"
    )
    parser.add_argument("--tiny", action="store_true", help="seconds-long smoke configuration")


def run(args: argparse.Namespace) -> Result:
    """Measure encoded bytes per user by history length, then RSS for each user count."""
    users = [1_000] if args.tiny else sorted(args.users)
    histories = (1, 8) if args.tiny else (1, 8, 64, 200)
    template_users = 64 if args.tiny else TEMPLATE_USERS
    with tempfile.TemporaryDirectory() as tmp:
        model_dir, manifest, trained = _artifact(args.model, Path(tmp))
        model = load_model(model_dir, ["CPUExecutionProvider"])
        result = Result(
            "state",
            {
                "model_version": manifest["model_version"],
                "trained": trained,
                "state_tensors": manifest["state"],
                "histories": list(histories),
                "users": users,
                "template_users": template_users,
            },
        )
        templates: dict[int, list[bytes]] = {}
        for h in histories:
            templates[h] = _build_states(model, template_users, h)
            sizes = [len(v) for v in templates[h]]
            result.add("encoded state", "bytes_per_user", statistics.mean(sizes), "bytes", events=h)
            # What the agent pays per user and batch for the table value (read, then write back).
            result.add("decode + encode", "time_per_state", _codec_us(templates[h]), "us", events=h)
        floats = sum(_prod(shape) for shape in manifest["state"].values())
        result.add("recurrent tensors alone", "bytes_per_user", 4 * floats, "bytes")
        for n in users:
            rss = _rss_for(n, templates[histories[-1]])
            result.add("dict of encoded states", "rss_growth", rss, "bytes", users=n)
            result.add("dict of encoded states", "rss_per_user", rss / n, "bytes", users=n)
    result.notes.append(
        "RSS growth of one process holding N encoded states in a dict (the memory:// store), "
        f"each state the size of a user's after {histories[-1]} events "
        f"(dedup window: {PipelineConfig().dedup_window} ids)"
    )
    return result


def _codec_us(raws: list[bytes], rounds: int = 20) -> float:
    """Median over ``rounds`` of the mean µs to decode and re-encode one of ``raws``."""
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        for raw in raws:
            state = decode_state(raw)
            if state is None:
                raise BenchError("a template state did not decode: the bench and worker disagree")
            encode_state(state)
        times.append((time.perf_counter() - started) / len(raws) * 1e6)
    return statistics.median(times)


def _prod(shape: list[int]) -> int:
    out = 1
    for d in shape:
        out *= int(d)
    return out


def _build_states(model: Model, n_users: int, events_per_user: int) -> list[bytes]:
    """Run ``events_per_user`` events of ``n_users`` users through the worker's pipeline."""

    cfg = PipelineConfig()
    table: dict[str, UserState] = {}
    kinds = ("view", "click", "view", "add_to_cart", "view", "purchase")
    seq = 0
    for k in range(events_per_user):
        batch: list[Record] = []
        for u in range(n_users):
            user = f"u{u:06d}"
            event = Event(
                event_id=f"sim-7-{seq}",  # the simulator's id shape
                user_id=user,
                event_type=kinds[(u + k) % len(kinds)],
                ts_ms=1_767_571_353_381 + 37_000 * k + u,
                session_id=f"{user}-s{k // 10}",
                item_id=f"i{(u * 7 + k) % 5000}",
                category_id=f"c{u % 20}",
                price=19.99,
            )
            seq += 1
            batch.append(Record(user.encode(), encode_event(event), "events", 0, seq, None))
        for start in range(0, len(batch), 256):
            result = process_batch(batch[start : start + 256], partial(_load, table), model, cfg)
            for user, (state, _) in result.writes.items():
                table[user] = state
    return [encode_state(s) for s in table.values()]


def _load(table: dict[str, UserState], user: str, _index: int) -> UserState | None:
    return table.get(user)


def _rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise BenchError("no /proc/self/status: RSS is measured on Linux only")


def _rss_for(n: int, templates: list[bytes]) -> int:
    """RSS growth while holding ``n`` distinct encoded states (sizes cycled from ``templates``)."""
    states = [decode_state(raw) for raw in templates]
    gc.collect()
    before = _rss_bytes()
    table: dict[str, bytes] = {}
    for i in range(n):
        # A distinct value per user (new event id inside), the size of a real one.
        state = states[i % len(states)]
        if state is None:
            raise BenchError("a template state did not decode: the bench and worker disagree")
        table[f"u{i:07d}"] = encode_state(
            msgspec.structs.replace(state, last_event_id=f"sim-7-{i}")
        )
    gc.collect()
    grown = _rss_bytes() - before
    del table
    gc.collect()
    return max(grown, 0)
