"""The evaluator over a real chDB store: parameterized SQL on the aggregates, progress kept in the store."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

import pytest

from alerts.config import parse
from conftest import BURST_RULES
from alerts.evaluate import Evaluator
from alerts.silence import Silence, expire, load, save
from streams.store import Store

T0 = datetime(2026, 11, 29, 10, 0, tzinfo=timezone.utc)
RULES = parse(BURST_RULES + """    annotations:
      summary: "{{ entity }} {{ stories }} stories, mean {{ mean | round(2) }} (z {{ sentiment_shift.z | round(1) }}, volume z {{ volume_spike.z | round(1) }})"
      first: "{{ headlines[0] }}"
""")


def history(spike=(40, 46), minutes=70, seed=2):
    """Scored documents over ``minutes``: AAPL and MSFT chatter, and a burst of negative TSLA stories."""
    from conftest import scored

    rng, docs = random.Random(seed), []
    for m in range(minutes):
        for ticker, rate in (("AAPL", 5), ("MSFT", 3), ("TSLA", 1)):
            n = rate + (25 if ticker == "TSLA" and spike[0] <= m < spike[1] else 0) + rng.randint(0, 2)
            for k in range(n):
                burst = ticker == "TSLA" and spike[0] <= m < spike[1]
                score = -0.9 if burst else max(-1, min(1, rng.gauss(0.2, 0.4)))
                docs.append(_at(scored(f"{ticker}-{m}-{k}", score=score, tickers=(ticker,)), m, k))
    return docs


def _at(item, minute: int, k: int):
    """Move a conftest document to T0 + minute (its helper only takes minutes of one hour)."""
    t = T0 + timedelta(minutes=minute, seconds=k % 60)
    doc = item.document.model_copy(update={"event_time": t, "ingested_at": t})
    return item.model_copy(update={"document": doc})


@pytest.fixture
def store(tmp_path):
    s = Store(f"chdb://{tmp_path / 'store'}")
    s.migrate()
    s.write(history())
    yield s
    s.close()


def test_the_burst_fires_once_resolves_once_and_is_recorded(store):
    evaluator = Evaluator(RULES, store)
    changes = evaluator.advance(T0 + timedelta(minutes=70))
    evaluator.commit(changes)
    assert [(c.status, c.labels["entity"]) for c in changes] == [("pending", "TSLA"), ("firing", "TSLA"), ("resolved", "TSLA")]
    firing = changes[1]
    summary = firing.annotations["summary"]
    assert summary.startswith("TSLA ") and "(z -" in summary and "volume z " in summary and "volume z -" not in summary
    assert firing.annotations["first"] == "story TSLA-" + firing.annotations["first"].split("-", 1)[1]  # a real headline
    rows = store.query("SELECT status, entity, at FROM {db}.alerts FINAL ORDER BY at, status")
    assert [(s, e) for s, e, _ in rows] == [("pending", "TSLA"), ("firing", "TSLA"), ("resolved", "TSLA")]
    assert 41 <= (rows[0][2].replace(tzinfo=timezone.utc) - T0) / timedelta(minutes=1) <= 43


def test_progress_survives_a_restart_and_evaluation_is_incremental(store):
    whole = Evaluator(RULES, store, name="whole").advance(T0 + timedelta(minutes=70))
    first = Evaluator(RULES, store, name="parts")
    part1 = first.advance(T0 + timedelta(minutes=42, seconds=30))
    first.commit(part1)
    again = Evaluator(RULES, store, name="parts")  # a restart: state and progress from the store
    assert again.evaluated_until == T0 + timedelta(minutes=42) and again.states == first.states
    part2 = again.advance(T0 + timedelta(minutes=70))
    assert [(c.status, c.at) for c in part1 + part2] == [(c.status, c.at) for c in whole]
    # a window is never evaluated twice: advancing to the same watermark again changes nothing
    assert again.advance(T0 + timedelta(minutes=70)) == []


def test_uncommitted_evaluation_is_repeated_identically_after_a_restart(store):
    lost = Evaluator(RULES, store).advance(T0 + timedelta(minutes=70))  # crashed before commit
    assert Evaluator(RULES, store).advance(T0 + timedelta(minutes=70)) == lost


def test_entities_in_scope_only(store):
    rule = RULES.rules[0]
    only = RULES.model_copy(update={"rules": [rule.model_copy(update={"scope": rule.scope.model_copy(update={"entities": ["AAPL"]})})]})
    assert Evaluator(only, store).advance(T0 + timedelta(minutes=70)) == []


def test_silences_are_stored_listed_and_expired(store):
    s = Silence.new(['entity="TSLA"'], timedelta(hours=1), "ana", "known story", start=T0)
    save(store, s)
    now = T0 + timedelta(minutes=5)
    assert [x.id for x in load(store, now=now)] == [s.id]
    expire(store, s.id, now=now)
    assert load(store, now=now + timedelta(seconds=1)) == []
    assert load(store, include_expired=True)[0].comment == "known story"


def test_a_catch_up_is_notified_as_it_happened(store):
    """Changes read at once (a backlog) are grouped in event time: the firing is notified before the
    resolved one, as if live, instead of both falling into one group_wait and being dropped."""
    import asyncio

    from alerts.notify import Notifier
    from alerts.service import Alerting
    from sentimon.settings import Settings

    class RecordingNotifier(Notifier):  # a fake endpoint: records what it is sent
        kind, sent = "fake", []

        @property
        def target(self) -> str:
            return "fake"

        async def send(self, notification) -> None:
            self.sent.append([(a.status, a.labels["entity"]) for a in notification.alerts])

    alerting = Alerting(Settings(), store, RULES)
    alerting.notifiers = {"log": [RecordingNotifier()]}
    alerting.watermark.observe(0, T0 + timedelta(minutes=70))
    changes = alerting.evaluate()
    alerting.commit(changes)
    acked = []

    async def ack(token):
        acked.append(token)

    async def park(*_):
        raise AssertionError("nothing should be parked")

    async def run():
        for i, change in enumerate(changes):
            await alerting.add(change, i, ack, park)
        await alerting.notify_once(ack, park)
        await alerting.settle()
        await alerting.close()

    asyncio.run(run())
    assert RecordingNotifier.sent == [[("firing", "TSLA")], [("resolved", "TSLA")]]
    assert sorted(acked) == list(range(len(changes)))
