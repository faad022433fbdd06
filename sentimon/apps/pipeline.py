"""The pipeline application: the ingest and scoring stages (consumer group ``<prefix>sentimon-pipeline``)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import faust
import orjson
from mode import CrashingSupervisor

from alerts.watermark import InputEnd, Watermark
from models.classifier import PredictionError
from schemas.base import now_utc, parse_utc
from sentimon.settings import Settings
from streams import errors, metrics
from streams.dedup import Deduplicator
from streams.envelope import event_time_text, read_watermark
from streams.ingest import Ingested, Ingestor, records
from streams.kafka.producer import BatchProducer
from streams.errors import ScorerUnavailable
from streams.scorer import Scorer, make_scorer, scorable, scored_messages

from sentimon.apps.common import (Outbox, ack_all, faust_app, record_buffered, record_batch, input_topic, items_of,
                                  observability, position, waiting, log)


def pipeline_app(settings: Settings, web_port: int | None = None, scorer: Scorer | None = None) -> faust.App:
    """Ingest and scoring stages in one Faust app (consumer group ``<prefix>sentimon-pipeline``)."""
    app = faust_app(settings, "pipeline", settings.worker.pipeline_port if web_port is None else web_port)
    t = settings.topics
    kinds = {t.name("raw_news"): "news", t.name("raw_social"): "social"}
    documents_topic, scores_topic, dead_topic = t.name("documents"), t.name("scores"), t.name("dead_letters")
    within = settings.stream.max_wait_s
    raw = input_topic(app, *kinds, batch=settings.stream.max_batch)
    documents = input_topic(app, documents_topic, batch=settings.stream.max_envelopes)
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
    end = InputEnd()  # a finite input's last offsets (POST /api/input-end), for the last windows
    ingest_outbox: list[Callable[[], Outbox]] = []

    def raw_assignment() -> list[tuple[str, int]]:
        return [(tp.topic, tp.partition) for tp in app.consumer.assignment() if tp.topic in kinds]

    async def pass_input_end() -> None:
        """Raw partitions handled to the input's end reach its last event time: send the watermark on (an
        empty envelope on every documents partition) so the windows up to there are evaluated."""
        if end.until is None or not ingest_outbox:
            return  # no end announced (a live feed): nothing to look up after every batch
        assigned = raw_assignment()
        finished = end.finished(assigned)
        until = min(end.until, now_utc())
        if all(source.latest.get((p, None)) == until for p in finished):
            return  # none finished, or passed on already
        source.assign(assigned)
        for where in finished:
            source.observe(where, until)
        await producer.send(ingest_outbox[0]().messages(source.value()))

    @app.agent(raw, name="ingest", supervisor_strategy=CrashingSupervisor)
    async def ingest(stream):
        new_outbox = await outbox("ingest", documents_topic)
        ingest_outbox.append(new_outbox)
        ingestor.start()  # in this thread: the helpers die with the thread that started them (PDEATHSIG)
        async for events in stream.noack_take(settings.stream.max_batch, within=within):
            started = time.perf_counter()
            items = [r for e in events for r in records(kinds.get(e.message.topic, "news"), *position(e))]
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
            source.assign(raw_assignment())
            now = now_utc()  # an event time ahead of the clock (within stream.max_future_s) does not move it further
            for where, t in latest.items():
                source.observe(where, min(parse_utc(t), now))
            await producer.send(out.messages(source.value()))
            await ack_all(stream, events)
            for e in events:
                end.handle((e.message.topic, e.message.partition), e.message.offset)
            await pass_input_end()
            record_buffered("ingest", stream)
            record_batch("ingest", len(items), out, started)

    @app.timer(interval=0.5)
    async def input_end_reached():
        # partitions with nothing (more) to read since the end was announced: no batch comes to check them
        await pass_input_end()

    @app.page("/api/input-end")
    class InputEndView(faust.web.View):
        async def post(self, request):
            """Whoever feeds this deployment a finite input (a replay) says where it ends: ``offsets``
            ({topic: {partition: next offset}}) of the raw topics and ``until``, its latest event time."""
            try:
                body = orjson.loads(await request.read())
                offsets = {(topic, int(p)): int(o) for topic, parts in body["offsets"].items() if topic in kinds
                           for p, o in parts.items()}
                end.set(offsets, parse_utc(body["until"]))
            except (ValueError, TypeError, KeyError, AttributeError) as exc:
                return self.json({"error": f"expected {{'offsets': {{topic: {{partition: offset}}}}, 'until': time}}: "
                                           f"{errors.reason(exc)}"}, status=400)
            await pass_input_end()
            return self.json({"partitions": len(offsets)})

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
            results = await score_isolating(scorer_, texts, state)
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
            await ack_all(stream, events)
            record_buffered("scoring", stream)
            record_batch("scoring", n, out, started)

        held = None  # a batch being scored whose results are sent once the next batch is queued behind it
        try:
            async for events in stream.noack_take(settings.stream.max_envelopes, within=within):
                started = time.perf_counter()
                out = new_outbox()
                docs, n = [], 0
                for e, i, item in items_of(events):
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
                if not waiting(stream):  # nothing behind it: do not hold it until more arrives
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

    observability(app, "pipeline", details, settings.worker.trim_memory_s)
    app.sentimon_closers = [producer.close, ingestor.close]  # type: ignore[attr-defined]
    return app


async def score_isolating(scorer: Scorer, texts: list[str], state: dict[str, Any], max_backoff_s: float = 10.0) -> list:
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
            return await score_isolating(scorer, texts[:half], state) + await score_isolating(scorer, texts[half:], state)
        if state["unavailable"]:
            log.info("scorer available again")
            state["unavailable"] = ""
        return results
