"""The Faust applications: the stages wired to topics.

* ``pipeline`` (scale out: one worker per few partitions): ``ingest`` (raw news + social -> documents,
  dead letters) and ``scoring`` (documents -> scores, micro-batched into the classifier).
* ``store`` (exactly one per chDB path; per partition set with a server): ``sink`` (scores -> ClickHouse),
  ``dead_letters`` (the dead-letter topic -> a table, for dashboards), ``archive`` (the raw topics ->
  ``raw_items``, so history can be replayed),
  and alerting (rules evaluated in event time, notifications from the alerts topic) unless it runs as
* ``alerts`` (``sentimon alerts run``; one per deployment, against a ClickHouse server).

Each stage takes micro-batches with ``noack_take(n, within=max_wait)``, writes its output (Kafka
delivery confirmed, or the store insert returned) and only then acknowledges the batch, so the
offsets Faust commits never cover unwritten work. An unexpected error crashes the worker (instead of
Faust's default of restarting the agent past the unacknowledged batch): a restarted worker resumes
from the committed offsets. Consumer groups are per role, so scoring workers and the store worker
scale independently.

Between stages a message is an envelope of many documents (:mod:`streams.envelope`): Faust's cost per
message is then paid once per envelope, not once per document.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

import faust
import orjson
from mode import CrashingSupervisor

from alerts import provenance
from alerts.service import Alerting, sink_watermark
from alerts.watermark import StoredWatermark, Watermark
from models.classifier import PredictionError
from schemas import DeadLetter
from schemas.base import now_utc, parse_utc
from sentimon.settings import Settings, redact
from sentimon.web import access
from sentimon.web.api import int_param, routes as web_routes
from streams import errors, memory, metrics
from streams.dedup import Deduplicator
from streams.envelope import event_time_text, pack, read_watermark, shard, unpack, watermark_header
from streams.ingest import Ingested, Ingestor, dead_letter, records
from streams.kafka.config import faust_broker, tune_faust_consumer
from streams.kafka.producer import BatchProducer, OutMessage
from streams.errors import ScorerUnavailable
from streams.scorer import Scorer, make_scorer, scorable, scored_messages
from streams.sink import ArchiveSink, BatchingSink, DeadLetterSink, StoreSink, Written, validate_scored
from streams.store import Store

Role = Literal["pipeline", "store", "alerts"]
PRODUCER = f"{socket.gethostname()}:{os.getpid()}"  # this process, in the watermark headers it writes
LATENCY_SAMPLE = 256
log = logging.getLogger("sentimon.stream")


def _app(settings: Settings, role: Role, web_port: int) -> faust.App:
    token = settings.worker.token.get_secret_value()  # exposure is checked by sentimon.worker.run, before anything starts
    tune_faust_consumer(settings.kafka)
    return faust.App(
        f"{settings.topics.prefix}sentimon-{role}",
        **faust_broker(settings.kafka),
        web_enabled=True,
        web_host=settings.worker.host,
        web_port=web_port,
        web_application_options={"middlewares": [access.guard, *([access.middleware(token)] if token else [])]},
        consumer_auto_offset_reset="earliest",
        broker_commit_interval=1.0,
        topic_partitions=settings.kafka.partitions,
        topic_replication_factor=settings.kafka.replication_factor,
        topic_disable_leader=True,
        store="memory://",
        table_standby_replicas=0,
        stream_buffer_maxsize=max(4096, 4 * settings.stream.max_batch),
        producer_linger_ms=5,
        autodiscover=False,
    )


@dataclass
class Outbox:
    """What a stage produces for one micro-batch: items packed into envelopes by shard, and dead letters.

    ``partitions``: the partition count of each topic items go to (``shard(doc_id)`` picks the partition,
    so a document takes the same partition of every topic whichever batch carried it). ``marked``: the
    watermark last sent to each of their partitions, kept by the stage from batch to batch."""

    stage: str
    dead_topic: str
    partitions: dict[str, int]
    envelope_max_bytes: int
    items: int = 0
    dead: int = 0
    marked: dict[tuple[str, int], datetime] = field(default_factory=dict)
    _shards: dict[tuple[str, int], list[bytes]] = field(default_factory=dict)
    _letters: list[OutMessage] = field(default_factory=list)

    def add(self, topic: str, doc_id: str, item: bytes) -> None:
        """Queue one item (its JSON, one line) for ``topic``."""
        self._shards.setdefault((topic, shard(doc_id, self.partitions[topic])), []).append(item)
        self.items += 1

    def dead_letter(self, letter: DeadLetter) -> None:
        self._letters.append(OutMessage(self.dead_topic, letter.model_dump_json().encode()))
        self.dead += 1

    def reject(self, event: faust.types.EventT, reason: str, item: bytes | None = None, index: int | None = None) -> None:
        """Dead-letter an item of a consumed message (the whole message when ``item`` is None) with its
        original bytes and source position."""
        m = event.message
        self.dead_letter(dead_letter(self.stage, reason, m.value if item is None else item, m.topic, m.partition,
                                     m.offset, index))

    def messages(self, watermark: datetime | None = None) -> list[OutMessage]:
        """Dead letters and envelopes; the envelopes carry ``watermark`` (see :mod:`streams.envelope`), and
        every partition that has no envelope this time and has not had this watermark yet gets an empty
        one carrying it (consumers then wait for this process on every partition: :mod:`alerts.watermark`)."""
        headers = watermark_header(watermark, PRODUCER) if watermark is not None else None
        out = self._letters + [
            OutMessage(topic, envelope, partition=partition, headers=headers)
            for (topic, partition), items in self._shards.items()
            for envelope in pack(items, self.envelope_max_bytes)
        ]
        if watermark is not None:
            for where in ((topic, p) for topic, n in self.partitions.items() for p in range(n)):
                if where not in self._shards and self.marked.get(where) != watermark:
                    out.append(OutMessage(where[0], b"", partition=where[1], headers=headers))
                self.marked[where] = watermark
        return out


def _position(event: faust.types.EventT) -> tuple[bytes | None, str, int, int]:
    m = event.message
    return m.value, m.topic, m.partition, m.offset


def _items(events: Sequence[faust.types.EventT]) -> Iterator[tuple[faust.types.EventT, int, bytes]]:
    """(event, index, item bytes) for every item of every envelope consumed."""
    for event in events:
        for i, item in enumerate(unpack(event.message.value)):
            yield event, i, item


async def _ack(stream: faust.StreamT, events: Sequence[faust.types.EventT]) -> None:
    for event in events:
        await stream.ack(event)


def _observability(app: faust.App, role: str, details, trim_memory_s: float = 0.0) -> None:
    """/health (200 when ready, else 503), /metrics (Prometheus), a log line of the counters every 30 s, the
    C heap and Python's object counts recorded every ``trim_memory_s`` or 30 s (the heap's free pages given back
    first when ``trim_memory_s``), and /debug/objects (a census of Python objects by type, for leak hunting)."""

    @app.timer(interval=30.0)
    async def report():
        counters = {key.replace(".", "_"): value for key, value in metrics.snapshot().items()}
        log.info("counters", extra={"role": role, **counters})

    @app.timer(interval=trim_memory_s or 30.0)
    async def heap():
        if trim_memory_s:
            memory.trim()
        now = memory.heap()
        if now is not None:
            for kind in ("in_use", "free", "mmapped"):
                metrics.heap_bytes.labels(kind).set(getattr(now, kind))
        objects = memory.python_objects()
        for kind in ("blocks", "tracked"):
            metrics.python_objects.labels(kind).set(getattr(objects, kind))

    @app.page("/debug/objects")
    async def objects(view, request):
        return view.json(memory.census(int_param(request.query, "limit", 40, 1, 100_000)))

    @app.page("/health")
    async def health(view, request):
        status, body = details()
        return view.json(body, status=status)

    @app.page("/metrics")
    async def prometheus(view, request):
        payload, content_type = metrics.exposition()
        # aiohttp wants the charset apart from the content type
        return view.bytes(payload, content_type=content_type.split(";")[0])


def pipeline_app(settings: Settings, web_port: int | None = None, scorer: Scorer | None = None) -> faust.App:
    """Ingest and scoring stages in one Faust app (consumer group ``<prefix>sentimon-pipeline``)."""
    app = _app(settings, "pipeline", settings.worker.pipeline_port if web_port is None else web_port)
    t = settings.topics
    kinds = {t.name("raw_news"): "news", t.name("raw_social"): "social"}
    documents_topic, scores_topic, dead_topic = t.name("documents"), t.name("scores"), t.name("dead_letters")
    within = settings.stream.max_wait_s
    raw = _input(app, *kinds, batch=settings.stream.max_batch)
    documents = _input(app, documents_topic, batch=settings.stream.max_envelopes)
    producer = BatchProducer(settings.kafka)
    ingestor = Ingestor(
        settings.privacy.key.get_secret_value().encode(),
        max_message_bytes=settings.stream.max_message_bytes,
        max_text_chars=settings.stream.max_text_chars,
        max_future_s=settings.stream.max_future_s,
        min_event_time=settings.stream.min_event_time,
        dedup=Deduplicator(settings.stream.dedup_window, settings.stream.near_duplicate_threshold),
        processes=settings.stream.ingest_processes,
    )
    state: dict[str, Any] = {"scorer": scorer, "unavailable": ""}

    async def outbox(stage: str, *topics: str) -> Callable[[], Outbox]:
        counts = {topic: await asyncio.to_thread(producer.partitions, topic) for topic in topics}
        marked: dict[tuple[str, int], datetime] = {}
        return lambda: Outbox(stage, dead_topic, counts, settings.stream.envelope_max_bytes, marked=marked)

    # event time read so far from the raw partitions (each in event-time order, as feeds publish), and
    # the watermark of the documents scored so far
    source = Watermark(timedelta(0), idle_s=settings.alerts.idle_partition_s)
    upstream = Watermark(timedelta(0), idle_s=settings.alerts.idle_partition_s)

    @app.agent(raw, name="ingest", supervisor_strategy=CrashingSupervisor)
    async def ingest(stream):
        new_outbox = await outbox("ingest", documents_topic)
        ingestor.start()  # in this thread: the helpers die with the thread that started them (PDEATHSIG)
        async for events in stream.noack_take(settings.stream.max_batch, within=within):
            started = time.perf_counter()
            items = [r for e in events for r in records(kinds.get(e.message.topic, "news"), *_position(e))]
            out = new_outbox()
            latest: dict[tuple[str, int], str] = {}
            # off the event loop: while ingest works (or waits on its helper) the loop goes on delivering
            # documents to scoring, sending requests to the scorer and acknowledging finished batches
            for item, outcome in zip(items, await asyncio.to_thread(ingestor.process, items)):
                if isinstance(outcome, Ingested):
                    out.add(documents_topic, outcome.doc_id, outcome.json)
                    t, where = event_time_text(outcome.json), (item.topic, item.partition)
                    if t > latest.get(where, ""):
                        latest[where] = t
                    if outcome.duplicate_of:
                        metrics.duplicates.inc()
                else:
                    out.dead_letter(outcome)
            source.assign((tp.topic, tp.partition) for tp in app.consumer.assignment() if tp.topic in kinds)
            now = now_utc()  # an event time ahead of the clock (within stream.max_future_s) does not move it further
            for where, t in latest.items():
                source.observe(where, min(parse_utc(t), now))
            await producer.send(out.messages(source.value()))
            await _ack(stream, events)
            _buffered("ingest", stream)
            _count("ingest", len(items), out, started)

    @app.agent(documents, name="scoring", supervisor_strategy=CrashingSupervisor)
    async def scoring(stream):
        if state["scorer"] is None:
            state["scorer"] = await make_scorer(settings)
            log.info("scorer ready: %s/%s", state["scorer"].name, state["scorer"].version)
        scorer_ = state["scorer"]
        new_outbox = await outbox("scoring", scores_topic)
        busy_until = 0.0

        async def infer(texts: list[str]) -> list:
            """The scorer's results; the inference time counted is the scorer's busy time (a batch queued
            behind the previous one counts from when that one ended)."""
            nonlocal busy_until
            if not texts:
                return []
            t0 = time.perf_counter()
            results = await _score(scorer_, texts, state)
            t1 = time.perf_counter()
            metrics.inference_seconds.observe(t1 - max(t0, busy_until))
            busy_until = t1
            return results

        async def finish(events, out, docs, n, inference, started) -> None:
            for (e, i, item, doc), result in zip(docs, scored_messages([d for *_, d in docs], await inference)):
                if isinstance(result, bytes):
                    out.add(scores_topic, doc["doc_id"], result)
                else:
                    out.reject(e, result, item, i)
            # the watermark passed on: the minimum over every documents partition this worker reads and
            # every process writing to it (not just this batch's: the others may lag far behind)
            upstream.assign(tp.partition for tp in app.consumer.assignment() if tp.topic == documents_topic)
            for e in events:
                mark = read_watermark(e.message.headers)
                if mark is not None:
                    upstream.observe(e.message.partition, *mark)
            await producer.send(out.messages(upstream.value()))
            await _ack(stream, events)
            _buffered("scoring", stream)
            _count("scoring", n, out, started)

        held = None  # a batch being scored whose results are sent once the next batch is queued behind it
        try:
            async for events in stream.noack_take(settings.stream.max_envelopes, within=within):
                started = time.perf_counter()
                out = new_outbox()
                docs, n = [], 0
                for e, i, item in _items(events):
                    n += 1
                    doc = scorable(item)
                    if isinstance(doc, str):
                        out.reject(e, doc, item, i)
                    else:
                        docs.append((e, i, item, doc))
                # queue this batch's inference first, then send and acknowledge the previous one: the
                # scorer works through them in order and never waits for our Kafka round trips
                inference = asyncio.ensure_future(infer([d["text"] for *_, d in docs]))
                if held is not None:
                    await finish(*held)
                held = (events, out, docs, n, inference, started)
                if not _waiting(stream):  # nothing behind it: do not hold it until more arrives
                    await finish(*held)
                    held = None
        finally:
            if held is not None:
                held[4].cancel()  # stopping: unacknowledged, it is read again

    def details():
        ready = state["scorer"] is not None and not state["unavailable"] and not producer.failing
        body = {"role": "pipeline", "ready": ready, "metrics": metrics.snapshot()}
        if state["unavailable"]:
            body["scorer_unavailable"] = state["unavailable"]
        if producer.failing:
            body["kafka_failing"] = producer.failing
        return (200 if ready else 503), body

    _observability(app, "pipeline", details, settings.worker.trim_memory_s)
    app.sentimon_closers = [producer.close, ingestor.close]  # type: ignore[attr-defined]
    return app


def store_app(settings: Settings, web_port: int | None = None) -> faust.App:
    """The sink stage (consumer group ``<prefix>sentimon-store``); owns the store in this process."""
    app = _app(settings, "store", settings.worker.store_port if web_port is None else web_port)
    t = settings.topics
    scores_topic, dead_topic, alerts_topic = t.name("scores"), t.name("dead_letters"), t.name("alerts")
    scores = _input(app, scores_topic, batch=settings.stream.sink_max_envelopes)
    # the store pays a fixed cost per insert (a part per table and view): larger batches than the other stages
    within = max(settings.stream.max_wait_s, settings.stream.sink_max_wait_s)
    store = Store.open(settings)
    sink = StoreSink(store)
    producer = BatchProducer(settings.kafka)
    a = settings.alerts
    # the watermark of what this sink has stored: evaluated here, or recorded for `sentimon alerts run`
    marks = sink_watermark(settings) if a.enabled else None
    key = _provenance_key(settings) if a.enabled and a.run_in == "store" else b""
    alerting = _alerting(app, settings, store, producer, marks, key) if a.enabled and a.run_in == "store" else None
    recorder = StoredWatermark(store) if a.enabled and a.run_in == "service" else None
    evaluate_alerts = _evaluation(alerting, producer, alerts_topic, key) if alerting is not None else None

    @app.agent(scores, name="sink", supervisor_strategy=CrashingSupervisor)
    async def sink_stage(stream):
        new_outbox = lambda: Outbox("sink", dead_topic, {}, settings.stream.envelope_max_bytes)  # noqa: E731
        async for events in stream.noack_take(settings.stream.sink_max_envelopes, within=within):
            started = time.perf_counter()
            out = new_outbox()
            received = list(_items(events))
            items = []
            last_input[0] = time.monotonic()
            for (e, i, item), valid in zip(received, validate_scored([item for *_, item in received])):
                if isinstance(valid, str):
                    out.reject(e, valid, item, i)
                else:
                    items.append((e, i, item, valid))
            t0 = time.perf_counter()
            written = await asyncio.to_thread(sink.write, [item for *_, item in items]) if items else Written(0)
            metrics.sink_seconds.observe(time.perf_counter() - t0)
            for index, why in written.rejected:
                e, i, line, _ = items[index]
                out.reject(e, f"the store refused it: {why}", line, i)
            refused = {index for index, _ in written.rejected}
            items = [item for n, (*_, item) in enumerate(items) if n not in refused]
            new = written.new
            await producer.send(out.messages())
            if marks is not None:
                marks.assign(tp.partition for tp in app.consumer.assignment() if tp.topic == scores_topic)
                for e in events:
                    # only the watermark an envelope carries: its documents' own times say nothing about
                    # documents still on the way (a backlog is read unevenly). Envelopes without one (the
                    # stream's first moments, another producer) count once the input is drained.
                    mark = read_watermark(e.message.headers)
                    if mark is not None:
                        marks.observe(e.message.partition, *mark)
                if items:
                    marks.seen(min(max(i.document.event_time for i in items), now_utc()))
                await watermark_moved()
            await _ack(stream, events)
            stored_at = now_utc()
            unique = {i.document.doc_id: i.document for i in items}
            metrics.redelivered.inc(len(unique) - new)
            # latency histograms: up to LATENCY_SAMPLE documents per batch, evenly spread (observing every
            # document cost a sixth of the stage; the quantiles stay unbiased)
            docs = list(unique.values())
            for doc in docs[:: max(1, len(docs) // LATENCY_SAMPLE)]:
                metrics.end_to_end_seconds.observe(max(0.0, (stored_at - doc.event_time).total_seconds()))
                metrics.pipeline_seconds.observe(max(0.0, (stored_at - doc.ingested_at).total_seconds()))
            out.items = new
            _buffered("sink", stream)
            _count("sink", len(received), out, started)

    last_input = [time.monotonic()]
    letters = _input(app, dead_topic, batch=settings.stream.sink_max_envelopes)
    letter_sink = DeadLetterSink(store)
    sinks: list[BatchingSink] = [sink, letter_sink]

    def details():
        until = alerting.evaluator.evaluated_until if alerting is not None else None
        failing = {type(x).__name__: x.failing for x in [*sinks, producer] if x.failing}
        body = {"role": "store", "ready": not failing, "store": redact(settings.store_dsn), "metrics": metrics.snapshot(),
                "latency": metrics.latencies(), "evaluated_until": until.isoformat() if until else None}
        if failing:
            body["store_failing"] = failing
        return (503 if failing else 200), body

    @app.agent(letters, name="dead_letters", supervisor_strategy=CrashingSupervisor)
    async def dead_letters_stage(stream):
        # the dead letters into the store too, for the dashboards (the topic stays the source of truth)
        async for events in stream.noack_take(settings.stream.sink_max_envelopes, within=within):
            items = [(e.message.partition, e.message.offset, e.message.value or b"") for e in events]
            await asyncio.to_thread(letter_sink.write, items)
            await _ack(stream, events)
            metrics.consumed.labels("dead_letters").inc(len(items))

    if settings.archive.enabled:
        kinds = {t.name("raw_news"): "news", t.name("raw_social"): "social"}
        raw = _input(app, *kinds, batch=settings.stream.max_batch)
        archive = ArchiveSink(store, settings.privacy.key.get_secret_value().encode())

        @app.agent(raw, name="archive", supervisor_strategy=CrashingSupervisor)
        async def archive_stage(stream):
            # every raw item kept, good and bad, so history can be replayed through the same pipeline
            async for events in stream.noack_take(settings.stream.max_batch, within=within):
                items = [(kinds.get(e.message.topic, "news"), e.message.topic, e.message.partition, e.message.offset,
                          e.message.value or b"") for e in events]
                written = await asyncio.to_thread(archive.write, items)
                if written.rejected:
                    letters_ = [dead_letter("archive", f"the store refused it: {why}", *_position(events[index]))
                                for index, why in written.rejected]
                    await producer.send([OutMessage(dead_topic, d.model_dump_json().encode()) for d in letters_])
                    metrics.dead_letters.labels("archive").inc(len(letters_))
                await _ack(stream, events)
                metrics.consumed.labels("archive").inc(written.new)
                _buffered("archive", stream)

        sinks.append(archive)

    async def watermark_moved() -> None:
        """The stored data's watermark may have moved: evaluate here, or record it for the alerts service."""
        if evaluate_alerts is not None:
            await evaluate_alerts()
        elif recorder is not None and marks is not None:
            try:
                await asyncio.to_thread(recorder.record, marks.value())
            except Exception as exc:  # recorded again with the next batch
                metrics.evaluation_failures.inc()
                log.warning("recording the watermark failed, retried with the next batch: %s", exc)

    if marks is not None:
        @app.timer(interval=1.0)
        async def release_when_drained():
            # no new scores for a while: the input is drained (a backlog read to its end, a quiet feed)
            if time.monotonic() - last_input[0] >= a.idle_partition_s:
                marks.release()
                await watermark_moved()

        @app.page("/api/input-complete")
        class InputComplete(faust.web.View):
            async def post(self, request):
                """Whoever feeds this deployment says everything it sent is stored (a replay at its end):
                evaluate up to the data's last event time now, without waiting for the input to go quiet."""
                marks.release()
                await watermark_moved()
                return self.json({"released": True})

    @app.page("/api/summary")
    async def summary(view, request):
        q = request.query
        body = await asyncio.to_thread(summarize, store, int_param(q, "window", 5, 1, 1440),
                                       int_param(q, "baseline", 30, 1, 10080), int_param(q, "limit", 10, 1, 200))
        return view.json(body)

    @app.page("/api/entity/{entity}/")
    async def entity_series(view, request, entity):
        q = request.query
        series = await asyncio.to_thread(store.entity_series, entity, int_param(q, "minutes", 60, 1, 44640),
                                         int_param(q, "bucket", 5, 1, 1440))
        return view.json({"entity": entity, "series": series})

    if alerting is not None:
        _alerts_api(app, store)
    web_routes(app, store, alerting is not None)  # the live page (/live/) and the read-only API (/api/v1/...)

    _observability(app, "store", details, settings.worker.trim_memory_s)
    app.sentimon_closers = [*(x.close for x in sinks), producer.close, store.close]  # type: ignore[attr-defined]
    return app


