"""Notifications as log lines (the demo's terminal notifier)."""

from __future__ import annotations

import logging

from alerts.dispatch import Notification
from alerts.notify import Notifier

log = logging.getLogger("sentimon.alerts")


class LogNotifier(Notifier):
    kind = "log"

    @property
    def target(self) -> str:
        return "log"

    async def send(self, notification: Notification) -> None:
        for a in notification.alerts:
            log.warning("ALERT %s %s %s", a.status.upper(), a.name,
                        a.annotations.get("summary") or ", ".join(f"{k}={v}" for k, v in sorted(a.labels.items())),
                        extra={"alert": a.status, "fingerprint": a.fingerprint, "notification": notification.id})
