"""Alerting as one service: the evaluator fed by the watermark, and the notification loop fed by the
alerts topic. The store worker runs both (``alerts.run_in = "store"``, the default; with chDB it owns the
store); ``sentimon alerts run`` runs them as a service of their own (``"service"``: against a ClickHouse
server, reading the watermark the sink records in the store). Faust wiring lives in :mod:`sentimon.apps`; this module has no Kafka code.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from alerts.config import AlertsConfig, load
from alerts.dispatch import Dispatcher, Flush, Notification
from alerts.evaluate import Evaluator, floor_minute
from alerts.nflog import NotificationLog
from alerts.notify import Notifier, Outcome, deliver
from alerts.notify.receivers import build
from alerts.silence import Silence, load as load_silences
from alerts.watermark import Watermark
from schemas.alert import Alert
from schemas.base import now_utc
from streams import metrics

log = logging.getLogger("sentimon.alerts")
Ack = Callable[[Any], Awaitable[None]]
Park = Callable[[Notification, Outcome, list[Any]], Awaitable[None]]
SILENCES_REFRESH_S = 5.0


def sink_watermark(settings) -> Watermark:
    """The watermark a sink keeps over the partitions it reads, as the alerts settings configure it."""
    return Watermark(timedelta(seconds=settings.alerts.lateness_s), idle_s=settings.alerts.idle_partition_s)


class Alerting:
    def __init__(self, settings, store, config: AlertsConfig | None = None, watermark: Any = None):
        """``watermark``: anything with ``value() -> datetime | None``; the sink's own :class:`Watermark`
        (evaluation inside the store worker) or a :class:`StoredWatermark` (``sentimon alerts run``)."""
        a = settings.alerts
        self.config = config or load(a.rules_file or None)
        self.store = store
        self.evaluator = Evaluator(self.config, store, a.evaluator)
        self.watermark = watermark if watermark is not None else sink_watermark(settings)
        self.nflog = NotificationLog(store)
        self.dispatcher = Dispatcher(self.config, self.nflog.load())
        self.notifiers = build(self.config)
        self._queues: dict[int, asyncio.Queue] = {}  # per notifier (by id): each delivers on its own
        self._workers: list[asyncio.Task] = []
        self._silences: list[Silence] = []
        self._silences_at = 0.0
        self._clock = 0.0
        self._lock = asyncio.Lock()
        self._progress = (self.evaluator.evaluated_until, time.monotonic())

    # --- evaluation (event time) ------------------------------------------------------------------

    def due(self) -> bool:
        """Whether the watermark passed a window end not evaluated yet."""
        wm = self.watermark.value()
        if wm is None:
            return False
        metrics.watermark.set(wm.timestamp())
        until = self.evaluator.evaluated_until
        return self.evaluator.stale or until is None or floor_minute(wm) > until

    def evaluate(self) -> list[Alert]:
        """The changes up to the watermark (blocking: run it in a thread). Publish them, then :meth:`commit`."""
        return self.evaluator.advance(self.watermark.value())

    def commit(self, changes: list[Alert]) -> None:
        self.evaluator.commit(changes)
        self._progress = (self.evaluator.evaluated_until, time.monotonic())
        for a in changes:
            metrics.alert_changes.labels(a.status).inc()

    # --- notification -----------------------------------------------------------------------------

    def clock(self) -> float:
        """The dispatcher's time (Unix seconds): event time as far as it has been evaluated or seen in an
        alert change, moving on with the wall clock while evaluation waits for data. A replay or a
        catch-up is thus grouped and timed as it was live (group_wait, group_interval, repeat_interval in
        event time), and a quiet stream still flushes its groups. Never goes back."""
        until, at = self._progress
        if until is not None:
            self._clock = max(self._clock, until.timestamp() + time.monotonic() - at)
        return self._clock

    async def add(self, alert: Alert, token: Any, ack: Ack, park: Park) -> None:
        """An alert change from the alerts topic. Groups that were due before it (in event time) are
        flushed first, so a burst of changes read at once (a catch-up) is notified as it happened."""
        async with self._lock:
            at = alert.at.timestamp()
            await self._flush(at, ack, park)
            for t in self.dispatcher.add(alert, at, token):
                await ack(t)

    def _refresh_silences(self) -> None:
        if time.monotonic() - self._silences_at >= SILENCES_REFRESH_S:
            self._silences = load_silences(self.store)
            self._silences_at = time.monotonic()

    async def notify_once(self, ack: Ack, park: Park) -> None:
        """Flush the groups that are due now, deliver, park what could not be delivered, acknowledge."""
        async with self._lock:
            await self._flush(self.clock(), ack, park)

    async def _flush(self, now: float, ack: Ack, park: Park) -> None:
        """Flush the due groups and hand each notification to the queues of its receiver's notifiers: every
        notifier delivers on its own (one slow or down endpoint delays no other); the changes it covers are
        acknowledged once every notifier has delivered or parked it (:meth:`_done`)."""
        due = self.dispatcher.next_due()
        if due is None or due > now:
            return
        await asyncio.to_thread(self._refresh_silences)
        for flush in self.dispatcher.flush(now, self._silences, wall=now_utc):
            n = flush.notification
            if n is None:
                metrics.notifications.labels("nothing_new").inc()
                for token in flush.tokens:
                    await ack(token)
                continue
            notifiers = self.notifiers.get(n.receiver, [])
            pending = _Pending(flush, len(notifiers), ack, park)
            if not notifiers:
                await self._done(pending)
            for notifier in notifiers:
                self._queue(notifier).put_nowait(pending)

    def _queue(self, notifier: Notifier) -> asyncio.Queue:
        queue = self._queues.get(id(notifier))
        if queue is None:
            queue = self._queues[id(notifier)] = asyncio.Queue()
            self._workers.append(asyncio.ensure_future(self._deliver_from(notifier, queue)))
        return queue

    async def _deliver_from(self, notifier: Notifier, queue: asyncio.Queue) -> None:
        """One notifier's deliveries, in order. Whatever happens, each notification ends delivered or parked
        in the dead letters (an unexpected error parks it with the error as its reason)."""
        while True:
            pending: _Pending = await queue.get()
            try:
                n = pending.flush.notification
                try:
                    outcome = await self._deliver(notifier, n)
                except Exception as exc:  # a bug must neither stop this notifier nor lose the notification
                    log.exception("delivery to %s failed", notifier.target)
                    outcome = Outcome(notifier.target, False, 0, f"delivery failed: {type(exc).__name__}: {exc}")
                if outcome.delivered:
                    metrics.notifications.labels("delivered").inc()
                else:
                    metrics.notifications.labels("parked").inc()
                    await _retrying(lambda: pending.park(n, outcome, pending.flush.tokens), f"parking {n.id}")
                pending.remaining -= 1
                if pending.remaining == 0:
                    await self._done(pending)
            finally:
                queue.task_done()

    async def _deliver(self, notifier: Notifier, n: Notification) -> Outcome:
        """Deliver unless the log says this notifier has it (a change read again after a crash)."""
        try:
            if await asyncio.to_thread(self.nflog.delivered, notifier.key, n.id):
                return Outcome(notifier.target, True, 0)
        except Exception as exc:  # the store failing: send (receivers deduplicate on the id)
            log.warning("notification log unreadable, sending %s anyway: %s", n.id, exc)
        outcome = await deliver(notifier, n, self.config.delivery)
        if outcome.delivered:
            try:
                await asyncio.to_thread(self.nflog.mark_delivered, notifier.key, n.id)
            except Exception as exc:
                log.warning("could not record the delivery of %s: %s", n.id, exc)
        return outcome

    async def _done(self, pending: "_Pending") -> None:
        """Every notifier has the notification: record what the group told, then acknowledge its changes (a
        crash before the record reads them again, and the delivery log keeps them from being sent twice)."""
        flush = pending.flush
        if flush.told is not None:  # until the store takes it, the changes stay unacknowledged
            await _retrying(lambda: asyncio.to_thread(self.nflog.record, flush.group_key, flush.told),
                            f"recording notification {flush.notification.id}")
        for token in flush.tokens:
            await pending.ack(token)

    async def settle(self) -> None:
        """Wait until every notification handed to a notifier so far is delivered or parked."""
        for queue in list(self._queues.values()):
            await queue.join()

    async def notify_forever(self, ack: Ack, park: Park, stopping: Callable[[], bool] = lambda: False,
                             tick_s: float = 0.25) -> None:
        while not stopping():
            try:
                await self.notify_once(ack, park)
            except Exception:  # a bug must not stop notifications silently: log loudly and go on
                log.exception("notification loop failed; retrying")
            await asyncio.sleep(tick_s)

    async def close(self) -> None:
        for worker in self._workers:
            worker.cancel()
        for notifiers in self.notifiers.values():
            for n in notifiers:
                await n.close()


@dataclass
class _Pending:
    """A notification handed to its receiver's notifiers, with how many have yet to deliver or park it."""

    flush: Flush
    remaining: int
    ack: Ack
    park: Park


async def _retrying(attempt: Callable[[], Awaitable[Any]], what: str, max_backoff_s: float = 30.0) -> None:
    """``attempt()`` until it succeeds (the store or Kafka failing for a while), with capped backoff."""
    delay = 0.5
    while True:
        try:
            await attempt()
            return
        except Exception as exc:
            log.warning("%s failed, retry in %.1f s: %s", what, delay, exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, max_backoff_s)
