"""Signed webhooks over real HTTP on loopback: signatures, key rotation, status handling, test-webhook."""

from __future__ import annotations

import asyncio
import time
import base64
import os
from datetime import timedelta

import pytest
from aiohttp import web
from standardwebhooks import Webhook

from alerts.config.model import Delivery, Secret, WebhookConfig
from alerts.notify import DeliveryError, deliver
from alerts.notify.webhook import SecretMissing, WebhookNotifier
from sentimon.local.receiver import WebhookReceiver
from alerts.sample import sample_notification
from conftest import LoopbackServer

OLD = "whsec_" + base64.b64encode(b"old-secret-0123456789abcdef").decode()
NEW = "whsec_" + base64.b64encode(b"new-secret-0123456789abcdef").decode()


def notifier(url: str, *envs: str, timeout_s: float = 5.0) -> WebhookNotifier:
    return WebhookNotifier(WebhookConfig(url=url, secrets=[Secret(env=e) for e in envs], timeout=timedelta(seconds=timeout_s),
                                         dashboard_url="http://grafana.local/d/entity"))


async def _send(n: WebhookNotifier, notification=None):
    try:
        await n.send(notification or sample_notification())
    finally:
        await n.close()


@pytest.fixture
def secrets(monkeypatch):
    monkeypatch.setenv("T_OLD", OLD)
    monkeypatch.setenv("T_NEW", NEW)


def test_signed_delivery_verified_and_deduplicated_by_the_receiver(secrets):
    with WebhookReceiver(OLD) as receiver:
        notification = sample_notification()
        for _ in range(2):  # a redelivery: same webhook-id
            asyncio.run(_send(notifier(receiver.url, "T_OLD"), notification))
        assert list(receiver.inbox.unique) == [notification.id] and receiver.inbox.duplicates == 1
        payload = receiver.inbox.unique[notification.id].payload
        assert payload["version"] == "1" and payload["status"] == "firing"
        alert = payload["alerts"][0]
        assert alert["labels"]["entity"] == "TSLA" and alert["fingerprint"] and alert["startsAt"].endswith("Z")
        assert alert["dashboardURL"].startswith("http://grafana.local/d/entity?var-entity=TSLA")


def test_key_rotation_both_old_and_new_receivers_verify(secrets):
    """During a rotation the sender signs with both keys: receivers on either key accept."""
    for key in (OLD, NEW):
        with WebhookReceiver(key) as receiver:
            asyncio.run(_send(notifier(receiver.url, "T_NEW", "T_OLD")))
            assert len(receiver.inbox.unique) == 1 and receiver.inbox.rejected == 0


def test_a_wrong_key_is_rejected_with_401(secrets):
    with WebhookReceiver(NEW) as receiver:
        with pytest.raises(DeliveryError) as err:
            asyncio.run(_send(notifier(receiver.url, "T_OLD")))
        assert "401" in str(err.value) and err.value.permanent
        assert receiver.inbox.rejected == 1 and not receiver.inbox.unique


def test_signature_is_the_standard_one(secrets):
    """What a desk does with the standardwebhooks package (the example in docs/alerts.md) accepts our headers."""
    from alerts.notify.webhook import signed_request

    body = '{"a":1}'
    headers = signed_request([NEW, OLD], "msg_x", body)
    assert Webhook(OLD).verify(body, headers) == {"a": 1} and Webhook(NEW).verify(body, headers) == {"a": 1}
    assert headers["webhook-signature"].count("v1,") == 2


def test_missing_secret_fails_at_start_and_is_never_shown(monkeypatch):
    monkeypatch.delenv("T_NONE", raising=False)
    with pytest.raises(SecretMissing, match="T_NONE is not set"):
        notifier("http://127.0.0.1:1/hook", "T_NONE")
    monkeypatch.setenv("T_SHOWN", NEW)
    n = notifier("http://127.0.0.1:1/hook", "T_SHOWN")
    assert NEW not in repr(n) and NEW[6:] not in repr(n)


class StatusServer(LoopbackServer):
    """Answers a scripted sequence of statuses (and a slow answer)."""

    def __init__(self, script):
        self.script, self.hits = list(script), 0
        super().__init__("/hook", self._handle)
        self.url = self.base + "/hook"

    async def _handle(self, request):
        self.hits += 1
        status, headers, delay = self.script.pop(0) if self.script else (200, {}, 0)
        if delay:
            await asyncio.sleep(delay)
        return web.Response(status=status, headers=headers)


