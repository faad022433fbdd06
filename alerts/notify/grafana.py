"""Alerts as Grafana annotations (grafana-client): a region from start to end, tagged with the labels."""

from __future__ import annotations

import asyncio
import os

from alerts.config.model import GrafanaConfig
from alerts.dispatch import Notification
from alerts.notify import DeliveryError, Notifier
from alerts.notify.webhook import shown_url


class GrafanaNotifier(Notifier):
    kind = "grafana"

    def __init__(self, config: GrafanaConfig):
        from grafana_client import GrafanaApi

        token = os.environ.get(config.token_env, "")
        if not token:
            raise ValueError(f"grafana receiver: environment variable {config.token_env} (API token) is not set")
        self.config = config
        self.api = GrafanaApi.from_url(config.url, credential=token, timeout=10.0)

    @property
    def target(self) -> str:
        return shown_url(self.config.url)

    def _annotate(self, notification: Notification) -> None:
        from grafana_client.client import GrafanaClientError, GrafanaServerError

        for a in notification.alerts:
            tags = [*self.config.tags, a.status, *(f"{k}:{v}" for k, v in sorted(a.labels.items()))]
            text = a.annotations.get("summary") or a.name
            end = a.ends_at or a.at
            try:
                self.api.annotations.add_annotation(time_from=int(a.starts_at.timestamp() * 1000),
                                                    time_to=int(end.timestamp() * 1000), tags=tags,
                                                    text=f"[{a.status}] {text}")
            except GrafanaServerError as exc:
                raise DeliveryError(f"grafana: {exc}") from None
            except GrafanaClientError as exc:
                raise DeliveryError(f"grafana: {exc}", permanent=getattr(exc, "status_code", 400) not in (408, 429)) from None
            except OSError as exc:
                raise DeliveryError(f"grafana unreachable: {exc}") from None

    async def send(self, notification: Notification) -> None:
        await asyncio.to_thread(self._annotate, notification)
