"""Faust wiring: the events agent, the state table, the timers and the web routes.

The agent is thin (see worker/core/micro_batch.py for the logic). Two Faust facts shape it:

* **Which partition a table write goes to.** ``Table.partition_for_key`` (changelog partition) and
  the RocksDB store (``_set``/``_get``: which partition db) both read
  ``faust.streams.current_event()``. In a ``take_events`` batch that is the *last* event of the
  batch, so writing another user's key would land in the wrong changelog partition (and a
  restart would restore it into the wrong partition db, or another worker would own it). Before
  every table read and write we set the current event to *that user's* event
  (``faust_private.make_current``).
* **When offsets are committed.** ``take_events`` disables auto-ack and acks the whole batch only
  when the ``async for`` body asks for the next batch (faust/streams.py ``take_events``: the
  ``finally`` after ``yield``). Faust commits only acked offsets, and before committing it flushes
  the producer (``Consumer._commit_offsets`` -> ``producer.flush()``), so the changelog writes,
  dead letters, re-keys and alerts of a batch are on the broker before its offsets are committed:
  at-least-once. The body below has no ``await`` between reading the batch and queueing every
  send (all ``send_soon``), so a shutdown cannot interrupt a batch half-way; if processing raises,
  the batch is run again record by record (worker/core/poison.py): a record that fails
  ``POISON_ATTEMPTS`` times in a row becomes a dead letter (``internal``); before that the process
  exits at once (``faust_private.exit_without_ack``) so that ``take_events``' ``finally`` cannot
  ack (and a later commit cannot cover) events whose state was not written.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Sequence
from typing import Any

import faust
import msgspec
from faust.types import EventT

from worker.core.control import control_header
from worker.core.deadletter import dead_letter_key
from worker.core.micro_batch import BatchResult, Record, process_batch
from worker.core.model_store import ModelStore
from worker.core.poison import settle
from worker.core.state import decode_state, encode_state
from worker.metrics import Metrics
from worker.runtime import disk_full, faust_private, preload, send_guard
from worker.runtime.context import Runtime
from worker.runtime.health import add_health, web_options
from worker.runtime.timers import add_churn_sweep, add_model_poll
from worker.settings import Settings

log = logging.getLogger("worker")
TABLE_NAME = "user-state"
_json = msgspec.json.Encoder()


def build_app(settings: Settings, store: ModelStore, metrics: Metrics) -> faust.App:
    """The Faust app for ``settings`` (topics, table, agent, timers, web routes)."""
    app = _faust_app(settings)
    # Faust hard-codes 1500 ms for its consumer (see faust_private, reach 9).
    faust_private.set_fetch_max_wait(settings.fetch_max_wait_ms)
    rt = Runtime(settings, store, metrics)
    events, outputs = _topics(app, settings)
    table = app.Table(
        TABLE_NAME,
        default=None,
        partitions=settings.partitions,
        # bytes -> Faust picks the "raw" codec for both (any other type means JSON).
        key_type=bytes,
        value_type=bytes,
    )
    if settings.store == "rocksdb://" and settings.changelog_preload:
        # Faust restores ~3k records/s; confluent-kafka reads the changelog far faster.
        preload.install(table, settings.kafka.librdkafka())
    _add_agent(app, rt, table, events, outputs)
    add_model_poll(app, rt)
    add_churn_sweep(app, rt, table, outputs["churn"], events)
    add_health(app, rt)
    return app


def _faust_app(settings: Settings) -> faust.App:
    """The app itself: broker, store, web server and producer settings."""
    return faust.App(
        settings.group_id,
        broker=settings.kafka.faust_broker(),
        broker_credentials=settings.kafka.faust_credentials(),
        store=settings.store,
        datadir=str(settings.data_dir),
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication_factor,
        topic_disable_leader=True,
        web_enabled=True,
        web_bind=settings.web_host,
        web_port=settings.web_port,
        web_in_thread=False,
        consumer_auto_offset_reset="earliest",
        # Offsets are committed every 2.8 s (broker_commit_interval) and, inline in the loop that
        # hands records to the agent, every this many events: that commit flushes the producer
        # while no record moves (bench/README.md).
        broker_commit_every=settings.commit_every,
        # A batch queues hundreds of small records (changelog, scores, alerts); a few ms of linger
        # lets aiokafka send them in a handful of requests instead of one request per record.
        producer_linger=0.005,
        producer_max_batch_size=256 * 1024,
        **web_options(),
    )


def _topics(app: faust.App, settings: Settings) -> tuple[Any, dict[str, Any]]:
    """The events topic and the output topics by kind (raw bytes both ways)."""
    raw: dict[str, Any] = {"key_type": bytes, "value_type": bytes}
    raw |= {"key_serializer": "raw", "value_serializer": "raw"}
    events = app.topic(settings.events_topic, partitions=settings.partitions, **raw)
    outputs = {
        "dlq": app.topic(settings.dlq_topic, **raw),
        "propensity": app.topic(settings.propensity_topic, **raw),
        "churn": app.topic(settings.churn_topic, **raw),
        "outcomes": app.topic(settings.outcomes_topic, **raw),
    }
    if settings.scores_topic:
        outputs["scores"] = app.topic(settings.scores_topic, **raw)
    return events, outputs


def _add_agent(
    app: faust.App, rt: Runtime, table: Any, events: Any, outputs: dict[str, Any]
) -> None:
    """The events agent, and the start-up task that readies the producer for its batches."""
    settings = rt.settings

    @app.task
    async def declare_outputs() -> None:
        # Faust pauses the stream whenever >100 sends are buffered (ProducerBuffer.max_messages),
        # and one batch queues a changelog write per user plus alerts/scores: let a few batches in.
        faust_private.raise_send_buffer_limit(app.producer.buffer, 4 * settings.batch_size)
        # Faust's flush can return with sends still buffered, and offsets are committed right
        # after it (a commit then covered events never scored).
        faust_private.install_full_flush(app.producer.buffer)
        # A send the broker refuses for good stops the worker before the commit (send_guard.py).
        send_guard.install(app)
        for topic in outputs.values():
            await topic.maybe_declare()

    @app.agent(events)
    async def score(stream: faust.StreamT) -> None:
        within = settings.batch_max_wait_ms / 1000.0
        take = stream.take_events  # type: ignore[attr-defined]  # StreamT lacks it; Stream has it
        async for batch in take(settings.batch_size, within=within):
            try:
                _process(rt, table, events, outputs, batch)
            except Exception as exc:
                disk_full.report(exc, settings.data_dir)
                faust_private.exit_without_ack(exc)


def _process(
    rt: Runtime,
    table: Any,
    events_topic: Any,
    outputs: dict[str, Any],
    batch: Sequence[EventT],
) -> None:
    """One micro-batch, synchronously: read states, score, write states, queue every send."""
    m = rt.metrics
    records = [_record(e) for e in batch]
    m.events_consumed.inc(len(records))

    def load(user: str, index: int) -> Any:
        faust_private.make_current(batch[index])
        return decode_state(table.get(user.encode("utf-8")))

    model = rt.store.current  # read once: a hot swap lands between batches
    try:
        result = process_batch(records, load, model, rt.cfg)
    except Exception as exc:
        # Nothing is written yet: find the record(s) at fault (worker/core/poison.py). BatchFailed
        # (retries left) goes up to the agent, which exits so the batch is redelivered.
        log.warning("batch failed, retrying it record by record: %r", exc)
        result, failed = settle(records, load, model, rt.cfg, rt.strikes)
        for index, error in failed:
            rec = records[index]
            log.error("poison record %s[%d]@%d: %r", rec.topic, rec.partition, rec.offset, error)
    for user, index in result.deletes.items():
        # Before the writes: a write of the same user comes from an event after the delete.
        faust_private.make_current(batch[index])
        _delete(table, user.encode("utf-8"))
    for user, (state, index) in result.writes.items():
        # This user's own event: its partition (see module doc).
        faust_private.make_current(batch[index])
        table[user.encode("utf-8")] = encode_state(state)
        if state.ctx.last_ts_ms is not None:
            rt.clock.observe(state.ctx.last_ts_ms)
    faust_private.make_current(batch[-1])
    _send(rt, records, events_topic, outputs, result)
    drift = rt.drift(model)  # before the counters: a scraper that sees the count sees its PSI
    drift.observe(result.scored_waves)
    m.set_drift(drift.score_psi(), drift.input_psi(), drift.score_histograms())
    _count(rt, result)


def _delete(table: Any, key: bytes) -> None:
    """Delete ``key``: from the local store and, by a tombstone, from the changelog."""
    # Faust sends the tombstone (Table.on_key_del) before it deletes locally, so it goes out
    # even for a key not held here: an older changelog record of it cannot be restored later.
    with contextlib.suppress(KeyError):  # the memory store raises for a missing key
        del table[key]


def _send(
    rt: Runtime,
    records: Sequence[Record],
    events_topic: Any,
    outputs: dict[str, Any],
    result: BatchResult,
) -> None:
    for dead in result.dead_letters:
        rec = records[dead.index]
        outputs["dlq"].send_soon(key=dead_letter_key(rec.key), value=_json.encode(dead.doc))
        log.info(
            "dead letter %s: %s[%d]@%d: %s",
            dead.reason,
            rec.topic,
            rec.partition,
            rec.offset,
            dead.doc["detail"][:200],
        )
    for rekey in result.rekeys:
        events_topic.send_soon(key=rekey.user_id.encode("utf-8"), value=rekey.value)
    now = time.time()
    for emit in (*result.alerts, *result.scores, *result.outcomes):
        outputs[emit.kind].send_soon(key=emit.key.encode("utf-8"), value=_json.encode(emit.doc))
        if emit.source_ts_ms is not None:
            rt.metrics.end_to_end_latency.observe(max(0.0, now - emit.source_ts_ms / 1000.0))


def _count(rt: Runtime, result: BatchResult) -> None:
    m = rt.metrics
    m.events_scored.inc(result.scored)
    m.events_duplicate.inc(result.duplicates)
    m.events_rekeyed.inc(len(result.rekeys))
    m.state_resets.inc(result.resets)
    for dead in result.dead_letters:
        m.events_dead_lettered.labels(dead.reason).inc()
    for emit in result.alerts:
        m.alerts_emitted.labels(emit.kind, emit.doc["trigger"]).inc()
    for emit in result.outcomes:
        doc = emit.doc
        m.alert_outcomes.labels(doc["alert_type"], doc["model_version"], doc["outcome"]).inc()
    for size, seconds in zip(result.wave_sizes, result.wave_seconds, strict=True):
        m.scoring_batch_size.observe(size)
        m.scoring_latency.observe(seconds)
    for action, n in result.controls.items():
        m.control_records.labels(action).inc(n)
    for action, n in result.deleted.items():
        m.state_deleted.labels(action).inc(n)
    gone = sum(result.deleted.values())
    if result.new_users or gone:
        rt.users_local = max(0, rt.users_local + result.new_users - gone)
        m.users_in_state.set(rt.users_local)


def _record(event: EventT) -> Record:
    msg = event.message
    ts = msg.timestamp
    return Record(
        key=event.key,
        value=event.value,
        topic=msg.topic,
        partition=msg.partition,
        offset=msg.offset,
        timestamp_ms=int(ts * 1000) if ts else None,
        control=control_header(msg.headers),
    )