def _deliver(url, policy=Delivery(initial_backoff=timedelta(seconds=0.05)), timeout_s=5.0):
    waits = []

    async def sleep(s):
        waits.append(s)
        await asyncio.sleep(min(s, 0.05))

    async def go():
        n = notifier(url, "T_NEW", timeout_s=timeout_s)
        try:
            return n, await deliver(n, sample_notification(), policy, sleep=sleep, jitter=lambda: 1.0)
        finally:
            await n.close()

    n, outcome = asyncio.run(go())
    return n, outcome, waits


def test_500s_then_429_with_retry_after_then_success(secrets):
    server = StatusServer([(500, {}, 0), (503, {}, 0), (429, {"Retry-After": "3"}, 0)])
    try:
        _, outcome, waits = _deliver(server.url)
        assert outcome.delivered and outcome.attempts == 4 and server.hits == 4
        assert waits[:2] == [0.05, 0.1] and waits[2] == 3.0  # Retry-After honoured
    finally:
        server.close()


def test_timeout_is_retried(secrets):
    server = StatusServer([(200, {}, 2.0)])
    try:
        _, outcome, waits = _deliver(server.url, timeout_s=0.3)
        assert outcome.delivered and outcome.attempts == 2 and len(waits) == 1
    finally:
        server.close()


def test_a_slow_receiver_within_the_timeout_is_waited_for_not_retried(secrets):
    server = StatusServer([(200, {}, 1.0)])
    try:
        started = time.monotonic()
        _, outcome, waits = _deliver(server.url, timeout_s=5.0)
        assert outcome.delivered and outcome.attempts == 1 and waits == [] and server.hits == 1
        assert time.monotonic() - started >= 1.0
    finally:
        server.close()


def test_410_disables_the_endpoint_and_400_is_not_retried(secrets):
    server = StatusServer([(410, {}, 0), (400, {}, 0)])
    try:
        n, outcome, _ = _deliver(server.url)
        assert not outcome.delivered and outcome.attempts == 1 and "410" in n.disabled
        _, outcome, waits = _deliver(server.url)
        assert not outcome.delivered and outcome.attempts == 1 and waits == [] and "400" in outcome.reason
    finally:
        server.close()


def test_cli_test_webhook(secrets):
    import subprocess
    import sys

    with WebhookReceiver(NEW) as receiver:
        run = subprocess.run([sys.executable, "-m", "sentimon.cli", "alerts", "test-webhook", receiver.url,
                              "--secret-env", "T_NEW"], capture_output=True, text=True, timeout=60,
                             env={**os.environ})
        assert run.returncode == 0, run.stderr
        assert len(receiver.inbox.unique) == 1
        (received,) = receiver.inbox.unique.values()
        assert received.payload["alerts"][0]["labels"]["test"] == "true"
    bad = subprocess.run([sys.executable, "-m", "sentimon.cli", "alerts", "test-webhook", receiver.url, "--secret-env",
                          "T_UNSET_X"], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "T_UNSET_X is not set" in bad.stderr


class FakeGrafana(LoopbackServer):
    """A fake Grafana for the annotations notifier (no Grafana can run here): records POST /api/annotations."""

    def __init__(self, status: int = 200):
        self.status, self.posts, self.auth = status, [], []
        super().__init__("/api/annotations", self._handle)
        self.url = self.base

    async def _handle(self, request):
        self.posts.append(await request.json())
        self.auth.append(request.headers.get("Authorization", ""))
        return web.json_response({"id": len(self.posts), "message": "Annotation added"}, status=self.status)


def test_grafana_annotations_carry_the_alert_and_errors_are_classified(monkeypatch):
    from alerts.config.model import GrafanaConfig
    from alerts.notify.grafana import GrafanaNotifier

    monkeypatch.setenv("T_GRAFANA", "glsa_test_token")
    grafana = FakeGrafana()
    try:
        n = GrafanaNotifier(GrafanaConfig(url=grafana.url, token_env="T_GRAFANA"))
        notification = sample_notification()
        asyncio.run(n.send(notification))
        (post,) = grafana.posts
        alert = notification.alerts[0]
        assert post["time"] == int(alert.starts_at.timestamp() * 1000) and post["timeEnd"] >= post["time"]
        assert "sentimon" in post["tags"] and "firing" in post["tags"] and "entity:TSLA" in post["tags"]
        assert post["text"].startswith("[firing] TSLA") and grafana.auth == ["Bearer glsa_test_token"]
        grafana.status = 500
        with pytest.raises(DeliveryError) as err:
            asyncio.run(n.send(notification))
        assert not err.value.permanent
    finally:
        grafana.close()
    monkeypatch.delenv("T_GRAFANA")
    with pytest.raises(ValueError, match="T_GRAFANA"):
        GrafanaNotifier(GrafanaConfig(url="http://127.0.0.1:1", token_env="T_GRAFANA"))
