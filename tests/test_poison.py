"""Poison for a later stage: items that pass one stage and would stop the next (values out of a column's range,
far-future or ancient times, any history in one insert, dead letters larger than a Kafka message), driven
through the real stage code, the real store (chDB) and the real producer (tansu). Whatever comes in, each item
is stored or dead-lettered with a reason and its original bytes, and every good item around it is stored."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import datetime, timedelta, timezone

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import migrated_store, scored
from schemas import DeadLetter
from sentimon.settings import Settings
from streams.ingest import MAX_ORIGINAL_BYTES, Ingested, Ingestor, RawRecord, dead_letter
from streams.kafka.admin import ensure_topics
from streams.kafka.producer import BatchProducer, OutMessage
from streams.scorer import NoopScorer, scored_messages
from streams.sink import StoreSink, validate_scored

NOW = datetime.now(timezone.utc)


def news(i: int, **fields) -> dict:
    return {"id": f"n{i}", "source": "wire", "published_at": (NOW - timedelta(minutes=5)).isoformat(),
            "headline": f"Acme {i} beats estimates", **fields}


def social(i: int, **fields) -> dict:
    return {"id": f"s{i}", "platform": "x", "author": "someone", "created_at": (NOW - timedelta(minutes=5)).isoformat(),
            "text": f"$TSLA looks strong {i}", **fields}


HOSTILE = {
    "integer beyond 64 bits": ("social", social(0, engagement={"likes": 2**70})),
    "count beyond the store's UInt32": ("social", social(1, engagement={"likes": 5 * 10**9})),
    "negative count": ("social", social(2, engagement={"replies": -1})),
    "far-future event time": ("news", news(3, published_at="2999-01-01T00:00:00Z")),
    "an hour ahead of the clock": ("news", news(4, published_at=(NOW + timedelta(hours=1)).isoformat())),
    "year 1": ("news", news(5, published_at="0001-01-01T00:00:00Z")),
    "before the store's range": ("news", news(6, published_at="1969-12-31T23:59:59Z")),
    "markup as a ticker": ("news", news(7, tickers=["<script>alert(1)</script>"])),
    "a paragraph as a ticker": ("news", news(8, tickers=["A" * 500])),
    "thousands of tickers": ("news", news(9, tickers=[f"T{i}" for i in range(5000)])),
    "SQL as a cashtag": ("social", social(10, cashtags=["'; DROP TABLE scores; --"])),
    "float where a count goes": ("social", social(11, engagement={"likes": 1e300})),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_a_value_the_store_cannot_hold_is_dead_lettered_at_ingest_and_its_neighbours_pass(case):
    kind, item = HOSTILE[case]
    hostile = _json(item)
    good = [orjson.dumps(news(100 + i)) for i in range(3)]
    values = [("news", good[0]), (kind, hostile), ("news", good[1]), ("news", good[2])]
    out = Ingestor(b"k").process([RawRecord(k, v, "raw", 0, i) for i, (k, v) in enumerate(values)])
    assert isinstance(out[1], DeadLetter), f"{case}: {out[1]}"
    assert out[1].original_bytes() == hostile and out[1].reason
    assert all(isinstance(o, Ingested) for o in (out[0], out[2], out[3]))


def _json(item: dict) -> bytes:
    """JSON of ``item``; Python's json writes integers of any size (orjson refuses beyond 64 bits)."""
    import json

    return json.dumps(item).encode()


def test_an_item_too_large_for_a_kafka_message_gets_a_dead_letter_that_fits_one():
    huge = b'{"id": "' + b"x" * (3 * 1024 * 1024) + b'"}'
    letter = dead_letter("ingest", "oversized message", huge, "raw-news", 0, 7, 2)
    assert letter.truncated and letter.original_size == len(huge)
    assert letter.original_sha256 == hashlib.sha256(huge).hexdigest()
    assert letter.original_bytes() == huge[:MAX_ORIGINAL_BYTES]
    assert len(letter.model_dump_json()) < 1_000_000  # the broker's default message.max.bytes
    small = dead_letter("ingest", "why", b"abc", "raw-news", 0, 1)
    assert not small.truncated and small.original_bytes() == b"abc" and small.original_size == 3


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    s = migrated_store(tmp_path_factory.mktemp("poison") / "store", "sentimon_poison")
    yield s
    s.close()