def alerts_app(settings: Settings, web_port: int | None = None) -> faust.App:
    """Alerting as its own service (``sentimon alerts run``, ``alerts.run_in = "service"``): evaluates the
    rules up to the watermark the sink records in the store, publishes the changes, notifies from the
    alerts topic, and serves /api/silences and /api/alerts. Its store is a ClickHouse server shared with
    the sink (a chDB path is owned by one process: there the store worker runs alerting itself)."""
    app = _app(settings, "alerts", settings.worker.alerts_port if web_port is None else web_port)
    store = Store.open(settings)
    producer = BatchProducer(settings.kafka)
    key = _provenance_key(settings)
    alerting = _alerting(app, settings, store, producer, StoredWatermark(store), key)
    evaluate_alerts = _evaluation(alerting, producer, settings.topics.name("alerts"), key)

    @app.timer(interval=1.0)
    async def evaluate_recorded():
        await evaluate_alerts()

    _alerts_api(app, store)

    def details():
        until = alerting.evaluator.evaluated_until
        return 200, {"role": "alerts", "ready": True, "store": redact(settings.store_dsn), "metrics": metrics.snapshot(),
                     "evaluated_until": until.isoformat() if until else None}

    _observability(app, "alerts", details, settings.worker.trim_memory_s)
    app.sentimon_closers = [producer.close, store.close]  # type: ignore[attr-defined]
    return app


