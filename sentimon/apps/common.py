"""What the three Faust applications share: the app itself with its web server and consumer tuning, the outbox
a stage fills per micro-batch, bounded input buffers, acknowledgements, and the observability pages."""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

import faust

from schemas import DeadLetter
from sentimon.settings import Settings
from sentimon.web import access
from sentimon.web.api import int_param
from streams import memory, metrics
from streams.envelope import pack, shard, unpack, watermark_header
from streams.ingest import dead_letter
from streams.kafka.config import faust_broker, tune_faust_consumer
from streams.kafka.producer import OutMessage


Role = Literal["pipeline", "store", "alerts"]
PRODUCER = f"{socket.gethostname()}:{os.getpid()}"  # this process, in the watermark headers it writes
LATENCY_SAMPLE = 256
log = logging.getLogger("sentimon.stream")


def faust_app(settings: Settings, role: Role, web_port: int) -> faust.App:
    token = settings.worker.token.get_secret_value()  # exposure is checked by sentimon.worker.run, before anything starts
    tune_faust_consumer(settings.kafka)
    faust_dir = settings.var_dir / "faust"
    faust_dir.mkdir(parents=True, exist_ok=True)  # Faust makes only the last level of its data folder
    return faust.App(
        f"{settings.topics.prefix}sentimon-{role}",
        **faust_broker(settings.kafka),
        web_enabled=True,
        web_host=settings.worker.host,
        web_port=web_port,
        web_application_options={"middlewares": [access.guard, *([access.middleware(token)] if token else [])]},
        consumer_auto_offset_reset="earliest",
        broker_commit_interval=1.0,
        topic_partitions=settings.kafka.partitions,
        topic_replication_factor=settings.kafka.replication_factor,
        topic_disable_leader=True,
        store="memory://",
        # Faust makes a data folder per app even with tables in memory: under var/, not the working directory
        datadir=str(faust_dir / "{conf.name}-data"),
        table_standby_replicas=0,
        stream_buffer_maxsize=max(4096, 4 * settings.stream.max_batch),
        producer_linger_ms=5,
        autodiscover=False,
    )


@dataclass
class Outbox:
    """What a stage produces for one micro-batch: items packed into envelopes by shard, and dead letters.

    ``partitions``: the partition count of each topic items go to (``shard(doc_id)`` picks the partition,
    so a document takes the same partition of every topic whichever batch carried it). ``marked``: the
    watermark last sent to each of their partitions, kept by the stage from batch to batch."""

    stage: str
    dead_topic: str
    partitions: dict[str, int]
    envelope_max_bytes: int
    items: int = 0
    dead: int = 0
    marked: dict[tuple[str, int], datetime] = field(default_factory=dict)
    _shards: dict[tuple[str, int], list[bytes]] = field(default_factory=dict)
    _letters: list[OutMessage] = field(default_factory=list)

    def add(self, topic: str, doc_id: str, item: bytes) -> None:
        """Queue one item (its JSON, one line) for ``topic``."""
        self._shards.setdefault((topic, shard(doc_id, self.partitions[topic])), []).append(item)
        self.items += 1

    def dead_letter(self, letter: DeadLetter) -> None:
        self._letters.append(OutMessage(self.dead_topic, letter.model_dump_json().encode()))
        self.dead += 1

    def reject(self, event: faust.types.EventT, reason: str, item: bytes | None = None, index: int | None = None) -> None:
        """Dead-letter an item of a consumed message (the whole message when ``item`` is None) with its
        original bytes and source position."""
        m = event.message
        self.dead_letter(dead_letter(self.stage, reason, m.value if item is None else item, m.topic, m.partition,
                                     m.offset, index))

    def messages(self, watermark: datetime | None = None) -> list[OutMessage]:
        """Dead letters and envelopes; the envelopes carry ``watermark`` (see :mod:`streams.envelope`), and
        every partition that has no envelope this time and has not had this watermark yet gets an empty
        one carrying it (consumers then wait for this process on every partition: :mod:`alerts.watermark`)."""
        headers = watermark_header(watermark, PRODUCER) if watermark is not None else None
        out = self._letters + [
            OutMessage(topic, envelope, partition=partition, headers=headers)
            for (topic, partition), items in self._shards.items()
            for envelope in pack(items, self.envelope_max_bytes)
        ]
        if watermark is not None:
            for where in ((topic, p) for topic, n in self.partitions.items() for p in range(n)):
                if where not in self._shards and self.marked.get(where) != watermark:
                    out.append(OutMessage(where[0], b"", partition=where[1], headers=headers))
                self.marked[where] = watermark
        return out