def test_one_batch_may_span_any_history_the_store_holds(store):
    """A replay's batch of 150 months (ClickHouse takes 100 partitions an insert) is stored whole."""
    items = []
    for i in range(150):
        sd = scored(f"month{i}")
        t = datetime(2001 + i // 12, i % 12 + 1, 3, tzinfo=timezone.utc)
        items.append(sd.model_copy(update={"document": sd.document.model_copy(update={"event_time": t})}))
    written = StoreSink(store).write(items)
    assert written.new == 150 and written.rejected == []
    assert store.query("SELECT uniqExact(toYYYYMM(event_time)) FROM {db}.scores WHERE doc_id LIKE 'month%'")[0][0] == 150


def test_an_item_the_store_refuses_is_isolated_and_the_rest_of_its_batch_stored(store):
    """Values that no schema bound would stop (built around the models, as a forged scores message would be):
    the store refuses them, the sink isolates them, everything else is stored."""
    good = [scored(f"ok{i}") for i in range(7)]
    bad = scored("too-engaged")
    bad = bad.model_copy(update={"document": bad.document.model_copy(update={"engagement": 2**40})})
    written = StoreSink(store).write([good[0], good[1], bad, *good[2:]])
    assert [i for i, _ in written.rejected] == [2] and "too large" in written.rejected[0][1]
    assert written.new == 7
    assert store.stored([g.document.doc_id for g in good] + ["too-engaged"]) == {g.document.doc_id for g in good}


# --- the property: generated hostile items through ingest, scoring, the store and the producer ---------------

counts = st.one_of(st.integers(-2**80, 2**80), st.floats(allow_nan=True), st.sampled_from([0, 2**32, 2**63, -2**63]))
times = st.one_of(st.datetimes(timezones=st.just(timezone.utc)).map(lambda t: t.isoformat()),
                  st.sampled_from([(NOW + timedelta(days=d)).isoformat() for d in (-20000, -1, 1, 365, 10**5)]))
tickers = st.lists(st.one_of(st.text(max_size=20), st.from_regex(r"[A-Z]{1,5}", fullmatch=True)), max_size=40)


@st.composite
def hostile_items(draw) -> tuple[str, bytes]:
    import json

    if draw(st.booleans()):
        kind, item = "social", social(draw(st.integers(0, 10**6)), created_at=draw(times), cashtags=draw(tickers),
                                      engagement={"likes": draw(counts), "reposts": draw(counts)})
    else:
        kind, item = "news", news(draw(st.integers(0, 10**6)), published_at=draw(times), tickers=draw(tickers),
                                  url=draw(st.text(max_size=60)))
    return kind, json.dumps(item).encode()


@pytest.fixture(scope="module")
def producer(broker):
    s = Settings(kafka={"bootstrap_servers": broker.bootstrap}, topics={"prefix": "poison."})
    ensure_topics(s)
    p = BatchProducer(s.kafka)
    yield p, s.topics.name("dead_letters"), s.topics.name("scores")
    p.close()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(st.lists(hostile_items(), min_size=1, max_size=12))
def test_generated_hostile_items_are_stored_or_dead_lettered_through_every_stage(store, producer, values):
    kafka, dead_topic, scores_topic = producer
    outcomes = Ingestor(b"k").process([RawRecord(k, v, "raw", 0, i) for i, (k, v) in enumerate(values)])
    documents = [orjson.loads(o.json) for o in outcomes if isinstance(o, Ingested)]
    letters = [o for o in outcomes if isinstance(o, DeadLetter)]
    assert len(documents) + len(letters) == len(values)
    lines = [m for m in scored_messages(documents, asyncio.run(NoopScorer().score([d["text"] for d in documents])))]
    valid = validate_scored(lines)
    assert all(not isinstance(v, str) for v in valid), valid  # what ingest emits, the store's schema accepts
    written = StoreSink(store).write(valid)
    assert written.rejected == []
    assert store.stored([v.document.doc_id for v in valid]) == {v.document.doc_id for v in valid}
    # every dead letter and every scored line fits a Kafka message and is acknowledged
    asyncio.run(kafka.send([OutMessage(dead_topic, d.model_dump_json().encode()) for d in letters]
                           + [OutMessage(scores_topic, line) for line in lines]))


class FakePoisonedScorer:
    """A scorer that fails a whole batch holding a text it cannot take (as a model bug on one input would);
    ``calls`` counts the batches it was given. A fake, for this unit test."""

    name, version = "fake", "0"

    def __init__(self):
        self.calls = 0

    async def score(self, texts):
        self.calls += 1
        if any("POISON" in t for t in texts):
            raise ValueError("index out of range in self")
        return await NoopScorer().score(texts)


def test_a_text_the_scorer_cannot_take_is_isolated_and_the_rest_scored():
    from models.classifier import Prediction, PredictionError
    from sentimon.apps.pipeline import score_isolating

    texts = [f"text {i}" for i in range(16)]
    texts[5], texts[11] = "POISON a", "POISON b"
    scorer = FakePoisonedScorer()
    results = asyncio.run(score_isolating(scorer, texts, {"unavailable": ""}))
    assert [i for i, r in enumerate(results) if isinstance(r, PredictionError)] == [5, 11]
    assert all(isinstance(r, Prediction) for i, r in enumerate(results) if i not in (5, 11))
    assert "index out of range" in results[5].error and scorer.calls < 16


def test_a_batch_is_sent_again_until_the_broker_is_back(tmp_path):
    """Kafka down for longer than librdkafka's own retries: the batch is sent again, ``failing`` says why
    meanwhile (the worker's /health is not ready), and nothing of it is lost."""
    import threading
    import time

    from sentimon.local.broker import Broker
    from streams.kafka.consumer import read

    broker = Broker(log=tmp_path / "broker.log").start()
    s = Settings(kafka={"bootstrap_servers": broker.bootstrap}, topics={"prefix": "down."})
    ensure_topics(s)
    topic = s.topics.name("dead_letters")
    kafka = BatchProducer(s.kafka, **{"message.timeout.ms": 1500})
    seen_failing: list[str] = []
    try:
        broker.kill()
        sender = threading.Thread(target=lambda: asyncio.run(kafka.send([OutMessage(topic, f"m{i}".encode())
                                                                         for i in range(20)], max_backoff_s=1)))
        sender.start()
        deadline = time.monotonic() + 20
        while not kafka.failing and time.monotonic() < deadline:
            time.sleep(0.1)
        seen_failing.append(kafka.failing)
        broker.start()  # memory storage: the topics come back empty
        ensure_topics(s)
        sender.join(60)
        assert not sender.is_alive() and kafka.failing == ""
        values = sorted(m.value() for m in read(s.kafka, topic))
        assert set(values) == {f"m{i}".encode() for i in range(20)}
    finally:
        kafka.close()
        broker.stop()
    assert "not delivered" in seen_failing[0] or "waiting for Kafka" in seen_failing[0], seen_failing
