"""A batching producer (confluent-kafka) whose ``send`` resolves when every message is acknowledged.

Stages produce a whole micro-batch, then await its delivery before acking their input: offsets are
committed only for input whose output Kafka has durably accepted (``acks=all``; idempotence per
``kafka.idempotence``, see :func:`delivery_config`). Faust's own per-event ``send`` is
several times slower (see ``docs/decisions.md``); this keeps the per-document cost in C.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any, NamedTuple

from confluent_kafka import KafkaError, Message
from confluent_kafka import Producer as _Producer

from streams.kafka.settings import KafkaSettings
from streams.errors import kafka_transient
from streams.kafka.config import confluent_config

log = logging.getLogger("sentimon.kafka")


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
        self._servers = kafka.bootstrap_servers
        self.failing = ""  # why the last batch is still being sent ('' once it was delivered)
        self._closed = False

    def partitions(self, topic: str, timeout_s: float = 10.0) -> int:
        """How many partitions ``topic`` has (asked once per topic; the topic must exist)."""
        if topic not in self._partitions:
            meta = self._producer.list_topics(topic, timeout=timeout_s).topics.get(topic)
            if meta is None or meta.error is not None or not meta.partitions:
                raise DeliveryError(f"topic {topic!r} is missing: run 'sentimon topics' ({meta.error if meta else 'no metadata'})")
            self._partitions[topic] = len(meta.partitions)
        return self._partitions[topic]

    def produce(self, messages: Iterable[OutMessage], ends: dict[tuple[str, int], int] | None = None) -> list[KafkaError]:
        """Produce the messages and block until all are acknowledged; returns the errors. ``ends``, when
        given, is updated with the offset after the last message delivered to each (topic, partition)."""
        return [e for _, e in self._produce(list(messages), ends)]

    def _produce(self, messages: list[OutMessage], ends: dict[tuple[str, int], int] | None = None
                 ) -> list[tuple[int, KafkaError]]:
        """Produce and wait until Kafka has answered for every message; (index, error) of those that failed.
        librdkafka retries on its own until ``message.timeout.ms``; while it does, ``failing`` says so."""
        failed: list[tuple[int, KafkaError]] = []

        def on_delivery(index: int) -> Any:
            def done(err: KafkaError | None, msg: Message) -> None:
                if err is not None:
                    failed.append((index, err))
                elif ends is not None:
                    where = (msg.topic(), msg.partition())
                    ends[where] = max(ends.get(where, 0), msg.offset() + 1)
            return done

        for i, m in enumerate(messages):
            extra: dict[str, Any] = {} if m.partition is None else {"partition": m.partition}
            if m.headers:
                extra["headers"] = m.headers
            if m.timestamp is not None:
                extra["timestamp"] = m.timestamp
            while True:
                try:
                    self._producer.produce(m.topic, value=m.value, key=m.key, on_delivery=on_delivery(i), **extra)
                    break
                except BufferError:  # local queue full: let deliveries drain
                    self._producer.poll(0.05)
            self._producer.poll(0)
        while remaining := self._producer.flush(30):
            self.failing = f"{remaining} messages waiting for Kafka for over 30 s"
            log.warning("%s (%s)", self.failing, self._servers)
        return failed

    async def send(self, messages: list[OutMessage], max_backoff_s: float = 30.0) -> None:
        """Deliver a batch without blocking the event loop. Messages Kafka failed for a transient reason
        (:func:`streams.errors.kafka_transient`) are sent again with capped backoff, ``failing`` saying why
        meanwhile; :class:`DeliveryError` for any other failure."""
        pending, delay = messages, 0.5
        while pending:
            failed = await asyncio.to_thread(self._produce, pending)
            if not failed:
                break
            permanent = [e for _, e in failed if not kafka_transient(e)]
            if permanent:
                raise DeliveryError(f"{len(failed)} of {len(pending)} messages not delivered: {permanent[0]}")
            self.failing = f"{len(failed)} of {len(pending)} messages not delivered: {failed[0][1]}"
            log.warning("%s; sent again in %.1f s", self.failing, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, max_backoff_s)
            pending = [pending[i] for i, _ in sorted(failed, key=lambda f: f[0])]
        self.failing = ""

    def close(self) -> None:
        """Deliver what is queued (up to 10 s), then end the client (its connections and threads)."""
        if self._closed:
            return
        self._closed = True
        self._producer.flush(10)
        self._producer.close()