def position(event: faust.types.EventT) -> tuple[bytes | None, str, int, int]:
    m = event.message
    return m.value, m.topic, m.partition, m.offset


def items_of(events: Sequence[faust.types.EventT]) -> Iterator[tuple[faust.types.EventT, int, bytes]]:
    """(event, index, item bytes) for every item of every envelope consumed."""
    for event in events:
        for i, item in enumerate(unpack(event.message.value)):
            yield event, i, item


async def ack_all(stream: faust.StreamT, events: Sequence[faust.types.EventT]) -> None:
    for event in events:
        await stream.ack(event)


def observability(app: faust.App, role: str, details, trim_memory_s: float = 0.0) -> None:
    """/health (200 when ready, else 503), /metrics (Prometheus), a log line of the counters every 30 s, the
    C heap and Python's object counts recorded every ``trim_memory_s`` or 30 s (the heap's free pages given back
    first when ``trim_memory_s``), and /debug/objects (a census of Python objects by type, for leak hunting)."""

    @app.timer(interval=30.0)
    async def report():
        counters = {key.replace(".", "_"): value for key, value in metrics.snapshot().items()}
        log.info("counters", extra={"role": role, **counters})

    @app.timer(interval=trim_memory_s or 30.0)
    async def heap():
        if trim_memory_s:
            memory.trim()
        now = memory.heap()
        if now is not None:
            for kind in ("in_use", "free", "mmapped"):
                metrics.heap_bytes.labels(kind).set(getattr(now, kind))
        objects = memory.python_objects()
        for kind in ("blocks", "tracked"):
            metrics.python_objects.labels(kind).set(getattr(objects, kind))

    @app.page("/debug/objects")
    async def objects(view, request):
        return view.json(memory.census(int_param(request.query, "limit", 40, 1, 100_000)))

    @app.page("/health")
    async def health(view, request):
        status, body = details()
        return view.json(body, status=status)

    @app.page("/metrics")
    async def prometheus(view, request):
        payload, content_type = metrics.exposition()
        # aiohttp wants the charset apart from the content type
        return view.bytes(payload, content_type=content_type.split(";")[0])


BUFFERED_BATCHES = 4


def input_topic(app: faust.App, *topics: str, batch: int):
    """An input topic whose in-process buffer holds ``BUFFERED_BATCHES`` micro-batches of messages: when it is
    full Faust stops fetching (backpressure), so a backlog waits in Kafka, not in memory. (The app-wide
    default, 4096 messages, would hold 4096 envelopes of documents, up to a gigabyte, per stream.)"""
    topic = app.topic(*topics, value_serializer="raw", key_serializer="raw", allow_empty=True)
    topic.maxsize = BUFFERED_BATCHES * batch  # app.topic() does not pass ``maxsize`` on (faust-streaming 0.15.3)
    return topic


def queued(stream) -> int | None:
    """How many messages wait in the stream's in-process buffer; None for a stream without one (tests)."""
    try:
        return stream.channel.queue.qsize()
    except AttributeError:
        return None


def waiting(stream) -> bool:
    """Whether messages wait in the stream's buffer (never, for a stream without one)."""
    return bool(queued(stream))


def record_buffered(stage: str, stream) -> None:
    """How many messages wait in the stage's buffer (at its bound: the stage is the bottleneck, Faust has
    stopped fetching, the backlog is in Kafka)."""
    n = queued(stream)
    if n is not None:
        metrics.buffered.labels(stage).set(n)


def record_batch(stage: str, n_in: int, out: Outbox, started: float) -> None:
    """Items in and out of one micro-batch (documents, not envelopes), its dead letters and its time."""
    metrics.consumed.labels(stage).inc(n_in)
    metrics.produced.labels(stage).inc(out.items)
    if out.dead:
        metrics.dead_letters.labels(stage).inc(out.dead)
    metrics.batch_done(stage, n_in, time.perf_counter() - started)
