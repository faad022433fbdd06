"""Alerting as Faust wiring: the evaluation loop that publishes signed changes, the notification agent on the alerts
topic, the silences API, and ``sentimon alerts run`` as an application of its own."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Awaitable, Callable
from typing import Any

import faust
import orjson
from mode import CrashingSupervisor

from alerts import provenance
from alerts.service import Alerting
from alerts.watermark import StoredWatermark
from schemas import DeadLetter
from schemas.base import now_utc
from sentimon.settings import Settings, redact
from sentimon.web import access
from sentimon.web.api import int_param
from streams import errors, metrics
from streams.ingest import dead_letter
from streams.kafka.producer import BatchProducer, OutMessage
from streams.store import Store

from sentimon.apps.common import faust_app, observability, position, log


def alerts_app(settings: Settings, web_port: int | None = None) -> faust.App:
    """Alerting as its own service (``sentimon alerts run``, ``alerts.run_in = "service"``): evaluates the
    rules up to the watermark the sink records in the store, publishes the changes, notifies from the
    alerts topic, and serves /api/silences and /api/alerts. Its store is a ClickHouse server shared with
    the sink (a chDB path is owned by one process: there the store worker runs alerting itself)."""
    app = faust_app(settings, "alerts", settings.worker.alerts_port if web_port is None else web_port)
    store = Store.open(settings)
    producer = BatchProducer(settings.kafka)
    key = provenance_key(settings)
    alerting = notification_side(app, settings, store, producer, StoredWatermark(store), key)
    evaluate_alerts = evaluation_loop(alerting, producer, settings.topics.name("alerts"), key)

    @app.timer(interval=1.0)
    async def evaluate_recorded():
        await evaluate_alerts()

    alerts_api(app, store)

    def details():
        until = alerting.evaluator.evaluated_until
        return 200, {"role": "alerts", "ready": True, "store": redact(settings.store_dsn), "metrics": metrics.snapshot(),
                     "evaluated_until": until.isoformat() if until else None}

    observability(app, "alerts", details, settings.worker.trim_memory_s)
    app.sentimon_closers = [producer.close, store.close]  # type: ignore[attr-defined]
    return app


def provenance_key(settings: Settings) -> bytes:
    """The key that signs alert changes on the alerts topic (:mod:`alerts.provenance`)."""
    return provenance.key_from(settings.alerts.provenance_key.get_secret_value(), settings.var_dir)


def evaluation_loop(alerting, producer: BatchProducer, alerts_topic: str, key: bytes) -> Callable[[], Awaitable[None]]:
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


def alerts_api(app: faust.App, store: Store) -> None:
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


def notification_side(app: faust.App, settings: Settings, store: Store, producer: BatchProducer, watermark, key: bytes):
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
                    letter = dead_letter("notify", refused, *position(event))
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
