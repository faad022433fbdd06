"""Hostile messages on the real stack (tansu, Faust workers, chDB, the webhook receiver on loopback): one
hostile message of each class among good items, none stopping anything; the alerts a desk gets come only
from the evaluator, each firing and resolved once per receiver across a SIGKILL of the store worker, and a
receiver that is down delays no other. Each class's counts go to var/reliability.json (the README's table)."""

from __future__ import annotations

import base64
import hashlib
import json
import time
from datetime import datetime, timedelta, timezone

import orjson
import pytest

from alerts import provenance
from sentimon.local.receiver import WebhookReceiver
from conftest import record_figure, wait_until
from sentimon.settings import Settings
from sentimon.cluster import LocalCluster
from streams.feed import publish
from streams.ingest import MAX_ORIGINAL_BYTES
from streams.kafka.consumer import read
from streams.kafka.producer import BatchProducer, OutMessage
from streams.synthetic import Injected, SyntheticFeed

pytestmark = pytest.mark.slow
NOW = datetime.now(timezone.utc).replace(microsecond=0)


def news(key: str, **fields) -> bytes:
    item = {"id": key, "source": "wire", "published_at": (NOW - timedelta(minutes=30)).isoformat(),
            "headline": f"Acme {key} beats estimates", **fields}
    return json.dumps(item).encode()  # Python's json writes integers of any size


def social(key: str, **fields) -> bytes:
    item = {"id": key, "platform": "x", "author": "someone", "created_at": (NOW - timedelta(minutes=30)).isoformat(),
            "text": f"$TSLA {key} looks strong", **fields}
    return json.dumps(item).encode()


# class -> (kind, the hostile message, what its dead letter says)
HOSTILE = {
    "integer beyond 64 bits": ("social", social("h1", engagement={"likes": 2**70}), "engagement.likes"),
    "count beyond the store's UInt32": ("social", social("h2", engagement={"likes": 5 * 10**9}), "engagement.likes"),
    "far-future event time": ("news", news("h3", published_at="2099-01-01T00:00:00Z"), "stream.max_future_s"),
    "year-1 event time": ("news", news("h4", published_at="0001-01-01T00:00:00Z"), "storable range"),
    "hostile tickers": ("news", news("h5", tickers=["<script>"] + [f"T{i}" for i in range(3000)]), "tickers"),
    "hostile Unicode only": ("social", social("h6", text="\u202e\u200b\u2066\u200d"), "no text left"),
    "oversized item (its dead letter larger than a Kafka message)":
        ("news", news("h7", headline="x" * 900_000), "oversized message"),
}
HISTORY_MONTHS = 150  # one JSON Lines message whose items span more months than one ClickHouse insert takes


@pytest.fixture()
def cluster(broker, tmp_path, request):
    settings = Settings(kafka={"bootstrap_servers": broker.bootstrap}, topics={"prefix": request.node.name[:30] + "."},
                        store={"dsn": f"chdb://{tmp_path / 'store'}"}, scoring={"backend": "noop"},
                        alerts={"enabled": False})
    c = LocalCluster(settings, tmp_path / "run", start_broker=False).start()
    yield c
    c.stop()


