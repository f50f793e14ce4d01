"""Hostile input never stops the worker and never disappears: it is scored or dead-lettered.

Two levels. Property tests (hypothesis, no broker) drive the worker's pure batch core -- decode,
classify, dead-letter, score -- with generated garbage: random bytes, deep nesting, huge strings,
NaN/Infinity, absurd prices, far-future and ancient times, repeated ids, odd keys. Then ONE run of
a real worker process on a real broker with the committed corpus (corpus/hostile.jsonl, written by
corpus/generate.py, each record labelled with what must happen to it by construction).
"""

from __future__ import annotations

import base64
import json
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import schemas
from schemas.event import decode_event
from tests.e2e.worker_process import WorkerFactory, WorkerProcess, counter
from tests.kafka_io import consume, produce, topic_size
from tests.worker_artifacts import T0_MS, shared_artifact
from training.score import score_events
from worker.core.deadletter import MAX_VALUE_BYTES
from worker.core.micro_batch import BatchResult, PipelineConfig, Record, process_batch
from worker.core.model_store import Model, load_model
from worker.core.state import RESEND_WINDOW, UserState

CORPUS = Path(__file__).resolve().parent / "corpus" / "hostile.jsonl"
REASONS = set(schemas.load("dead_letter")["properties"]["reason"]["enum"])


@dataclass(frozen=True)
class Row:
    """One corpus record: what to produce and what the worker must do with it."""

    key: bytes | None
    value: bytes | None
    expect: str
    case: str


def load_corpus() -> list[Row]:
    rows = []
    for line in CORPUS.read_text().splitlines():
        doc = json.loads(line)
        key, value = (
            None if v is None else base64.b64decode(v) for v in (doc["key_b64"], doc["value_b64"])
        )
        rows.append(Row(key, value, doc["expect"], doc["case"]))
    return rows


class Table(dict[str, UserState]):
    """A dict standing in for the Faust table."""

    def load(self, user: str, _index: int) -> UserState | None:
        return self.get(user)

    def run(self, records: list[Record], model: Model, cfg: PipelineConfig) -> BatchResult:
        result = process_batch(records, self.load, model, cfg)
        self.update({u: s for u, (s, _) in result.writes.items()})
        return result


@pytest.fixture(scope="module")
def model() -> Model:
    return load_model(shared_artifact(propensity=0.0, churn=0.0))


def _check_dead_letters(result: BatchResult, records: list[Record]) -> None:
    for dead in result.dead_letters:
        rec, doc = records[dead.index], dead.doc
        schemas.validate("dead_letter", doc)
        assert doc["reason"] in REASONS and doc["detail"]
        assert doc["source"] == {
            "topic": rec.topic,
            "partition": rec.partition,
            "offset": rec.offset,
            "timestamp_ms": rec.timestamp_ms,
        }
        kept = None if doc["value_b64"] is None else base64.b64decode(doc["value_b64"])
        assert kept == (None if rec.value is None else rec.value[:MAX_VALUE_BYTES])
        assert doc["value_truncated"] == (
            rec.value is not None and len(rec.value) > MAX_VALUE_BYTES
        )


def _accounted(result: BatchResult, n: int) -> bool:
    return result.scored + result.duplicates + len(result.dead_letters) + len(result.rekeys) == n


# ---------------------------------------------------------------- generated hostile records

_USERS = ("u1", "u2", "u3")
_hostile_numbers = st.one_of(
    st.sampled_from([float("nan"), float("inf"), -float("inf"), -0.0, -1.0, 1e9, 1e9 + 1, 1e308]),
    st.floats(),
    st.integers(-(2**80), 2**80),
    st.text(max_size=5),
    st.none(),
)
_hostile_times = st.one_of(
    st.integers(-(2**70), 2**70),
    st.integers(0, 32_503_680_000_000),  # 1970 .. 3000: valid, including far future and ancient
    st.floats(),
    st.builds(
        lambda y, off: f"{y:04d}-12-31T23:59:59{off}",
        st.sampled_from([1, 2, 1969, 1970, 2026, 2999, 3000, 3001, 9999]),
        st.sampled_from(["Z", "+23:59", "-23:59", "+00:00"]),
    ),
    st.builds(lambda y: f"{y:04d}-01-01T00:00:00+23:00", st.sampled_from([1, 2])),
    st.text(max_size=12),
)
_hostile_strings = st.one_of(
    st.text(max_size=10),
    st.sampled_from(["", "\x00", "\ud7ff", "🛒" * 300, "x" * 257]),
    st.integers(0, 3).map(lambda k: "y" * (10**k * 70)),  # up to 70 KB: over the size limit
)


