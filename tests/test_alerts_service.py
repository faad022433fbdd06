"""Alerting as a service of its own (``alerts.run_in = "service"``, ``sentimon alerts run``) on real parts:
tansu, the store worker, chDB and a verifying webhook receiver on loopback.

The store worker, told the evaluator runs elsewhere, stores the scores and records the watermark of
what it stored, and evaluates nothing; ``sentimon alerts run`` then evaluates from that watermark and
notifies the desk. With a ClickHouse server both run at once; chDB is owned by one process, so here
they take turns on the same store path (the code path is the same)."""

from __future__ import annotations

import base64
import time
from collections import Counter
from datetime import timedelta

import pytest

from sentimon.local.receiver import WebhookReceiver
from alerts.watermark import StoredWatermark
from conftest import BURST_RULES, wait_until
from sentimon.settings import Settings
from sentimon.cluster import LocalCluster
from streams.envelope import pack, watermark_header
from streams.kafka.producer import BatchProducer, OutMessage
from streams.store import Store
from test_alerts_store import T0, history

SECRET = "whsec_" + base64.b64encode(b"desk-secret-for-service-tests-01").decode()
DESK = BURST_RULES + """
route:
  receiver: desk
  group_by: [alertname, entity]
  group_wait: 5s
  group_interval: 1m
receivers:
  - name: desk
    webhooks:
      - url: ${SENTIMON_DESK_WEBHOOK_URL}
        secrets: [{env: SENTIMON_DESK_WEBHOOK_SECRET}]
"""


def test_stored_watermark_is_written_per_new_minute_and_read_back(tmp_path):
    store = Store(f"chdb://{tmp_path / 'store'}")
    store.migrate()
    try:
        mark = StoredWatermark(store)
        assert mark.value() is None
        assert mark.record(T0 + timedelta(seconds=10))
        assert not mark.record(T0 + timedelta(seconds=50))  # same minute: the evaluator would not move
        assert not mark.record(T0 + timedelta(seconds=5))  # never back
        assert mark.record(T0 + timedelta(minutes=1, seconds=1))
        assert StoredWatermark(store).value() == T0 + timedelta(minutes=1, seconds=1)
        assert StoredWatermark(store, name="other").value() is None
    finally:
        store.close()


@pytest.mark.slow
def test_alerts_run_evaluates_what_the_store_worker_stored_and_notifies_the_desk(broker, tmp_path, monkeypatch):
    receiver = WebhookReceiver(SECRET).start()
    rules = tmp_path / "rules.yaml"
    rules.write_text(DESK)
    monkeypatch.setenv("SENTIMON_DESK_WEBHOOK_URL", receiver.url)
    monkeypatch.setenv("SENTIMON_DESK_WEBHOOK_SECRET", SECRET)
    settings = Settings(kafka={"bootstrap_servers": broker.bootstrap}, topics={"prefix": "alerts-svc."},
                        store={"dsn": f"chdb://{tmp_path / 'store'}"},
                        alerts={"run_in": "service", "rules_file": str(rules), "lateness_s": 0, "idle_partition_s": 3})
    docs = history()
    try:
        with LocalCluster(settings, tmp_path / "run", start_broker=False) as cluster:
            store = cluster.start_worker("store")
            # scores as the scoring stage sends them: envelopes of one minute, carrying the watermark
            by_minute: dict[int, list] = {}
            for d in docs:
                by_minute.setdefault(int((d.document.event_time - T0) / timedelta(minutes=1)), []).append(d)
            messages = [
                OutMessage(settings.topics.name("scores"), value, key=f"m{m}".encode(),
                           headers=watermark_header(max(d.document.event_time for d in minute)))
                for m, minute in sorted(by_minute.items())
                for value in pack([d.model_dump_json().encode() for d in minute], settings.stream.envelope_max_bytes)
            ]
            producer = BatchProducer(settings.kafka)
            try:
                assert not producer.produce(messages)
            finally:
                producer.close()
            wait_until(lambda: store.metrics().get("consumed.sink", 0) >= len(docs), 120, "the scores stored", [store])
            time.sleep(5)  # the input is drained after idle_partition_s: the last minutes' watermark is recorded
            with cluster.store() as s:  # stops the store worker
                mark = StoredWatermark(s).value()
                assert mark is not None and mark >= T0 + timedelta(minutes=69), mark
                assert s.query("SELECT count() FROM {db}.alerts")[0][0] == 0  # the store worker evaluated nothing

            service = cluster.start_worker("alerts")
            wait_until(lambda: receiver.inbox.alerts("resolved"), 120, "the resolved notification", [service])
            time.sleep(3)
            summary = [(a["status"], a["labels"]["entity"]) for _, a in receiver.inbox.alerts()]
            assert Counter(summary) == Counter({("firing", "TSLA"): 1, ("resolved", "TSLA"): 1}), summary
            assert receiver.inbox.rejected == 0
            health = service.health()
            assert health["role"] == "alerts" and health["evaluated_until"] >= (T0 + timedelta(minutes=69)).isoformat()
            with cluster.store() as s:
                rows = s.query("SELECT status, entity FROM {db}.alerts FINAL ORDER BY at, status")
                assert rows == [("pending", "TSLA"), ("firing", "TSLA"), ("resolved", "TSLA")], rows
    finally:
        receiver.stop()
