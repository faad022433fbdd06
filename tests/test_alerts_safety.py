"""What reaches a desk: only the evaluator's alert changes (provenance), each firing and resolved once per
receiver across a restart (the notification log in a real chDB store), every receiver on its own (one down
or slow delays no other), webhooks never redirected and their URLs never shown whole, and a receiver that
answers 401 to any bad signature. Real HTTP on loopback; the notifiers that record are fakes, named so."""

from __future__ import annotations

import asyncio
import base64
import time
from datetime import datetime, timedelta, timezone

import pytest
from aiohttp import web

from alerts import provenance
from alerts.config import parse
from alerts.notify import DeliveryError, Notifier
from alerts.notify.webhook import shown_url
from sentimon.local.receiver import WebhookReceiver
from alerts.sample import sample_notification
from conftest import LoopbackServer, migrated_store
from schemas import Alert
from sentimon.settings import Settings
from test_alerts_webhook import notifier

SECRET = "whsec_" + base64.b64encode(b"desk-secret-for-safety-tests-01").decode()
T0 = datetime(2026, 11, 2, 14, 0, tzinfo=timezone.utc)


# --- provenance ------------------------------------------------------------------------------------------


def test_only_a_change_signed_with_the_deployments_key_verifies(tmp_path):
    key = provenance.key_from("", tmp_path)
    assert key == provenance.key_from("", tmp_path) and len(key) == 64  # generated once, then read
    assert (tmp_path / "secrets" / provenance.KEY_FILE).stat().st_mode & 0o077 == 0  # its owner's only
    value = b'{"status":"firing"}'
    assert provenance.verify(value, provenance.sign(value, key), key) == ""
    assert "no sentimon-alert-mac" in provenance.verify(value, [], key)
    assert "forged" in provenance.verify(value, provenance.sign(value, b"another key"), key)
    assert "forged" in provenance.verify(value + b" ", provenance.sign(value, key), key)  # altered in transit
    assert "forged" in provenance.verify(value, provenance.sign(value, key) * 2, key)  # two signatures: refused
    assert provenance.key_from("configured", tmp_path) == b"configured"


# --- the notification log and independent receivers (Alerting on a real store) -----------------------------

RULES_TWO_RECEIVERS = """
route:
  receiver: desks
  group_wait: 0s
  group_interval: 1m
  repeat_interval: 4h
receivers:
  - name: desks
rules:
  - name: negative_burst
    scope: {kind: ticker}
    detector: {type: negative_share, window: 5m, threshold: 0.5}
"""


class RecordingNotifier(Notifier):
    """A fake endpoint: records what it is sent; ``down`` fails every attempt, ``delay_s`` answers slowly."""

    kind = "fake"

    def __init__(self, name: str, down: bool = False, delay_s: float = 0.0):
        self.name, self.down, self.delay_s, self.sent = name, down, delay_s, []

    @property
    def target(self) -> str:
        return self.name

    async def send(self, notification) -> None:
        await asyncio.sleep(self.delay_s)
        if self.down:
            raise DeliveryError("connection refused")
        self.sent.append((time.monotonic(), [(a.status, a.labels["entity"]) for a in notification.alerts]))


def change(status: str, minute: int, entity: str = "TSLA") -> Alert:
    labels = {"alertname": "negative_burst", "entity": entity, "entity_kind": "ticker", "severity": "critical"}
    return Alert(fingerprint=f"fp-{entity}", status=status, labels=labels, starts_at=T0 + timedelta(minutes=1),
                 ends_at=T0 + timedelta(minutes=minute) if status == "resolved" else None,
                 at=T0 + timedelta(minutes=minute))


@pytest.fixture
def store(tmp_path):
    s = migrated_store(tmp_path / "store", "sentimon_safety")
    yield s
    s.close()


def alerting_on(store, *notifiers):
    from alerts.service import Alerting

    a = Alerting(Settings(), store, parse(RULES_TWO_RECEIVERS, "rules.yaml"))
    a.notifiers = {"desks": list(notifiers)}
    return a


async def tell(alerting, alert: Alert, acked: list, parked: list | None = None) -> None:
    async def ack(token):
        acked.append(token)

    async def park(n, outcome, tokens):
        if parked is None:
            raise AssertionError(f"parked: {outcome}")
        parked.append(outcome.notifier)

    await alerting.add(alert, alert.status, ack, park)
    alerting._progress = (alert.at, time.monotonic())  # the evaluator's progress drives the dispatcher's clock
    await alerting.notify_once(ack, park)
    await alerting.settle()


def test_resolved_is_told_once_after_a_restart_between_firing_and_resolved(store):
    desk = RecordingNotifier("desk")
    before, acked = alerting_on(store, desk), []
    asyncio.run(tell(before, change("firing", 2), acked))
    assert [s for _, s in desk.sent] == [[("firing", "TSLA")]] and acked == ["firing"]
    # a restart: a new process with empty groups, the same store
    after = alerting_on(store, desk)
    asyncio.run(tell(after, change("resolved", 20), acked))
    assert [s for _, s in desk.sent] == [[("firing", "TSLA")], [("resolved", "TSLA")]]
    # a crash before the firing's offset was committed reads it again: it is not told twice
    again = alerting_on(store, desk)
    asyncio.run(tell(again, change("firing", 2), acked))
    asyncio.run(tell(again, change("resolved", 20), acked))
    assert [s for _, s in desk.sent] == [[("firing", "TSLA")], [("resolved", "TSLA")]], desk.sent