def _provenance_key(settings: Settings) -> bytes:
    """The key that signs alert changes on the alerts topic (:mod:`alerts.provenance`)."""
    return provenance.key_from(settings.alerts.provenance_key.get_secret_value(), settings.var_dir)


def _evaluation(alerting, producer: BatchProducer, alerts_topic: str, key: bytes) -> Callable[[], Awaitable[None]]:
    """Evaluate the windows the watermark has passed; publish the changes, signed (:mod:`alerts.provenance`),
    before recording the progress, so a crash in between evaluates the same windows again (the same changes,
    deduplicated downstream). One evaluation at a time."""
    evaluating = asyncio.Lock()

    async def evaluate() -> None:
        async with evaluating:
            try:
                if not await asyncio.to_thread(alerting.due):
                    return
                changes = await asyncio.to_thread(alerting.evaluate)
                values = [a.model_dump_json().encode() for a in changes]
                await producer.send([OutMessage(alerts_topic, v, key=a.fingerprint.encode(), headers=provenance.sign(v, key))
                                     for a, v in zip(changes, values)])
                await asyncio.to_thread(alerting.commit, changes)
            except Exception as exc:  # the store or Kafka failing: evaluate the same windows again next time
                metrics.evaluation_failures.inc()
                log.warning("alert evaluation failed, retried from the recorded progress: %s", exc)
                await asyncio.to_thread(alerting.evaluator.reload)

    return evaluate


