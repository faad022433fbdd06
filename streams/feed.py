"""Publishing feeds to the raw topics: JSONL, CSV or Parquet files, or the synthetic generator.

JSONL lines are published byte for byte (a malformed line reaches the pipeline and its dead-letter
topic, as it would from a real feed). CSV rows become JSON objects: list columns (``tickers``,
``cashtags``) are split on '|', and ``likes``/``reposts``/``replies`` form the ``engagement``.
Parquet files hold either the raw bytes (a ``value`` column, optionally ``kind``: the archive's
layout) or one column per field (rows become JSON objects; timestamps ISO 8601 UTC; nulls left out).
"""

from __future__ import annotations

import csv
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import orjson

from streams.kafka.settings import KafkaConfig
from streams.ingest import Kind
from streams.kafka.producer import BatchProducer, OutMessage

LIST_COLUMNS = ("tickers", "cashtags")
ENGAGEMENT = ("likes", "reposts", "replies")


def guess_kind(obj: object) -> Kind:
    if isinstance(obj, dict) and ("platform" in obj or "author" in obj):
        return "social"
    return "news"


def _csv_item(row: dict[str, str]) -> dict:
    item: dict = {}
    for key, value in row.items():
        if key is None or value is None or value == "":
            continue
        if key in LIST_COLUMNS:
            item[key] = [v.strip() for v in value.split("|") if v.strip()]
        elif key in ENGAGEMENT:
            item.setdefault("engagement", {})[key] = int(value)
        else:
            item[key] = value
    return item


def _parquet_items(path: Path, kind: Kind | None) -> Iterator[tuple[Kind, bytes]]:
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    names = set(table.column_names)
    for batch in table.to_batches(max_chunksize=10_000):
        for row in batch.to_pylist():
            if "value" in names:
                value = row["value"]
                value = value.encode() if isinstance(value, str) else bytes(value or b"")
                given = row.get("kind") if row.get("kind") in ("news", "social") else None
                yield kind or given or guess_kind_of(value), value
            else:
                item = {k: v for k, v in row.items() if v is not None}
                yield kind or guess_kind(item), orjson.dumps(item, option=orjson.OPT_NAIVE_UTC | orjson.OPT_UTC_Z)


def guess_kind_of(value: bytes) -> Kind:
    """:func:`guess_kind` of a raw item's bytes ('news' when they are not JSON)."""
    try:
        return guess_kind(orjson.loads(value))
    except orjson.JSONDecodeError:
        return "news"


def read_file(path: Path, kind: Kind | None = None) -> Iterator[tuple[Kind, bytes]]:
    """(kind, value bytes) per item of a ``.jsonl``/``.json``, ``.csv`` or ``.parquet`` file; ``kind`` None:
    guessed per item."""
    if path.suffix.lower() == ".parquet":
        yield from _parquet_items(path, kind)
        return
    if path.suffix.lower() == ".csv":
        with open(path, newline="", encoding="utf-8") as f:
            for row in csv.DictReader(f):
                item = _csv_item(row)
                yield kind or guess_kind(item), orjson.dumps(item)
        return
    with open(path, "rb") as f:
        for line in f:
            line = line.rstrip(b"\r\n")
            if not line.strip():
                continue
            yield kind or guess_kind_of(line), line


def publish(
    settings: KafkaConfig,
    items: Iterable[tuple[Kind, bytes]],
    rate_per_s: float | None = None,
    batch: int = 500,
    per_message: int = 1,
    on_progress: Callable[[int], None] | None = None,
) -> int:
    """Publish items to the raw topics, paced to ``rate_per_s`` items/s when given; returns the number
    published. ``per_message`` > 1: up to that many items of one kind per message, as JSON Lines."""
    topics = {"news": settings.topics.name("raw_news"), "social": settings.topics.name("raw_social")}
    producer = BatchProducer(settings.kafka)
    every = batch if rate_per_s is None else max(1, int(rate_per_s / 10))
    started, sent, pending = time.monotonic(), 0, []
    try:
        for item in items:
            pending.append(item)
            if len(pending) >= every:
                sent += _flush(producer, pending, topics, per_message, on_progress)
                if rate_per_s:
                    time.sleep(max(0.0, started + sent / rate_per_s - time.monotonic()))
        sent += _flush(producer, pending, topics, per_message, on_progress)
    finally:
        producer.close()
    return sent


def messages(items: Iterable[tuple[Kind, bytes]], topics: dict[Kind, str], per_message: int = 1) -> list[OutMessage]:
    """The raw messages for ``items``: one each, or up to ``per_message`` of one kind joined as JSON Lines
    (in order within each kind)."""
    by_kind: dict[Kind, list[bytes]] = {}
    for kind, value in items:
        by_kind.setdefault(kind, []).append(value)
    return [
        OutMessage(topics[kind], b"\n".join(values[i:i + per_message]))
        for kind, values in by_kind.items() for i in range(0, len(values), per_message)
    ]


def _flush(producer: BatchProducer, pending: list[tuple[Kind, bytes]], topics: dict[Kind, str], per_message: int,
           on_progress) -> int:
    n = len(pending)
    if not n:
        return 0
    out = messages(pending, topics, per_message)
    errors = producer.produce(out)
    if errors:
        raise RuntimeError(f"{len(errors)} of {len(out)} messages not delivered: {errors[0]}")
    pending.clear()
    if on_progress:
        on_progress(n)
    return n