@st.composite
def _documents(draw: st.DrawFn) -> Any:
    """An event-like JSON value with hostile fields, or something that is not an event at all."""
    depth = draw(st.integers(1, 4000))
    doc: dict[str, Any] = {
        "event_id": draw(st.one_of(st.sampled_from(["e1", "e2", "e3"]), _hostile_strings)),
        "user_id": draw(st.one_of(st.sampled_from(_USERS), _hostile_strings)),
        "event_type": draw(st.one_of(st.sampled_from(["view", "purchase"]), _hostile_strings)),
        "timestamp": draw(_hostile_times),
    }
    for name in ("price", "quantity"):
        if draw(st.booleans()):
            doc[name] = draw(_hostile_numbers)
    for name in ("session_id", "item_id", "category_id"):
        if draw(st.booleans()):
            doc[name] = draw(st.one_of(_hostile_strings, _hostile_numbers))
    if draw(st.booleans()):
        del doc[draw(st.sampled_from(sorted(doc)))]
    shape = draw(st.sampled_from(["event", "nested_field", "nested", "array", "scalar"]))
    # Deep nesting as raw text: json.dumps itself refuses to go ~1000 deep.
    nest = "[" * depth + "]" * depth
    if shape == "nested_field":
        return json.dumps(doc, allow_nan=True)[:-1] + f', "x": {nest}}}'
    if shape == "nested":
        return nest
    return {"event": doc, "array": [doc], "scalar": draw(_hostile_numbers)}[shape]


@st.composite
def _records(draw: st.DrawFn) -> tuple[bytes | None, bytes | None]:
    """(key, value) of a hostile record."""
    kind = draw(st.sampled_from(["bytes", "json", "json", "json", "corrupt", "null"]))
    if kind == "bytes":
        value: bytes | None = draw(st.binary(max_size=300))
    elif kind == "null":
        value = None
    else:
        doc = draw(_documents())
        if isinstance(doc, str):  # raw text (deep nesting)
            value = doc.encode("utf-8", "surrogatepass")
        else:
            ascii_only = draw(st.booleans())
            value = json.dumps(doc, allow_nan=True, ensure_ascii=ascii_only).encode(
                "utf-8",
                "surrogatepass",  # a lone surrogate in a str becomes invalid UTF-8 bytes
            )
        if kind == "corrupt" and value:
            at = draw(st.integers(0, len(value) - 1))
            value = (
                value[:at] + draw(st.sampled_from([b"\xff", b"\xc3", b"\x00", b'"'])) + value[at:]
            )
    key = draw(
        st.one_of(
            st.none(),
            st.just(b""),
            st.sampled_from([u.encode() for u in _USERS]),
            st.binary(max_size=8),
        )
    )
    return key, value


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(st.lists(_records(), min_size=1, max_size=12))
def test_generated_hostile_records_are_scored_or_dead_lettered(
    model: Model, pairs: list[tuple[bytes | None, bytes | None]]
) -> None:
    records = [Record(k, v, "events", 3, 1000 + i, T0_MS) for i, (k, v) in enumerate(pairs)]
    table = Table()
    # Twice: the second pass is a redelivery (every valid event is then a duplicate).
    first = table.run(records, model, PipelineConfig(max_event_bytes=65536))
    again = table.run(records, model, PipelineConfig(max_event_bytes=65536))
    for result in (first, again):
        assert _accounted(result, len(records))
        _check_dead_letters(result, records)
    assert again.scored == 0 and again.duplicates == first.scored + first.duplicates
    assert [d.reason for d in again.dead_letters] == [d.reason for d in first.dead_letters]


