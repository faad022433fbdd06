"""A batching producer (confluent-kafka) whose ``send`` resolves when every message is acknowledged.

Stages produce a whole micro-batch, then await its delivery before acking their input: offsets are
committed only for input whose output Kafka has durably accepted (``acks=all``; idempotence per
``kafka.idempotence``, see :func:`delivery_config`). Faust's own per-event ``send`` is
several times slower (see ``../shared/FIELD_NOTES.md``); this keeps the per-document cost in C.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any, NamedTuple

from confluent_kafka import KafkaError, Message
from confluent_kafka import Producer as _Producer

from sentimon.settings import KafkaSettings
from streams.kafka.config import confluent_config


class DeliveryError(RuntimeError):
    """Kafka refused or timed out messages of a batch."""


class OutMessage(NamedTuple):
    """One message to produce; ``partition`` None: chosen from the key (or spread when there is no key);
    ``timestamp`` the log time in ms since the epoch (None: now)."""

    topic: str
    value: bytes
    key: bytes | None = None
    partition: int | None = None
    headers: list[tuple[str, bytes]] | None = None
    timestamp: int | None = None


def delivery_config(kafka: KafkaSettings) -> dict[str, Any]:
    """librdkafka's delivery guarantees for ``kafka.idempotence``: always ``acks=all`` and unlimited retries.

    Without idempotence librdkafka may reorder a partition when a retry overtakes a later request, so one
    request is in flight per broker; a retry can then only write a batch twice, never out of order.
    """
    if kafka.idempotence:
        return {"enable.idempotence": True, "acks": "all"}
    return {"enable.idempotence": False, "acks": "all", "retries": 2147483647, "max.in.flight.requests.per.connection": 1}


class BatchProducer:
    def __init__(self, kafka: KafkaSettings, **extra: Any):
        self._producer = _Producer(confluent_config(kafka, **{**delivery_config(kafka), "linger.ms": 5, **extra}))
        self._partitions: dict[str, int] = {}

    def partitions(self, topic: str, timeout_s: float = 10.0) -> int:
        """How many partitions ``topic`` has (asked once per topic; the topic must exist)."""
        if topic not in self._partitions:
            meta = self._producer.list_topics(topic, timeout=timeout_s).topics.get(topic)
            if meta is None or meta.error is not None or not meta.partitions:
                raise DeliveryError(f"topic {topic!r} is missing: run 'sentimon topics' ({meta.error if meta else 'no metadata'})")
            self._partitions[topic] = len(meta.partitions)
        return self._partitions[topic]

    def produce(self, messages: Iterable[OutMessage]) -> list[KafkaError]:
        """Produce the messages and block until all are acknowledged; returns the errors."""
        errors: list[KafkaError] = []

        def on_delivery(err: KafkaError | None, _msg: Message) -> None:
            if err is not None:
                errors.append(err)

        for m in messages:
            extra: dict[str, Any] = {} if m.partition is None else {"partition": m.partition}
            if m.headers:
                extra["headers"] = m.headers
            if m.timestamp is not None:
                extra["timestamp"] = m.timestamp
            while True:
                try:
                    self._producer.produce(m.topic, value=m.value, key=m.key, on_delivery=on_delivery, **extra)
                    break
                except BufferError:  # local queue full: let deliveries drain
                    self._producer.poll(0.05)
            self._producer.poll(0)
        remaining = self._producer.flush(60)
        if remaining:
            errors.append(KafkaError(KafkaError._MSG_TIMED_OUT, f"{remaining} messages not delivered in 60 s"))
        return errors

    async def send(self, messages: list[OutMessage]) -> None:
        """Deliver a batch without blocking the event loop; :class:`DeliveryError` if any message failed."""
        if not messages:
            return
        errors = await asyncio.to_thread(self.produce, messages)
        if errors:
            raise DeliveryError(f"{len(errors)} of {len(messages)} messages not delivered: {errors[0]}")

    def close(self) -> None:
        self._producer.flush(10)
