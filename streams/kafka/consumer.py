"""Reading topics with confluent-kafka: from the beginning (inspection, tests, benchmarks) or a time range
(replays)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timezone

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Message, TopicPartition

from streams.kafka.settings import KafkaSettings
from streams.kafka.config import confluent_config


def _fresh_consumer(kafka: KafkaSettings, **extra) -> Consumer:
    """A consumer of a group of its own that commits nothing and starts at the earliest offset."""
    return Consumer(confluent_config(kafka, **{
        "group.id": f"sentimon-read-{uuid.uuid4().hex[:8]}", "auto.offset.reset": "earliest",
        "enable.auto.commit": False, **extra,
    }))


def read(kafka: KafkaSettings, topic: str, limit: int | None = None, idle_s: float = 3.0,
         timeout_s: float = 60.0) -> Iterator[Message]:
    """Messages of ``topic`` from the start, until ``limit`` messages, ``idle_s`` without a new one, or
    ``timeout_s`` in all. Uses a fresh consumer group and commits nothing. (End of topic is detected by
    idleness: tansu reports wrong high watermarks, see docs/platform.md.)"""
    consumer = _fresh_consumer(kafka, **{"partition.assignment.strategy": "range",
                                         "session.timeout.ms": int(kafka.session_timeout_s * 1000)})
    consumer.subscribe([topic])
    count, deadline, last = 0, time.monotonic() + timeout_s, None
    try:
        while time.monotonic() < deadline and (limit is None or count < limit):
            msg = consumer.poll(0.2)
            if msg is None:
                if last is not None and time.monotonic() - last > idle_s:
                    break
                continue
            if msg.error():
                if msg.error().code() in (KafkaError._PARTITION_EOF, KafkaError.UNKNOWN_TOPIC_OR_PART):
                    continue
                raise RuntimeError(f"reading {topic}: {msg.error()}")
            last = time.monotonic()
            count += 1
            yield msg
    finally:
        consumer.close()


def read_range(kafka: KafkaSettings, topics: list[str], start: datetime | None = None, end: datetime | None = None,
               idle_s: float = 3.0, timeout_s: float = 3600.0) -> Iterator[Message]:
    """Messages of ``topics`` with a log timestamp in [start, end), each partition in offset order.

    The first offset of each partition comes from ``offsets_for_times(start)`` (the beginning when no
    start); ``end`` None or in the future means "now": the log as it is when reading starts, so what is
    produced while reading is left out. A partition is done at its first message at or past ``end``; the
    whole read at ``idle_s`` without a message (the end of the log: tansu's high watermarks are wrong,
    and it answers a future timestamp with offset 0, see docs/platform.md). Commits nothing."""
    now = datetime.now(timezone.utc)
    if start is not None and start >= now:
        return
    # "now" takes in its own millisecond: what was produced just before reading started may carry it
    end_ms = int(now.timestamp() * 1000) + 1 if end is None or end > now else int(end.timestamp() * 1000)
    consumer = _fresh_consumer(kafka, **{"enable.partition.eof": False})
    try:
        wanted = []
        for topic in topics:
            try:
                meta = consumer.list_topics(topic, timeout=10).topics.get(topic)
            except KafkaException as exc:
                raise RuntimeError(f"cannot reach Kafka at {kafka.bootstrap_servers}: {exc.args[0].str()}") from None
            if meta is None or meta.error is not None or not meta.partitions:
                raise RuntimeError(f"no such topic {topic!r} on {kafka.bootstrap_servers}")
            at = OFFSET_BEGINNING if start is None else int(start.timestamp() * 1000)
            wanted += [TopicPartition(topic, p, at) for p in sorted(meta.partitions)]
        if start is not None:
            wanted = [tp for tp in consumer.offsets_for_times(wanted, timeout=10) if tp.offset >= 0]  # -1: none that late
        if not wanted:
            return
        consumer.assign(wanted)
        open_ = {(tp.topic, tp.partition) for tp in wanted}
        deadline, last = time.monotonic() + timeout_s, time.monotonic()
        while open_ and time.monotonic() < deadline:
            msg = consumer.poll(0.2)
            if msg is None:
                if time.monotonic() - last > idle_s:
                    break
                continue
            if msg.error():
                raise RuntimeError(f"reading {msg.topic()}: {msg.error()}")
            last = time.monotonic()
            where = (msg.topic(), msg.partition())
            if where not in open_:
                continue
            _, ts = msg.timestamp()
            if ts >= end_ms:
                open_.discard(where)
                consumer.pause([TopicPartition(*where)])
                continue
            if start is not None and ts < start.timestamp() * 1000:
                continue  # produced with an older timestamp after the first one in range
            yield msg
        else:
            if open_:
                raise TimeoutError(f"reading {', '.join(topics)}: not done after {timeout_s:.0f} s")
    finally:
        consumer.close()
