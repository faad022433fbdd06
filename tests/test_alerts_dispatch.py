"""Grouping, repeat interval, silences, inhibition and the retry policy (pure, with a clock)."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import pytest

from alerts.config import parse
from alerts.config.model import Delivery
from alerts.dispatch import Dispatcher, Notification, routes
from alerts.fingerprint import fingerprint
from alerts.matcher import Matcher
from alerts.notify import DeliveryError, Notifier, deliver
from alerts.silence import Silence
from schemas.alert import Alert

T = datetime(2026, 11, 2, 14, 0, tzinfo=timezone.utc)
CONFIG = parse("""
route:
  receiver: log
  group_by: [alertname, entity]
  group_wait: 10s
  group_interval: 60s
  repeat_interval: 600s
  routes:
    - matchers: ['severity="critical"']
      receiver: desk
      group_by: [desk]
      continue: true
    - receiver: log
receivers:
  - {name: log, log: true}
  - {name: desk}
inhibit_rules:
  - source_matchers: ['alertname="market_shift"']
    target_matchers: ['entity_kind="ticker"']
""")


def alert(name="negative_burst", entity="TSLA", status="firing", severity="critical", kind="ticker", minute=0) -> Alert:
    labels = {"alertname": name, "entity": entity, "entity_kind": kind, "severity": severity, "desk": "equities"}
    at = T + timedelta(minutes=minute)
    return Alert(fingerprint=fingerprint(labels), status=status, labels=labels, starts_at=T, at=at,
                 ends_at=at if status == "resolved" else None)


def flush(d: Dispatcher, now: float, **kw):
    return [f for f in d.flush(now, **kw)]


def sent(flushes, receiver=None):
    return [f.notification for f in flushes if f.notification and (receiver is None or f.notification.receiver == receiver)]


def test_routing_continue_and_inherited_settings():
    critical = routes(CONFIG.route, alert().labels)
    assert [(r.receiver, r.group_by, r.group_wait) for r in critical] == [("desk", ("desk",), 10.0),
                                                                          ("log", ("alertname", "entity"), 10.0)]
    assert [r.receiver for r in routes(CONFIG.route, alert(severity="warning").labels)] == ["log"]


def test_group_wait_gathers_then_one_notification_and_resolved_later():
    d = Dispatcher(CONFIG)
    assert d.add(alert("negative_burst", "TSLA"), 0.0, "e1") == []
    assert d.add(alert("negative_burst", "AAPL"), 3.0, "e2") == []
    assert flush(d, 5.0) == []  # group_wait not over
    out = flush(d, 10.0)
    desk = sent(out, "desk")
    assert len(desk) == 1 and {a.labels["entity"] for a in desk[0].alerts} == {"TSLA", "AAPL"}  # grouped by desk
    assert [a.labels["entity"] for n in sent(out, "log") for a in n.alerts] == ["TSLA"]  # its own group there
    # a change is acknowledged once every group it went to has flushed: e2's log group waits until 13 s
    assert [t for f in out for t in f.tokens] == ["e1"]
    later = flush(d, 13.0)
    assert [a.labels["entity"] for n in sent(later, "log") for a in n.alerts] == ["AAPL"]
    assert [t for f in later for t in f.tokens] == ["e2"]
    # nothing new: no notification at the next interval, nor before repeat_interval
    assert sent(flush(d, 70.0)) == []
    # one resolves: a notification with the resolved alert (at the group's interval, not before)
    d.add(alert("negative_burst", "TSLA", "resolved", minute=5), 80.0, "e3")
    assert sent(flush(d, 100.0)) == []
    desk = sent(flush(d, 130.0), "desk")
    assert len(desk) == 1 and [a.status for a in desk[0].alerts] == ["firing", "resolved"]
    assert desk[0].payload()["status"] == "firing"  # AAPL still fires


def test_duplicate_changes_do_not_notify_twice_and_ids_are_stable():
    a, b = Dispatcher(CONFIG), Dispatcher(CONFIG)
    for d in (a, b):
        d.add(alert(), 0.0, "e1")
    first, again = sent(flush(a, 10.0), "desk"), sent(flush(b, 10.0), "desk")
    assert first[0].id == again[0].id  # a redelivery after a crash has the same webhook-id
    a.add(alert(), 20.0, "e1-again")  # the same change redelivered
    out = flush(a, 70.0)
    assert sent(out) == [] and "e1-again" in [t for f in out for t in f.tokens]


def test_repeat_interval():
    d = Dispatcher(CONFIG)
    d.add(alert(), 0.0)
    ids = [sent(flush(d, 10.0), "desk")[0].id]
    for now in (70.0, 130.0, 550.0):
        assert sent(flush(d, now), "desk") == []
    repeat = sent(flush(d, 610.0), "desk")
    assert len(repeat) == 1 and repeat[0].repeat == 1 and repeat[0].id not in ids


def test_pending_and_inactive_are_recorded_not_notified():
    d = Dispatcher(CONFIG)
    assert d.add(alert(status="pending"), 0.0, "p") == ["p"]
    assert d.add(alert(status="inactive"), 0.0, "i") == ["i"]
    assert d.groups == {}


def test_resolved_without_a_notified_firing_is_not_sent():
    d = Dispatcher(CONFIG)
    d.add(alert(), 0.0)
    d.add(alert(status="resolved", minute=1), 1.0)  # fired and resolved within group_wait
    assert sent(flush(d, 10.0)) == []


def test_silence_mutes_until_it_expires():
    d = Dispatcher(CONFIG)
    d.add(alert(entity="TSLA"), 0.0)
    silence = Silence(matchers=['entity="TSLA"', 'alertname=~"negative_.*"'], starts_at=T, ends_at=T + timedelta(seconds=100),
                      created_by="ana", comment="known story")
    clock = lambda s: (lambda: T + timedelta(seconds=s))  # noqa: E731
    out = flush(d, 10.0, silences=[silence], wall=clock(10))
    assert sent(out) == [] and out[0].muted
    assert sent(flush(d, 70.0, silences=[silence], wall=clock(70))) == []
    after = sent(flush(d, 130.0, silences=[silence], wall=clock(130)))  # expired: now it is told
    assert {n.receiver for n in after} == {"desk", "log"}


def test_inhibition_by_a_market_wide_alert():
    d = Dispatcher(CONFIG)
    d.add(alert("market_shift", "all", kind="market", severity="warning"), 0.0)
    d.add(alert("negative_burst", "TSLA"), 0.0)
    d.add(alert("negative_burst", "TSLA", kind="sector"), 0.0)  # not a ticker alert: not inhibited
    out = sent(flush(d, 10.0))
    told = {(n.receiver, a.labels["alertname"], a.labels["entity_kind"]) for n in out for a in n.alerts}
    assert ("log", "market_shift", "market") in told
    assert ("desk", "negative_burst", "sector") in told
    assert not any(name == "negative_burst" and kind == "ticker" for _, name, kind in told)


def test_matchers():
    labels = {"entity": "TSLA", "severity": "critical"}
    assert Matcher.parse('entity="TSLA"').matches(labels)
    assert Matcher.parse("entity=~TS.*").matches(labels) and not Matcher.parse("entity=~TS").matches(labels)  # anchored
    assert Matcher.parse('severity!="warning"').matches(labels) and Matcher.parse("desk!~.+").matches(labels)
    assert Matcher.parse('missing=""').matches(labels)
    with pytest.raises(ValueError):
        Matcher.parse("entity=~(")


class FakeNotifier(Notifier):
    """A fake endpoint for the retry policy: fails with the given errors, then succeeds."""

    kind = "fake"

    def __init__(self, errors):
        self.errors, self.calls = list(errors), 0

    @property
    def target(self) -> str:
        return "fake"

    async def send(self, notification) -> None:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)


def _deliver(notifier, policy=Delivery(), jitter=lambda: 1.0):
    waits, now = [], [0.0]

    async def sleep(s):
        waits.append(s)
        now[0] += s

    outcome = asyncio.run(deliver(notifier, Notification("msg_1", "desk", "g", {}, [alert()]), policy, sleep=sleep, clock=lambda: now[0], jitter=jitter))
    return outcome, waits


def test_retries_back_off_exponentially_with_jitter_and_honour_retry_after():
    outcome, waits = _deliver(FakeNotifier([DeliveryError("500")] * 3 + [DeliveryError("429", retry_after=7.0)]))
    assert outcome.delivered and outcome.attempts == 5
    assert waits == [0.5, 1.0, 2.0, 7.0]
    _, jittered = _deliver(FakeNotifier([DeliveryError("500")] * 3), jitter=lambda: 0.5)
    assert jittered == [0.25, 0.5, 1.0]


def test_backoff_is_capped_and_gives_up_after_the_policy_limit():
    policy = Delivery(max_backoff=timedelta(seconds=4), give_up_after=timedelta(seconds=30))
    outcome, waits = _deliver(FakeNotifier([DeliveryError("timeout")] * 100), policy)
    assert not outcome.delivered and "gave up" in outcome.reason
    assert max(waits) == 4.0 and sum(waits) <= 30


def test_permanent_errors_and_410_stop_at_once_and_410_disables():
    n = FakeNotifier([DeliveryError("400", permanent=True)])
    outcome, waits = _deliver(n)
    assert not outcome.delivered and outcome.attempts == 1 and waits == [] and not n.disabled
    gone = FakeNotifier([DeliveryError("410 Gone", disable=True)])
    outcome, _ = _deliver(gone)
    assert not outcome.delivered and gone.disabled
    outcome, _ = _deliver(gone)  # later notifications are parked without a request
    assert outcome.attempts == 0 and "disabled" in outcome.reason and gone.calls == 1


def test_watermark_waits_for_every_assigned_partition_and_skips_idle_ones():
    from alerts.watermark import Watermark

    now = [0.0]
    w = Watermark(timedelta(seconds=30), idle_s=60, clock=lambda: now[0])
    w.assign([0, 1, 2])
    w.observe(0, T + timedelta(minutes=10))
    w.observe(1, T + timedelta(minutes=5))
    assert w.value() is None  # partition 2 has brought nothing yet: a backlog read unevenly
    w.observe(2, T + timedelta(minutes=7))
    assert w.value() == T + timedelta(minutes=5, seconds=-30)  # the slowest partition, minus lateness
    w.observe(1, T + timedelta(minutes=3))  # late data does not move it back
    assert w.value() == T + timedelta(minutes=5, seconds=-30)
    now[0] = 61.0  # partitions 1 and 2 quiet for a minute: idle, no longer holding back
    w.observe(0, T + timedelta(minutes=11))
    assert w.value() == T + timedelta(minutes=10, seconds=30)
    w.observe(2, T + timedelta(minutes=8))  # partition 2 speaks again: it holds back again
    assert w.value() == T + timedelta(minutes=7, seconds=30)


def test_a_partition_read_late_holds_the_watermark_while_its_named_producer_is_heard_elsewhere():
    from alerts.watermark import Watermark

    now = [0.0]
    w = Watermark(timedelta(0), idle_s=10, clock=lambda: now[0])
    w.assign([0, 1])
    w.observe(0, T + timedelta(minutes=1), "ingest-a")
    w.observe(1, T + timedelta(minutes=1), "ingest-a")
    for second in range(1, 40):  # a backlog: the consumer reads partition 0 only, for 40 s
        now[0] = float(second)
        w.observe(0, T + timedelta(minutes=1 + second), "ingest-a")
        assert w.value() == T + timedelta(minutes=1)  # partition 1 is behind, not idle: ingest-a is alive
    w.observe(1, T + timedelta(minutes=30), "ingest-a")
    assert w.value() == T + timedelta(minutes=30)
    now[0] = 60.0  # ingest-a stopped (nothing from it anywhere for 10 s): the last it said stands
    assert w.value() == T + timedelta(minutes=30)
    w.assign([0, 1, 2])  # a partition added by a rebalance: waited for, until it proves idle
    assert w.value() is None
    now[0] = 71.0
    assert w.value() == T + timedelta(minutes=30)
    w.observe(0, T + timedelta(minutes=41), "ingest-b")  # a new producer: it holds every partition back
    assert w.value() is None  # ingest-b's watermark is on partitions 1 and 2 too, not read yet
    w.observe(1, T + timedelta(minutes=35), "ingest-b")
    w.observe(2, T + timedelta(minutes=40), "ingest-b")
    assert w.value() == T + timedelta(minutes=35)
    w.assign([0, 2])  # partition 1 revoked: what was read there no longer counts
    assert w.value() == T + timedelta(minutes=40)


def test_a_drained_input_releases_the_watermark_until_new_data():
    from alerts.watermark import Watermark

    w = Watermark(timedelta(seconds=30), idle_s=60, clock=lambda: 0.0)
    w.assign([0, 1])
    w.observe(0, T + timedelta(minutes=10))
    w.observe(1, T + timedelta(minutes=4))
    assert w.value() == T + timedelta(minutes=4, seconds=-30)
    w.seen(T + timedelta(minutes=12))  # the data itself is further on than the watermarks it carried
    w.release()  # nothing new for a while: everything sent has been seen
    assert w.value() == T + timedelta(minutes=12, seconds=-30)
    w.observe(1, T + timedelta(minutes=5))
    assert w.value() == T + timedelta(minutes=5, seconds=-30)


def test_data_arriving_after_a_release_ends_it_even_without_a_watermark():
    """A sink released while it waited for its first data (an idle start) must not take the newest event
    time of the first envelopes, which carry no watermark yet, for how far the whole input has come."""
    from alerts.watermark import Watermark

    w = Watermark(timedelta(0), idle_s=60, clock=lambda: 0.0)
    w.assign([0, 1])
    w.release()  # nothing arrived for a while: the workers upstream are still starting
    assert w.value() is None
    w.seen(T + timedelta(minutes=26))  # partition 0 of a backlog read first, no watermark carried yet
    assert w.value() is None  # partition 1 may still bring minute 18
    w.release()  # now quiet again: everything sent has been seen
    assert w.value() == T + timedelta(minutes=26)


def test_watermark_takes_the_slowest_of_several_producers_writing_to_one_partition():
    from alerts.watermark import Watermark

    now = [0.0]
    w = Watermark(timedelta(0), idle_s=60, clock=lambda: now[0])
    w.assign([0])
    w.observe(0, T + timedelta(minutes=10), "scorer-a")  # a fast worker, far ahead
    assert w.value() == T + timedelta(minutes=10)
    w.observe(0, T + timedelta(minutes=2), "scorer-b")  # a slow one still sends stories of minute 2 on
    assert w.value() == T + timedelta(minutes=2)
    w.observe(0, T + timedelta(minutes=12), "scorer-a")
    assert w.value() == T + timedelta(minutes=2)  # b still holds it back, whatever a says
    now[0] = 61.0  # b is gone (stopped, rebalanced): after a quiet minute it no longer holds back
    w.observe(0, T + timedelta(minutes=13), "scorer-a")
    assert w.value() == T + timedelta(minutes=13)


def test_the_end_of_a_finite_input_is_known_by_offsets_not_by_counts():
    """A replay says where its raw partitions end; a partition is finished once the message before that
    offset was handled, however often messages were redelivered, and one nothing was published to at once."""
    from alerts.watermark import InputEnd

    end = InputEnd()
    assert end.finished([("news", 0), ("news", 1)]) == []  # no end announced: a live feed never ends
    for offset in (0, 1, 2, 1, 2, 2):  # redeliveries (a rebalance, a retry) handle offsets 1 and 2 again
        end.handle(("news", 0), offset)
    end.set({("news", 0): 5, ("social", 0): 2}, T)
    assert end.finished([("news", 0), ("news", 1)]) == [("news", 1)]  # 6 handled, but only up to offset 2
    end.handle(("news", 0), 4)  # offsets may skip (transaction markers): the last handled covers those before it
    end.handle(("social", 0), 0)
    assert end.finished([("news", 0), ("news", 1), ("social", 0)]) == [("news", 0), ("news", 1)]
    end.handle(("social", 0), 1)
    assert end.finished([("social", 0)]) == [("social", 0)] and end.until == T
    with pytest.raises(ValueError):
        end.set({("news", 0): -1}, T)
