"""The store application: the sink, the dead-letter table, the raw archive, alerting in the store worker, and the
store's web API (consumer group ``<prefix>sentimon-store``)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import faust
from mode import CrashingSupervisor

from alerts.service import sink_watermark
from alerts.watermark import StoredWatermark
from schemas.base import now_utc
from sentimon.settings import Settings, redact
from sentimon.web.api import int_param, routes as web_routes
from streams import metrics
from streams.envelope import read_watermark
from streams.ingest import dead_letter
from streams.kafka.producer import BatchProducer, OutMessage
from streams.sink import ArchiveSink, BatchingSink, DeadLetterSink, StoreSink, Written, validate_scored
from streams.store import Store

from sentimon.apps.alerting import notification_side, alerts_api, evaluation_loop, provenance_key
from sentimon.apps.common import (LATENCY_SAMPLE, Outbox, ack_all, faust_app, record_buffered, record_batch, input_topic, items_of, observability,
                                  position, log)


def store_app(settings: Settings, web_port: int | None = None) -> faust.App:
    """The sink stage (consumer group ``<prefix>sentimon-store``); owns the store in this process."""
    app = faust_app(settings, "store", settings.worker.store_port if web_port is None else web_port)
    t = settings.topics
    scores_topic, dead_topic, alerts_topic = t.name("scores"), t.name("dead_letters"), t.name("alerts")
    scores = input_topic(app, scores_topic, batch=settings.stream.sink_max_envelopes)
    # the store pays a fixed cost per insert (a part per table and view): larger batches than the other stages
    within = max(settings.stream.max_wait_s, settings.stream.sink_max_wait_s)
    store = Store.open(settings)
    sink = StoreSink(store)
    producer = BatchProducer(settings.kafka)
    a = settings.alerts
    # the watermark of what this sink has stored: evaluated here, or recorded for `sentimon alerts run`
    marks = sink_watermark(settings) if a.enabled else None
    key = provenance_key(settings) if a.enabled and a.run_in == "store" else b""
    alerting = notification_side(app, settings, store, producer, marks, key) if a.enabled and a.run_in == "store" else None
    recorder = StoredWatermark(store) if a.enabled and a.run_in == "service" else None
    evaluate_alerts = evaluation_loop(alerting, producer, alerts_topic, key) if alerting is not None else None

    @app.agent(scores, name="sink", supervisor_strategy=CrashingSupervisor)
    async def sink_stage(stream):
        new_outbox = lambda: Outbox("sink", dead_topic, {}, settings.stream.envelope_max_bytes)  # noqa: E731
        async for events in stream.noack_take(settings.stream.sink_max_envelopes, within=within):
            started = time.perf_counter()
            out = new_outbox()
            received = list(items_of(events))
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
            await ack_all(stream, events)
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
            record_buffered("sink", stream)
            record_batch("sink", len(received), out, started)

    last_input = [time.monotonic()]
    letters = input_topic(app, dead_topic, batch=settings.stream.sink_max_envelopes)
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
            await ack_all(stream, events)
            metrics.consumed.labels("dead_letters").inc(len(items))

    if settings.archive.enabled:
        kinds = {t.name("raw_news"): "news", t.name("raw_social"): "social"}
        raw = input_topic(app, *kinds, batch=settings.stream.max_batch)
        archive = ArchiveSink(store, settings.privacy.key.get_secret_value().encode())

        @app.agent(raw, name="archive", supervisor_strategy=CrashingSupervisor)
        async def archive_stage(stream):
            # every raw item kept, good and bad, so history can be replayed through the same pipeline
            async for events in stream.noack_take(settings.stream.max_batch, within=within):
                items = [(kinds.get(e.message.topic, "news"), e.message.topic, e.message.partition, e.message.offset,
                          e.message.value or b"") for e in events]
                written = await asyncio.to_thread(archive.write, items)
                if written.rejected:
                    letters_ = [dead_letter("archive", f"the store refused it: {why}", *position(events[index]))
                                for index, why in written.rejected]
                    await producer.send([OutMessage(dead_topic, d.model_dump_json().encode()) for d in letters_])
                    metrics.dead_letters.labels("archive").inc(len(letters_))
                await ack_all(stream, events)
                metrics.consumed.labels("archive").inc(written.new)
                record_buffered("archive", stream)

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
        alerts_api(app, store)
    web_routes(app, store, alerting is not None)  # the live page (/live/) and the read-only API (/api/v1/...)

    observability(app, "store", details, settings.worker.trim_memory_s)
    app.sentimon_closers = [*(x.close for x in sinks), producer.close, store.close]  # type: ignore[attr-defined]
    return app


def summarize(store: Store, window: int = 5, baseline: int = 30, limit: int = 10) -> dict[str, Any]:
    """What the demo and ``sentimon query`` show: counts, movers, the busiest tickers, the stage counters."""
    return {
        "counts": store.counts(),
        "top": store.top_entities("ticker", limit),
        "latest_minute": (m.isoformat() if (m := store.latest_minute()) else None),
        "movers": store.movers(window, baseline, limit=limit),
        "metrics": metrics.snapshot(),
    }
