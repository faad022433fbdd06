"""Several items per Kafka message: JSON Lines envelopes (pure functions, no I/O).

Faust pays a fixed cost per consumed message (about 250 us on these machines, see the benchmark's
"bare Faust agent" row), so one message per document caps every stage near 4,000 documents/s. Between
our own stages (documents, scores) a message is therefore an *envelope*: the items' JSON objects, one
per line. The items of an envelope share a shard: ``shard(doc_id)`` picks the partition, so a document
always travels through the same partition of each topic (one owner per ``doc_id`` downstream, however
the micro-batches were cut).

Raw feeds may do the same: a raw message holds one JSON object, or several as JSON Lines (a vendor's bulk
delivery, a firehose adapter: ``sentimon feed --per-message N``). Each line is then an item of its own,
with its own dead letter if it is bad.

Envelopes carry the stream's *watermark* in a header: the ingest stage's event time so far (the smallest,
over its raw partitions, of the latest event time read), passed on by scoring (the smallest of its
inputs'), so the store knows which windows are complete even when a backlog is read unevenly.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from datetime import datetime, timezone

import orjson


def shard(key: str, partitions: int) -> int:
    """Stable partition of ``key`` in ``[0, partitions)`` (the same in every process and run)."""
    return zlib.crc32(key.encode()) % partitions


def pack(lines: Iterable[bytes], max_bytes: int) -> list[bytes]:
    """Join serialized items into envelopes of at most ``max_bytes`` (an item larger than that gets its own)."""
    envelopes: list[bytes] = []
    current: list[bytes] = []
    size = 0
    for line in lines:
        if current and size + 1 + len(line) > max_bytes:
            envelopes.append(b"\n".join(current))
            current, size = [], 0
        current.append(line)
        size += len(line) + 1
    if current:
        envelopes.append(b"\n".join(current))
    return envelopes


def unpack(value: bytes | None) -> list[bytes]:
    """The items of an envelope, in order (blank lines skipped)."""
    if not value:
        return []
    return [line for line in value.split(b"\n") if line.strip()]


def split_raw(value: bytes | None) -> list[bytes] | None:
    """The items of a raw message when it is JSON Lines (two or more lines, the first a complete JSON
    object); ``None`` when it is one item. A pretty-printed object (its first line is not an object by
    itself) stays whole; in JSON Lines a malformed line is an item of its own, so it alone is rejected."""
    if not value or b"\n" not in value:
        return None
    lines = unpack(value)
    if len(lines) < 2:
        return None
    try:
        first = orjson.loads(lines[0])
    except orjson.JSONDecodeError:
        return None
    return lines if isinstance(first, dict) else None


# --- the event-time watermark travels with the envelopes, as Kafka headers -------------------------
# A stage's watermark is monotone per producing process, not across processes: a consumer keeps the
# latest per (partition, producer) and takes the minimum (see alerts.watermark).

WATERMARK_HEADER = "sentimon-watermark"
PRODUCER_HEADER = "sentimon-producer"
_EVENT_TIME = b'"event_time":"'


def event_time_text(document_json: bytes) -> str:
    """The ``event_time`` of a document's JSON as its ISO text (sorts as time; no parsing per document)."""
    i = document_json.find(_EVENT_TIME) + len(_EVENT_TIME)
    return document_json[i:document_json.index(b'"', i)].decode()


def watermark_header(watermark: datetime, producer: str = "") -> list[tuple[str, bytes]]:
    """Headers carrying ``watermark`` (milliseconds since the epoch) and the producing process's id."""
    headers = [(WATERMARK_HEADER, str(int(watermark.timestamp() * 1000)).encode())]
    return headers + [(PRODUCER_HEADER, producer.encode())] if producer else headers


def read_watermark(headers) -> tuple[datetime, str] | None:
    """The watermark a message carries and who produced it ("" when not said), or None
    (headers as a list of pairs or a mapping)."""
    if not headers:
        return None
    pairs = dict(headers.items() if hasattr(headers, "items") else headers)
    value = pairs.get(WATERMARK_HEADER)
    if not value:
        return None
    return datetime.fromtimestamp(int(value) / 1000, timezone.utc), (pairs.get(PRODUCER_HEADER) or b"").decode()