def _alerts_api(app: faust.App, store: Store) -> None:
    """/api/silences (GET list, POST add, DELETE /api/silences/{id}) and /api/alerts (recent changes):
    how ``sentimon alerts silence`` and the dashboards reach a store this worker owns."""
    from alerts import silence as silences
    from alerts.silence import Silence

    @app.page("/api/silences")
    class SilencesView(faust.web.View):
        async def get(self, request):
            expired = request.query.get("expired", "0")
            if expired not in ("0", "1", "true", "false"):
                raise access.BadRequest("expired must be 0, 1, true or false")
            found = await asyncio.to_thread(silences.load, store, expired in ("1", "true"))
            return self.json([orjson.loads(s.model_dump_json()) for s in found])

        async def post(self, request):
            try:
                silence = Silence.from_request(orjson.loads(await request.read()))
            except (ValueError, TypeError) as exc:  # orjson and pydantic errors are ValueErrors
                return self.json({"error": errors.reason(exc)}, status=400)
            await asyncio.to_thread(silences.save, store, silence)
            return self.json({"id": silence.id})

    @app.page("/api/silences/{silence_id}")
    class SilenceView(faust.web.View):
        async def delete(self, request, silence_id):
            try:
                ended = await asyncio.to_thread(silences.expire, store, silence_id)
            except KeyError:
                return self.json({"error": f"no silence with id {silence_id}"}, status=404)
            return self.json({"id": ended.id, "ends_at": ended.ends_at.isoformat()})

    @app.page("/api/alerts")
    async def alert_changes(view, request):
        limit = int_param(request.query, "limit", 100, 1, 10_000)
        rows = await asyncio.to_thread(store.query, (
            "SELECT fingerprint, status, labels, annotations, starts_at, ends_at, at, value FROM {db}.alerts FINAL "
            "ORDER BY at DESC, fingerprint LIMIT {limit:UInt32}"), {"limit": limit})
        keys = ("fingerprint", "status", "labels", "annotations", "starts_at", "ends_at", "at", "value")
        return view.json([{k: (v.isoformat() + "Z" if hasattr(v, "isoformat") else v) for k, v in zip(keys, r)}
                          for r in rows])


