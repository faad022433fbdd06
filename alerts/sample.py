"""A sample notification (``sentimon alerts test-webhook``, the README's verification example)."""

from __future__ import annotations

from datetime import timedelta

from alerts.dispatch import Notification
from alerts.fingerprint import fingerprint
from schemas.alert import Alert
from schemas.base import now_utc


def sample_notification() -> Notification:
    now = now_utc()
    labels = {"alertname": "negative_burst", "entity": "TSLA", "entity_kind": "ticker", "severity": "critical",
              "desk": "equities", "test": "true"}
    alert = Alert(fingerprint=fingerprint(labels), status="firing", labels=labels, starts_at=now - timedelta(minutes=2),
                  at=now, value=-4.2, annotations={"summary": "TSLA: a test notification from Sentimon"})
    return Notification(f"msg_test_{int(now.timestamp())}", "desk", "test", {"desk": "equities"}, [alert])
