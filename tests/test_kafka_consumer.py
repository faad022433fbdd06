"""Faust's consumer as the workers tune it (streams.kafka.config.tune_faust_consumer): bounded polls that take
the partitions in turn, so one topic's backlog does not hold another topic's records back (the pipeline
worker's ingest and scoring share one consumer). Against the real tansu broker and aiokafka."""

from __future__ import annotations

import asyncio
import time

from sentimon.settings import Settings
from streams.kafka.admin import ensure_topics
from streams.kafka.config import serve_in_turn, tune_faust_consumer
from streams.kafka.producer import BatchProducer, OutMessage


def test_serve_in_turn_moves_the_partition_served_first_to_the_back():
    records = {"a": 1, "b": 2, "c": 3}
    serve_in_turn(records)
    assert list(records) == ["b", "c", "a"] and records == {"a": 1, "b": 2, "c": 3}
    one = {"a": 1}
    serve_in_turn(one)
    assert one == {"a": 1}
    serve_in_turn({})  # nothing buffered: nothing to do


def test_a_backlog_on_one_topic_does_not_hold_back_a_record_on_another(broker):
    settings = Settings(kafka={"bootstrap_servers": broker.bootstrap}, topics={"prefix": "in-turn."})
    ensure_topics(settings)
    backlog, other = settings.topics.name("raw_news"), settings.topics.name("documents")
    producer = BatchProducer(settings.kafka)
    partitions = producer.partitions(backlog)
    per_partition = 300
    assert not producer.produce([OutMessage(backlog, b"x" * 100, partition=i % partitions)
                                 for i in range(partitions * per_partition)])
    assert not producer.produce([OutMessage(other, b"the one", partition=0)])
    producer.close()

    tune_faust_consumer(settings.kafka)
    from faust.transport.drivers.aiokafka import aiokafka as patched  # the class Faust's driver now builds

    async def polls() -> list[list[tuple[str, int, int]]]:
        from aiokafka import TopicPartition

        consumer = patched.AIOKafkaConsumer(bootstrap_servers=broker.bootstrap, enable_auto_commit=False,
                                            auto_offset_reset="earliest", group_id=None)
        tps = [TopicPartition(backlog, p) for p in range(partitions)] + [TopicPartition(other, 0)]
        consumer.assign(tps)
        await consumer.start()
        try:
            # every partition fetched into the buffer before the first poll, as a backlog is
            deadline = time.monotonic() + 20
            while len(consumer._fetcher._records) < len(tps) and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            assert len(consumer._fetcher._records) == len(tps), "not every partition was fetched"
            out, total = [], partitions * per_partition + 1
            while sum(map(len, out)) < total and time.monotonic() < deadline:
                batch = await consumer.getmany(timeout_ms=1000)  # as many as the tuned consumer hands out
                out.append([(tp.topic, tp.partition, r.offset) for tp, rs in batch.items() for r in rs])
            return out
        finally:
            await consumer.stop()

    out = asyncio.run(polls())
    records = [r for poll in out for r in poll]
    assert len(records) == partitions * per_partition + 1 and len(set(records)) == len(records)
    assert max(map(len, out)) <= settings.kafka.max_poll_records  # the polls are bounded
    # served within a poll per partition, not after the whole backlog (12 polls of 100 here)
    first = next(i for i, poll in enumerate(out) if any(topic == other for topic, _, _ in poll))
    assert first < partitions + 1, [len(p) for p in out]
    for p in range(partitions):  # each partition still in its own order
        offsets = [o for topic, partition, o in records if topic == backlog and partition == p]
        assert offsets == list(range(per_partition))


def test_a_read_up_to_now_takes_in_what_was_produced_in_its_own_millisecond(broker, monkeypatch):
    """A replay's source is read up to "now"; a batch produced just before carries the same millisecond
    and belongs to it, while a later one (produced as reading goes on) does not."""
    from datetime import datetime, timezone

    from streams.kafka import consumer

    settings = Settings(kafka={"bootstrap_servers": broker.bootstrap}, topics={"prefix": "same-ms."})
    ensure_topics(settings)
    topic = settings.topics.name("raw_news")
    now_ms = int(time.time() * 1000)
    producer = BatchProducer(settings.kafka)
    assert not producer.produce([OutMessage(topic, b"before", partition=0, timestamp=now_ms - 1),
                                 OutMessage(topic, b"same millisecond", partition=0, timestamp=now_ms),
                                 OutMessage(topic, b"after", partition=0, timestamp=now_ms + 1)])
    producer.close()

    class Frozen(datetime):
        @classmethod
        def now(cls, tz=None):
            return datetime.fromtimestamp((now_ms + 0.4) / 1000, tz or timezone.utc)

    monkeypatch.setattr(consumer, "datetime", Frozen)
    values = [m.value() for m in consumer.read_range(settings.kafka, [topic], idle_s=2.0)]
    assert values == [b"before", b"same millisecond"]