def _alerting(app: faust.App, settings: Settings, store: Store, producer: BatchProducer, watermark, key: bytes):
    """The notification side of alerting: an agent on the alerts topic feeds the dispatcher, a task
    delivers; an alert change is acknowledged only once its notification was delivered or parked in
    the dead letters (so a crash redelivers it, with the same webhook-id)."""
    from schemas.alert import Alert

    alerting = Alerting(settings, store, watermark=watermark)
    t = settings.topics
    alerts_topic, dead_topic = t.name("alerts"), t.name("dead_letters")
    topic = app.topic(alerts_topic, value_serializer="raw", key_serializer="raw", allow_empty=True)
    held: dict[str, Any] = {}

    @app.agent(topic, name="notify", supervisor_strategy=CrashingSupervisor)
    async def notify(stream):
        held["stream"] = stream
        async for events in stream.noack_take(64, within=0.2):
            for event in events:
                refused = provenance.verify(event.message.value, event.message.headers, key)
                if refused:
                    metrics.forged_alerts.inc()
                    log.error("alert change at %s/%d/%d dead-lettered: %s", event.message.topic,
                              event.message.partition, event.message.offset, refused)
                else:
                    try:
                        alert = Alert.model_validate_json(event.message.value)
                    except ValueError as exc:
                        refused = f"not an alert: {errors.reason(exc)}"
                if refused:
                    letter = dead_letter("notify", refused, *_position(event))
                    await producer.send([OutMessage(dead_topic, letter.model_dump_json().encode())])
                    await stream.ack(event)
                    continue
                await alerting.add(alert, event, ack, park)

    async def ack(event) -> None:
        await held["stream"].ack(event)

    async def park(notification, outcome, events) -> None:
        log.error("notification %s to %s parked in the dead letters: %s", notification.id, outcome.notifier, outcome.reason)
        last = events[-1].message if events else None
        letter = DeadLetter(stage="notify", reason=f"{outcome.notifier}: {outcome.reason}", topic=alerts_topic,
                            partition=last.partition if last else -1, offset=last.offset if last else -1,
                            original=base64.b64encode(orjson.dumps(notification.payload())).decode(), failed_at=now_utc())
        await producer.send([OutMessage(dead_topic, letter.model_dump_json().encode())])

    @app.task
    async def deliver_notifications():
        while "stream" not in held:
            await asyncio.sleep(0.2)
        await alerting.notify_forever(ack, park)

    app.sentimon_alerting = alerting  # type: ignore[attr-defined]
    return alerting


