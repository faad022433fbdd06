"""Reading a topic from the beginning with confluent-kafka (inspection, tests, benchmarks)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

from confluent_kafka import Consumer, KafkaError, Message

from sentimon.settings import KafkaSettings
from streams.kafka.config import confluent_config


def read(kafka: KafkaSettings, topic: str, limit: int | None = None, idle_s: float = 3.0,
         timeout_s: float = 60.0) -> Iterator[Message]:
    """Messages of ``topic`` from the start, until ``limit`` messages, ``idle_s`` without a new one, or
    ``timeout_s`` in all. Uses a fresh consumer group and commits nothing. (End of topic is detected by
    idleness: tansu reports wrong high watermarks, see FIELD_NOTES.)"""
    consumer = Consumer(confluent_config(kafka, **{
        "group.id": f"sentimon-read-{uuid.uuid4().hex[:8]}", "auto.offset.reset": "earliest",
        "enable.auto.commit": False, "partition.assignment.strategy": "range",
        "session.timeout.ms": int(kafka.session_timeout_s * 1000),
    }))
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