def test_one_hostile_message_of_each_class_stops_nothing(cluster):
    around = 10  # good items before and after each hostile one
    items, good = [], 0
    for n, (kind, value, _) in enumerate(HOSTILE.values()):
        items += [("news", news(f"g{n}-{i}")) for i in range(around)] + [(kind, value)]
        items += [("social", social(f"g{n}-{i}")) for i in range(around, 2 * around)]
        good += 2 * around
    history = b"\n".join(news(f"m{i}", published_at=datetime(2010 + i // 12, i % 12 + 1, 2, tzinfo=timezone.utc)
                              .isoformat()) for i in range(HISTORY_MONTHS))
    items.insert(len(items) // 2, ("news", history))
    store = cluster.start_worker("store")
    pipeline = cluster.start_worker("pipeline")
    assert publish(cluster.settings, items) == len(items)
    expected = good + HISTORY_MONTHS
    wait_until(lambda: store.metrics().get("produced.sink", 0) >= expected, 240, "every good item stored",
               [store, pipeline])
    letters = [orjson.loads(m.value()) for m in read(cluster.settings.kafka, cluster.settings.topics.name("dead_letters"))]
    assert store.alive() and pipeline.alive()
    assert pipeline.metrics().get("dead_letters.ingest", 0) == len(HOSTILE) == len(letters)
    by_hash = {d["original_sha256"]: d for d in letters}
    for name, (_, value, says) in HOSTILE.items():
        letter = by_hash[hashlib.sha256(value).hexdigest()]
        assert says in letter["reason"], (name, letter["reason"])
        original = base64.b64decode(letter["original"])
        if letter["truncated"]:
            assert original == value[:MAX_ORIGINAL_BYTES] and letter["original_size"] == len(value), name
        else:
            assert original == value, name
    with cluster.store() as s:
        stored = s.query("SELECT count() FROM {db}.scores")[0][0]
        months = s.query("SELECT uniqExact(toYYYYMM(event_time)) FROM {db}.documents WHERE source_id LIKE 'm%'")[0][0]
    assert stored == expected and months == HISTORY_MONTHS
    for name in HOSTILE:
        record_figure(f"hostile: {name}", items_in=2 * around + 1, stored=2 * around, dead_lettered=1, lost=0)
    record_figure("hostile: one JSON Lines message spanning 150 months", items_in=HISTORY_MONTHS,
                  stored=HISTORY_MONTHS, dead_lettered=0, lost=0)


# --- what reaches a desk ------------------------------------------------------------------------------------

SECRET = "whsec_" + base64.b64encode(b"desk-secret-for-hostile-tests-0").decode()
RULES = """
rules:
  - name: volume_burst
    scope: {kind: ticker, entities: [TSLA]}
    detector: {type: volume_spike, window: 3m, baseline: 30m, threshold: 4, min_ratio: 3, min_docs: 8}
    for: 1m
    severity: critical
route:
  receiver: desks
  group_by: [alertname, entity]
  group_wait: 10s
  group_interval: 1m
receivers:
  - name: desks
    webhooks:
      - url: ${DESK_A_URL}
        secrets: [{env: DESK_SECRET}]
      - url: ${DESK_B_URL}
        secrets: [{env: DESK_SECRET}]
"""


def feed(start_min: float, end_min: float) -> list[tuple[str, bytes]]:
    """Event minutes [start_min, end_min) of a feed with a burst about TSLA from minute 18 to 26."""
    start = datetime(2026, 11, 2, 14, 0, tzinfo=timezone.utc)
    items = SyntheticFeed(seed=4, start=start, events=(Injected("negative", "TSLA", at_s=18 * 60, duration_s=8 * 60),),
                          rhythm=False).items(int(40 * 60 * 3), 3.0)
    return [(k, orjson.dumps(i)) for t, k, i in items if start_min * 60 <= t < end_min * 60]


def test_a_desk_hears_only_the_evaluator_once_per_change_across_a_kill_and_despite_a_dead_peer(
        broker, tmp_path, monkeypatch):
    desk_b = WebhookReceiver(SECRET).start()
    desk_a = WebhookReceiver(SECRET).start()
    port_a = desk_a.port
    desk_a.stop()  # desk A is down all along the firing
    monkeypatch.setenv("DESK_A_URL", f"http://127.0.0.1:{port_a}/hook")
    monkeypatch.setenv("DESK_B_URL", desk_b.url)
    monkeypatch.setenv("DESK_SECRET", SECRET)
    (tmp_path / "rules.yaml").write_text(RULES)
    settings = Settings(kafka={"bootstrap_servers": broker.bootstrap}, topics={"prefix": "desk."},
                        store={"dsn": f"chdb://{tmp_path / 'store'}"}, scoring={"backend": "noop"}, var_dir=tmp_path / "var",
                        alerts={"rules_file": str(tmp_path / "rules.yaml"), "lateness_s": 0, "idle_partition_s": 5})
    alerts_topic = settings.topics.name("alerts")
    try:
        with LocalCluster(settings, tmp_path / "run", start_broker=False) as cluster:
            store = cluster.start_worker("store")
            pipeline = cluster.start_worker("pipeline")
            workers = [store, pipeline]

            def told(desk, status):
                return [a for _, a in desk.inbox.alerts(status) if a["labels"]["entity"] == "TSLA"]

            assert publish(cluster.settings, feed(0, 24)) > 0  # the burst begins: firing
            wait_until(lambda: told(desk_b, "firing"), 240, "desk B told of the firing", workers)
            # forged changes on the alerts topic: unsigned, and signed with another key
            forged = orjson.dumps({"fingerprint": "f0rged", "status": "firing", "labels": {
                "alertname": "volume_burst", "entity": "AAPL", "severity": "critical"}, "starts_at": "2026-11-02T14:00:00Z",
                "at": "2026-11-02T14:01:00Z", "annotations": {"summary": "SELL EVERYTHING"}})
            producer = BatchProducer(cluster.settings.kafka)
            assert not producer.produce([OutMessage(alerts_topic, forged, key=b"f0rged"),
                                         OutMessage(alerts_topic, forged, key=b"f0rged",
                                                    headers=provenance.sign(forged, b"a guessed key"))])
            producer.close()
            wait_until(lambda: store.metrics().get("forged_alerts", 0) >= 2, 60, "the forged changes refused", workers)
            a_back = time.time()
            desk_a = WebhookReceiver(SECRET, port=port_a).start()  # desk A back on its address
            wait_until(lambda: told(desk_a, "firing"), 120, "desk A told of the firing", workers)
            time.sleep(4)  # the firing's offset committed: only the notification log remembers it was told
            store.kill()  # SIGKILL between firing and resolved
            workers[0] = store = cluster.start_worker("store")
            assert publish(cluster.settings, feed(24, 40)) > 0  # the burst is over: resolved
            wait_until(lambda: told(desk_b, "resolved") and told(desk_a, "resolved"), 240, "both desks told of the resolved",
                       workers)
            time.sleep(5)  # anything sent twice would have arrived by now
    finally:
        desk_a.stop()
        desk_b.stop()
    for desk in (desk_a, desk_b):
        assert [a["status"] for a in told(desk, None)] == ["firing", "resolved"], desk.inbox.unique
        assert all(a["labels"]["entity"] == "TSLA" for r in desk.inbox.unique.values() for a in r.payload["alerts"])
        assert desk.inbox.rejected == 0
    assert len(desk_a.inbox.unique) == len(desk_b.inbox.unique) == 2
    b_fired = min(r.at for r in desk_b.inbox.unique.values())
    assert b_fired < a_back <= min(r.at for r in desk_a.inbox.unique.values())  # B told while A was down
    record_figure("forged alert changes on the alerts topic", forged=2, delivered=0, dead_lettered=2)
    record_figure("store worker SIGKILLed between firing and resolved", firing_told=1, resolved_told=1,
                  receivers=2, duplicates_at_receivers=desk_a.inbox.duplicates + desk_b.inbox.duplicates)