def summarize(store: Store, window: int = 5, baseline: int = 30, limit: int = 10) -> dict[str, Any]:
    """What the demo and ``sentimon query`` show: counts, movers, the busiest tickers, the stage counters."""
    return {
        "counts": store.counts(),
        "top": store.top_entities("ticker", limit),
        "latest_minute": (m.isoformat() if (m := store.latest_minute()) else None),
        "movers": store.movers(window, baseline, limit=limit),
        "metrics": metrics.snapshot(),
    }


async def _score(scorer: Scorer, texts: list[str], state: dict[str, Any], max_backoff_s: float = 10.0) -> list:
    """The scorer's results for ``texts``, waiting as long as it takes while it is unavailable: the
    stage stops pulling (backpressure) and nothing is acknowledged; the worker reports not ready. Any other
    failure is the texts' (:mod:`streams.errors`): the batch is split until each text that fails alone gets
    a :class:`PredictionError` (then a dead letter), and the rest is scored."""
    delay = 0.5
    while True:
        try:
            results = await scorer.score(texts)
            if len(results) != len(texts):
                raise RuntimeError(f"the scorer returned {len(results)} results for {len(texts)} texts")
        except ScorerUnavailable as exc:
            if not state["unavailable"]:
                log.warning("scorer unavailable, holding the batch and retrying: %s", exc)
            state["unavailable"] = str(exc)
            metrics.scorer_unavailable.inc()
            await asyncio.sleep(delay)
            delay = min(delay * 2, max_backoff_s)
            continue
        except Exception as exc:  # noqa: BLE001 - a text the scorer cannot take: isolated, never a crash loop
            if len(texts) == 1:
                log.warning("a text could not be scored, dead-lettered: %s", errors.reason(exc))
                return [PredictionError(errors.reason(exc), scorer.name, scorer.version)]
            half = len(texts) // 2
            return await _score(scorer, texts[:half], state) + await _score(scorer, texts[half:], state)
        if state["unavailable"]:
            log.info("scorer available again")
            state["unavailable"] = ""
        return results


