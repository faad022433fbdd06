"""The notifiers of each configured receiver."""

from __future__ import annotations

import logging

from alerts.config.model import AlertsConfig
from alerts.notify import Notifier

log = logging.getLogger("sentimon.alerts")


def build(config: AlertsConfig) -> dict[str, list[Notifier]]:
    """Receiver name -> its notifiers. Fails fast (ValueError) on a missing secret or token."""
    from alerts.notify.grafana import GrafanaNotifier
    from alerts.notify.log import LogNotifier
    from alerts.notify.webhook import WebhookNotifier

    out: dict[str, list[Notifier]] = {}
    for r in config.receivers:
        notifiers: list[Notifier] = [LogNotifier()] if r.log else []
        for w in r.webhooks:
            if not w.url:
                log.info("receiver %s: a webhook without a URL is skipped", r.name)
                continue
            notifiers.append(WebhookNotifier(w))
        notifiers += [GrafanaNotifier(g) for g in r.grafana]
        out[r.name] = notifiers
    return out