def test_the_corpus_labels_hold_in_the_pure_core(model: Model) -> None:
    """The corpus's by-construction labels, checked without a broker (fast feedback)."""
    rows = load_corpus()
    records = [Record(r.key, r.value, "events", 0, i, T0_MS) for i, r in enumerate(rows)]
    table, got = Table(), {}
    scored = duplicates = 0
    for start in range(0, len(records), 32):
        result = table.run(records[start : start + 32], model, PipelineConfig())
        _check_dead_letters(result, records[start : start + 32])
        got |= {start + d.index: f"dead:{d.reason}" for d in result.dead_letters}
        got |= {start + r.index: "rekeyed" for r in result.rekeys}
        scored, duplicates = scored + result.scored, duplicates + result.duplicates
    for i, row in enumerate(rows):
        want = row.expect if row.expect.startswith(("dead:", "rekeyed")) else None
        if want == "dead:*":
            assert got.get(i, "").startswith("dead:"), row.case
        else:
            assert got.get(i) == want, (i, row.case)
    labels = Counter(r.expect for r in rows)
    assert (scored, duplicates) == (labels["scored"], labels["duplicate"])


# ---------------------------------------------------------------- the corpus through a real worker


@dataclass
class CorpusRun:
    worker: WorkerProcess
    topics: dict[str, str]
    rows: list[Row]
    metrics: dict[str, float]


