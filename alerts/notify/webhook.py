"""Webhooks to trading desks, signed per the Standard Webhooks spec (the ``standardwebhooks`` package).

Headers: ``webhook-id`` (the notification id: deduplicate on it), ``webhook-timestamp`` (Unix seconds)
and ``webhook-signature`` (``v1,<base64 HMAC-SHA256 of "id.timestamp.body">``, one per secret during a
key rotation, space-separated). Secrets come from environment variables or files and are never logged.
"""

from __future__ import annotations

import hashlib
import json
import os
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
from standardwebhooks import Webhook

from alerts.config.model import Secret, WebhookConfig
from alerts.dispatch import Notification
from alerts.notify import DeliveryError, Notifier

USER_AGENT = "Sentimon-Webhooks/1"


class SecretMissing(ValueError):
    """A configured secret cannot be read; the message names where it was looked for (not its value)."""


def read_secret(secret: Secret) -> str:
    if secret.env is not None:
        value = os.environ.get(secret.env, "")
        if not value:
            raise SecretMissing(f"webhook secret: environment variable {secret.env} is not set")
        return value.strip()
    path = Path(secret.file or "")
    if not path.is_file():
        raise SecretMissing(f"webhook secret: file {path} does not exist")
    return path.read_text().strip()


def sign(secrets: list[str], msg_id: str, timestamp: datetime, body: str) -> str:
    """The ``webhook-signature`` header: a ``v1`` signature per secret, space-separated."""
    return " ".join(Webhook(s).sign(msg_id, timestamp, body) for s in secrets)


def signed_request(secrets: list[str], msg_id: str, body: str, now: datetime | None = None) -> dict[str, str]:
    """The headers of a signed webhook request."""
    now = now or datetime.now(timezone.utc)
    return {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": sign(secrets, msg_id, now, body),
    }


def shown_url(url: str) -> str:
    """A webhook URL as logs and dead letters show it: scheme, host and port only (paths and queries of
    webhook URLs carry tokens, user info carries passwords)."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    port = f":{parts.port}" if parts.port else ""
    rest = "/..." if (parts.path not in ("", "/") or parts.query) else ""
    return f"{parts.scheme}://{host}{port}{rest}"


def redact_url_in(text: str, url: str) -> str:
    """``text`` with ``url`` shown as :func:`shown_url` and its path, query and password replaced by '...'."""
    parts = urlsplit(url)
    text = text.replace(url, shown_url(url))
    for secret in (parts.path, parts.query, parts.password or ""):
        if len(secret) > 1:
            text = text.replace(secret, "...")
    return text


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        from email.utils import parsedate_to_datetime

        try:
            return max(0.0, (parsedate_to_datetime(value) - datetime.now(timezone.utc)).total_seconds())
        except (TypeError, ValueError):
            return None


class WebhookNotifier(Notifier):
    kind = "webhook"

    def __init__(self, config: WebhookConfig):
        self.config = config
        self._secrets = [read_secret(s) for s in config.secrets]  # fail at start-up, not at the first alert
        self._session: aiohttp.ClientSession | None = None

    @property
    def target(self) -> str:
        return shown_url(self.config.url)

    @property
    def key(self) -> str:
        # the whole URL tells endpoints on one host apart; hashed, as it may hold a token
        return "webhook:" + hashlib.sha256(self.config.url.encode()).hexdigest()[:24]

    def __repr__(self) -> str:
        return f"WebhookNotifier({self.target}, {len(self._secrets)} secret(s))"

    async def send(self, notification: Notification) -> None:
        body = json.dumps(notification.payload(self.config.dashboard_url), separators=(",", ":"))
        await self.post(notification.id, body)

    async def post(self, msg_id: str, body: str) -> int:
        """POST one signed body; returns the status, raises :class:`DeliveryError` unless 2xx."""
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.config.timeout.total_seconds()))
        try:
            # never redirected: a signed alert goes to the configured endpoint or nowhere
            async with self._session.post(self.config.url, data=body.encode(), allow_redirects=False,
                                          headers=signed_request(self._secrets, msg_id, body)) as r:
                status = r.status
                retry_after = _retry_after(r.headers.get("Retry-After"))
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            # aiohttp's messages name the URL, and a webhook URL often holds its token
            raise DeliveryError(f"{type(exc).__name__}: {redact_url_in(str(exc), self.config.url) or 'timed out'}") from None
        if 200 <= status < 300:
            return status
        if 300 <= status < 400:
            raise DeliveryError(f"HTTP {status}: redirects are not followed; configure the final URL", permanent=True)
        if status == 410:
            raise DeliveryError("410 Gone: the receiver retired this endpoint", disable=True)
        if status in (408, 425, 429) or status >= 500:
            raise DeliveryError(f"HTTP {status}", retry_after=retry_after)
        raise DeliveryError(f"HTTP {status}: the receiver rejected the request", permanent=True)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