BUFFERED_BATCHES = 4


def _input(app: faust.App, *topics: str, batch: int):
    """An input topic whose in-process buffer holds ``BUFFERED_BATCHES`` micro-batches of messages: when it is
    full Faust stops fetching (backpressure), so a backlog waits in Kafka, not in memory. (The app-wide
    default, 4096 messages, would hold 4096 envelopes of documents, up to a gigabyte, per stream.)"""
    topic = app.topic(*topics, value_serializer="raw", key_serializer="raw", allow_empty=True)
    topic.maxsize = BUFFERED_BATCHES * batch  # app.topic() does not pass ``maxsize`` on (faust-streaming 0.15.3)
    return topic


def _queued(stream) -> int | None:
    """How many messages wait in the stream's in-process buffer; None for a stream without one (tests)."""
    try:
        return stream.channel.queue.qsize()
    except AttributeError:
        return None


def _waiting(stream) -> bool:
    """Whether messages wait in the stream's buffer (never, for a stream without one)."""
    return bool(_queued(stream))


def _buffered(stage: str, stream) -> None:
    """How many messages wait in the stage's buffer (at its bound: the stage is the bottleneck, Faust has
    stopped fetching, the backlog is in Kafka)."""
    queued = _queued(stream)
    if queued is not None:
        metrics.buffered.labels(stage).set(queued)


def _count(stage: str, n_in: int, out: Outbox, started: float) -> None:
    """Items in and out of one micro-batch (documents, not envelopes), its dead letters and its time."""
    metrics.consumed.labels(stage).inc(n_in)
    metrics.produced.labels(stage).inc(out.items)
    if out.dead:
        metrics.dead_letters.labels(stage).inc(out.dead)
    metrics.batch_done(stage, n_in, time.perf_counter() - started)