@pytest.fixture(scope="module")
def corpus_run(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[CorpusRun]:
    factory = WorkerFactory(kafka_bootstrap, tmp_path_factory.mktemp("hostile"))
    topics = factory.topics
    rows = load_corpus()
    worker = factory.start(
        shared_artifact(propensity=0.0, churn=0.0),
        partitions=2,
        batch_size=32,
        churn_idle_seconds=10**9,  # no sweep: this run is about input, not silence
    )
    try:
        produce(kafka_bootstrap, topics["events_topic"], [(r.key, r.value) for r in rows])  # type: ignore[misc]
        rekeyed = sum(r.expect == "rekeyed" for r in rows)
        metrics = worker.wait_metric(
            lambda m: counter(m, "clickscore_events_consumed_total") >= len(rows) + rekeyed
        )
        yield CorpusRun(worker, topics, rows, metrics)
    finally:
        worker.stop()


@pytest.mark.kafka
@pytest.mark.slow
def test_corpus_every_record_accounted_for_and_the_worker_lives(corpus_run: CorpusRun) -> None:
    rows, m = corpus_run.rows, corpus_run.worker.metrics()
    labels = Counter(r.expect for r in rows)
    rekeyed = labels["rekeyed"]
    consumed = counter(m, "clickscore_events_consumed_total")
    scored = counter(m, "clickscore_events_scored_total")
    dead = counter(m, "clickscore_events_dead_lettered_total")
    dup = counter(m, "clickscore_events_duplicate_total")
    rk = counter(m, "clickscore_events_rekeyed_total")
    by_reason = {
        k.split("reason=")[1].rstrip("}"): int(v)
        for k, v in m.items()
        if k.startswith("clickscore_events_dead_lettered_total{")
    }
    print(
        f"\ncorpus: in={len(rows)} consumed={consumed} scored={scored} dead={dead} "
        f"duplicates={dup} rekeyed={rk} dead by reason={by_reason}"
    )
    dead_labels = sum(v for k, v in labels.items() if k.startswith("dead:"))
    assert consumed == len(rows) + rekeyed
    assert (scored, dup, dead, rk) == (
        labels["scored"] + rekeyed,
        labels["duplicate"],
        dead_labels,
        rekeyed,
    )
    assert consumed == scored + dup + dead + rk
    for reason, count in by_reason.items():
        exact = labels[f"dead:{reason}"]
        assert exact <= count <= exact + labels["dead:*"], reason
    assert corpus_run.worker.proc.poll() is None  # zero crashes
    assert "Traceback" not in corpus_run.worker.log_tail(500_000)
    assert "batch processing failed" not in corpus_run.worker.log_tail(500_000)


@pytest.mark.kafka
@pytest.mark.slow
def test_corpus_dead_letters_validate_and_name_their_source(
    corpus_run: CorpusRun, kafka_bootstrap: str
) -> None:
    rows = corpus_run.rows
    dead_rows = [r for r in rows if r.expect.startswith("dead:")]
    got = consume(
        kafka_bootstrap,
        corpus_run.topics["dlq_topic"],
        f"t-{uuid.uuid4().hex}",
        len(dead_rows),
        timeout=60,
    )
    assert len(got) == len(dead_rows) == topic_size(kafka_bootstrap, corpus_run.topics["dlq_topic"])
    seen: set[tuple[int, int]] = set()
    by_value: Counter[bytes | None] = Counter()
    for _, raw in got:
        doc = json.loads(raw)
        schemas.validate("dead_letter", doc)
        src = doc["source"]
        assert src["topic"] == corpus_run.topics["events_topic"]
        assert src["partition"] in (0, 1) and src["offset"] >= 0
        seen.add((src["partition"], src["offset"]))
        by_value[None if doc["value_b64"] is None else base64.b64decode(doc["value_b64"])] += 1
    assert len(seen) == len(dead_rows)  # one dead letter per bad record, none twice
    want = Counter(None if r.value is None else r.value[:MAX_VALUE_BYTES] for r in dead_rows)
    assert by_value == want  # the original bytes of every bad record, and nothing else


@pytest.mark.kafka
@pytest.mark.slow
def test_corpus_duplicates_change_no_score_and_late_events_apply_in_order(
    corpus_run: CorpusRun, kafka_bootstrap: str
) -> None:
    """Policies on a real worker: a re-sent event does not advance state; late events apply in
    arrival order. Reference: offline scoring of the scored records in production order, with the
    duplicates left out (docs/policies.md)."""
    rows = corpus_run.rows
    events = [decode_event(r.value or b"") for r in rows if r.expect in ("scored", "rekeyed")]
    offline = score_events(shared_artifact(propensity=0.0, churn=0.0), events)
    got = consume(
        kafka_bootstrap,
        corpus_run.topics["scores_topic"],
        f"t-{uuid.uuid4().hex}",
        len(events) + sum(r.expect == "duplicate" for r in rows),
        timeout=60,
    )
    streamed = [json.loads(v) for _, v in got]
    # One score per scored event, plus the re-sent score of each duplicate of one of its user's
    # last RESEND_WINDOW events (a redelivery re-sends what it produced: same numbers), and no
    # more on the topic. Older duplicates are dropped without a re-send (docs/policies.md).
    resent = _resendable_duplicates(rows)
    assert 0 < resent < sum(r.expect == "duplicate" for r in rows)  # the corpus has both kinds
    size = topic_size(kafka_bootstrap, corpus_run.topics["scores_topic"])
    assert len(streamed) == len(events) + resent == size
    by_id: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for doc in streamed:
        by_id.setdefault((doc["user_id"], doc["event_id"]), []).append(doc)
    assert len(by_id) == len(events)  # no score for an event that was never sent
    assert sum(len(v) - 1 for v in by_id.values()) == resent
    worst = 0.0
    for i, event in enumerate(events):
        for s in by_id[(event.user_id, event.event_id)]:
            worst = max(
                worst,
                abs(s["p_purchase"] - offline.p_purchase[i]),
                abs(s["p_churn"] - offline.p_churn[i]),
            )
    assert worst <= 1e-4


@pytest.mark.kafka
@pytest.mark.slow
def test_corpus_worker_stops_cleanly(corpus_run: CorpusRun) -> None:
    assert corpus_run.worker.stop() == 0, corpus_run.worker.log_tail()


def _resendable_duplicates(rows: list[Row]) -> int:
    """Duplicates whose id is among the user's last RESEND_WINDOW scored events (arrival order).

    The corpus's re-keyed events belong to users of their own, so production order is the order
    in which each duplicate's user was scored.
    """
    history: dict[str, list[str]] = {}
    count = 0
    for row in rows:
        if row.expect not in ("scored", "duplicate"):
            continue
        event = decode_event(row.value or b"")
        seen = history.setdefault(event.user_id, [])
        if row.expect == "scored":
            seen.append(event.event_id)
        else:
            count += event.event_id in seen[-RESEND_WINDOW:]
    return count