def test_without_the_log_a_restart_mutes_the_resolved(store):
    """The property above is the log's: with an empty one the resolved would be lost (the test can fail)."""
    desk = RecordingNotifier("desk")
    asyncio.run(tell(alerting_on(store, desk), change("firing", 2), []))
    store.query("TRUNCATE TABLE {db}.notification_log")
    asyncio.run(tell(alerting_on(store, desk), change("resolved", 20), []))
    assert [s for _, s in desk.sent] == [[("firing", "TSLA")]]


def test_one_receiver_down_and_one_slow_delay_no_other(store):
    fast, slow, down = RecordingNotifier("fast"), RecordingNotifier("slow", delay_s=1.5), RecordingNotifier("down", down=True)
    alerting = alerting_on(store, down, slow, fast)
    acked, parked = [], []

    async def run():
        started = time.monotonic()
        await alerting.add(change("firing", 2), "TSLA", _append(acked), _park(parked))
        alerting._progress = (T0 + timedelta(minutes=2), time.monotonic())
        await alerting.notify_once(_append(acked), _park(parked))
        await alerting.add(change("firing", 3, "AAPL"), "AAPL", _append(acked), _park(parked))  # another group
        alerting._progress = (T0 + timedelta(minutes=3), time.monotonic())
        await alerting.notify_once(_append(acked), _park(parked))
        await asyncio.sleep(0.3)
        # both told at once, while the others still try
        assert [s for _, s in fast.sent] == [[("firing", "TSLA")], [("firing", "AAPL")]]
        assert all(t - started < 0.3 for t, _ in fast.sent), [t - started for t, _ in fast.sent]
        assert not slow.sent and not acked  # acknowledged only once every notifier is done
        await alerting.settle()

    alerting.config = alerting.config.model_copy(update={"delivery": alerting.config.delivery.model_copy(
        update={"give_up_after": timedelta(seconds=1), "initial_backoff": timedelta(milliseconds=50)})})
    asyncio.run(run())
    assert len(slow.sent) == 2 and parked == ["fake down", "fake down"] and acked == ["TSLA", "AAPL"]


def _append(into):
    async def ack(token):
        into.append(token)
    return ack


def _park(into):
    async def park(n, outcome, tokens):
        into.append(outcome.notifier)
    return park


# --- webhooks: no redirects, URLs never shown whole, 401 to any bad signature -------------------------------


def test_a_redirect_is_not_followed_and_the_url_is_never_shown_whole(monkeypatch, caplog):
    monkeypatch.setenv("T_SECRET", SECRET)
    followed = []

    async def elsewhere(request):
        followed.append(await request.read())
        return web.json_response({"ok": True})

    async def redirect(request):
        raise web.HTTPTemporaryRedirect("/elsewhere")

    server = LoopbackServer(routes=[("POST", "/hook/T0KEN", redirect), ("POST", "/elsewhere", elsewhere)])
    try:
        n = notifier(f"{server.base}/hook/T0KEN?token=s3cret", "T_SECRET")
        with pytest.raises(DeliveryError) as err:
            asyncio.run(_once(n))
        assert "307" in str(err.value) and err.value.permanent and followed == []
        assert "T0KEN" not in n.target and "s3cret" not in n.target and "T0KEN" not in repr(n)
        down = notifier("http://127.0.0.1:9/hook/T0KEN?token=s3cret", "T_SECRET", timeout_s=2)
        with pytest.raises(DeliveryError) as err:
            asyncio.run(_once(down))
        assert "T0KEN" not in str(err.value) and "s3cret" not in str(err.value), str(err.value)
    finally:
        server.close()
    assert shown_url("https://u:pw@h.example:8443/services/T0/B0/x?k=v") == "https://h.example:8443/..."


async def _once(n):
    try:
        await n.send(sample_notification())
    finally:
        await n.close()


@pytest.mark.parametrize("headers", [
    {},
    {"webhook-id": "m", "webhook-timestamp": "not a number", "webhook-signature": "v1,abc"},
    {"webhook-id": "m", "webhook-timestamp": "9" * 40, "webhook-signature": "v1,@@@"},
    {"webhook-id": "m", "webhook-timestamp": str(int(time.time())), "webhook-signature": "v1"},
    {"webhook-id": "m", "webhook-timestamp": str(int(time.time())), "webhook-signature": "v1,\u00e9\u00e9"},
])
def test_the_receiver_answers_401_to_any_bad_signature(headers):
    import urllib.error
    import urllib.request

    with WebhookReceiver(SECRET) as receiver:
        encoded = {k: v.encode("utf-8").decode("latin-1") for k, v in headers.items()}
        request = urllib.request.Request(receiver.url, data=b'{"alerts": []}', headers=encoded, method="POST")
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(request, timeout=5)
        assert err.value.code == 401 and receiver.inbox.rejected == 1 and not receiver.inbox.unique


class BrokenNotifier(RecordingNotifier):
    """A fake endpoint whose code fails unexpectedly (not a DeliveryError)."""

    async def send(self, notification) -> None:
        raise KeyError("a bug in a notifier")


def test_a_notifier_that_breaks_parks_the_notification_instead_of_losing_or_holding_it(store):
    fine, broken = RecordingNotifier("fine"), BrokenNotifier("broken")
    acked, parked = [], []
    asyncio.run(tell(alerting_on(store, broken, fine), change("firing", 2), acked, parked))
    assert parked == ["broken"] and acked == ["firing"] and [s for _, s in fine.sent] == [[("firing", "TSLA")]]
