"""Alerting as one service: the evaluator fed by the watermark, and the notification loop fed by the
alerts topic. The store worker runs both (chDB: it owns the store); ``sentimon alerts run`` runs them
against a ClickHouse server. Faust wiring lives in :mod:`streams.app`; this module has no Kafka code.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from alerts.config import AlertsConfig, load
from alerts.dispatch import Dispatcher, Notification
from alerts.evaluate import Evaluator, floor_minute
from alerts.notify import Outcome, deliver
from alerts.notify.receivers import build
from alerts.silence import Silence, load as load_silences
from alerts.watermark import Watermark
from schemas.alert import Alert
from streams import metrics

log = logging.getLogger("sentimon.alerts")
SILENCES_REFRESH_S = 5.0


class Alerting:
    def __init__(self, settings, store, config: AlertsConfig | None = None):
        a = settings.alerts
        self.config = config or load(a.rules_file or None)
        self.store = store
        self.evaluator = Evaluator(self.config, store, a.evaluator)
        self.watermark = Watermark(timedelta(seconds=a.lateness_s))
        self.dispatcher = Dispatcher(self.config)
        self.notifiers = build(self.config)
        self._silences: list[Silence] = []
        self._silences_at = 0.0

    # --- evaluation (event time) ------------------------------------------------------------------

    def observe(self, partition: Any, event_time: datetime) -> None:
        self.watermark.observe(partition, event_time)

    def due(self) -> bool:
        """Whether the watermark passed a window end not evaluated yet."""
        wm = self.watermark.value()
        if wm is None:
            return False
        metrics.watermark.set(wm.timestamp())
        until = self.evaluator.evaluated_until
        return until is None or floor_minute(wm) > until

    def evaluate(self) -> list[Alert]:
        """The changes up to the watermark (blocking: run it in a thread). Publish them, then :meth:`commit`."""
        return self.evaluator.advance(self.watermark.value())

    def commit(self, changes: list[Alert]) -> None:
        self.evaluator.commit(changes)
        for a in changes:
            metrics.alert_changes.labels(a.status).inc()

    # --- notification (wall clock) ----------------------------------------------------------------

    def add(self, alert: Alert, token: Any) -> list[Any]:
        """An alert change from the alerts topic; returns tokens to acknowledge right away."""
        return self.dispatcher.add(alert, time.time(), token)

    def _refresh_silences(self) -> None:
        if time.monotonic() - self._silences_at >= SILENCES_REFRESH_S:
            self._silences = load_silences(self.store)
            self._silences_at = time.monotonic()

    async def notify_once(self, ack: Callable[[Any], Awaitable[None]],
                          park: Callable[[Notification, Outcome, list[Any]], Awaitable[None]]) -> None:
        """Flush the groups that are due, deliver, park what could not be delivered, then acknowledge."""
        await asyncio.to_thread(self._refresh_silences)
        for flush in self.dispatcher.flush(time.time(), self._silences):
            n = flush.notification
            if n is not None:
                notifiers = self.notifiers.get(n.receiver, [])
                outcomes = await asyncio.gather(*(deliver(x, n, self.config.delivery) for x in notifiers))
                for outcome in outcomes:
                    if outcome.delivered:
                        metrics.notifications.labels("delivered").inc()
                    else:
                        metrics.notifications.labels("parked").inc()
                        await park(n, outcome, flush.tokens)
            else:
                metrics.notifications.labels("nothing_new").inc()
            for token in flush.tokens:
                await ack(token)

    async def notify_forever(self, ack, park, stopping: Callable[[], bool] = lambda: False, tick_s: float = 0.25) -> None:
        while not stopping():
            try:
                await self.notify_once(ack, park)
            except Exception:  # a bug must not stop notifications silently: log loudly and go on
                log.exception("notification loop failed; retrying")
            await asyncio.sleep(tick_s)

    async def close(self) -> None:
        for notifiers in self.notifiers.values():
            for n in notifiers:
                await n.close()
