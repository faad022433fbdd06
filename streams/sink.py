"""Sinks: one batching base class with the retry policy, and the ClickHouse sinks built on it (scored
documents; dead letters, for dashboards; the raw archive, for replays).

A sink's ``write`` returns only after the batch is durably stored; the stage acknowledges the batch's
offsets after that, never before. A failing store is retried with capped exponential backoff (the
stream stops pulling meanwhile: backpressure) until it recovers or the worker stops.
"""

from __future__ import annotations

import logging
import threading
from abc import ABC, abstractmethod
from collections.abc import Sequence
from datetime import datetime
from typing import Generic, TypeVar

import orjson
from pydantic import TypeAdapter, ValidationError

from schemas import DeadLetter, ScoredDocument
from schemas.base import naive_utc, now_utc, parse_utc
from streams import metrics
from streams.envelope import split_raw
from streams.privacy import scrub_raw
from streams.store import Store

_MANY = TypeAdapter(list[ScoredDocument])


def validate_scored(lines: Sequence[bytes]) -> list[ScoredDocument | str]:
    """Each line as a :class:`ScoredDocument`, or why it is not one, in order.

    All lines are validated in one call (the common case: every line is fine); when that fails, or
    lines did not map one-to-one to items, each line is validated alone to name the bad ones."""
    if not lines:
        return []
    try:
        many = _MANY.validate_json(b"[" + b",".join(lines) + b"]")
        if len(many) == len(lines):
            return list(many)
    except ValidationError:
        pass
    out: list[ScoredDocument | str] = []
    for line in lines:
        try:
            out.append(ScoredDocument.model_validate_json(line))
        except ValidationError as exc:
            first = exc.errors(include_url=False)[0]
            where = ".".join(str(p) for p in first["loc"])
            out.append(f"invalid scored document: {where + ': ' if where else ''}{first['msg']}")
    return out

T = TypeVar("T")
log = logging.getLogger("sentimon.sink")


class SinkClosed(RuntimeError):
    """The sink was closed while a write was still failing; nothing of the batch is acknowledged."""


class BatchingSink(ABC, Generic[T]):
    def __init__(self, backoff_s: float = 0.5, max_backoff_s: float = 30.0):
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self._closed = threading.Event()

    @abstractmethod
    def _write(self, items: Sequence[T]) -> int:
        """Store the batch in one go; return how many items were new. Raise on failure."""

    def write(self, items: Sequence[T]) -> int:
        """Store the batch, retrying failures; :class:`SinkClosed` if closed before it succeeded."""
        delay = self.backoff_s
        attempt = 1
        while True:
            try:
                return self._write(items)
            except Exception as exc:  # any failure of the store is retried; the batch stays unacknowledged
                log.warning("sink write failed (attempt %d, retry in %.1f s): %s", attempt, delay, exc)
                metrics.store_retries.labels(type(self).__name__).inc()
            if self._closed.wait(delay):
                raise SinkClosed(f"closed after {attempt} failed attempts")
            delay = min(delay * 2, self.max_backoff_s)
            attempt += 1

    def close(self) -> None:
        self._closed.set()


class StoreSink(BatchingSink[ScoredDocument]):
    """Scored documents into the ClickHouse store (idempotent by doc_id)."""

    def __init__(self, store: Store, **kwargs):
        super().__init__(**kwargs)
        self.store = store

    def _write(self, items: Sequence[ScoredDocument]) -> int:
        return self.store.write(items)


class DeadLetterSink(BatchingSink[tuple[int, int, bytes]]):
    """Dead letters into the store's ``dead_letters`` table, keyed by their own position in the
    dead-letter topic (idempotent). Items: (partition, offset, message value)."""

    COLUMNS = ("letter_partition", "letter_offset", "stage", "reason", "topic", "partition", "offset", "item_index",
               "original_bytes", "failed_at")

    def __init__(self, store: Store, **kwargs):
        super().__init__(**kwargs)
        self.store = store

    @staticmethod
    def row(partition: int, offset: int, value: bytes) -> list:
        """One row; a message that is not a dead letter is recorded as such (stage ``unknown``)."""
        try:
            d = DeadLetter.model_validate_json(value)
        except ValidationError as exc:
            return [partition, offset, "unknown", f"not a dead letter: {exc.errors()[0]['msg']}", "", -1, -1, None,
                    len(value), naive_utc(now_utc())]
        return [partition, offset, d.stage, d.reason, d.topic, d.partition, d.offset, d.index,
                len(d.original) * 3 // 4, naive_utc(d.failed_at)]

    def _write(self, items: Sequence[tuple[int, int, bytes]]) -> int:
        self.store.insert_rows("dead_letters", [self.row(*i) for i in items], self.COLUMNS)
        return len(items)


class ArchiveSink(BatchingSink[tuple[str, str, int, int, bytes]]):
    """Raw messages into the ``raw_items`` archive, one row per item (a JSON Lines message is split as
    the ingest stage splits it), keyed by position (idempotent), personal data scrubbed as ingest
    scrubs it (:func:`streams.privacy.scrub_raw`). Items: (kind, topic, partition, offset, value)."""

    COLUMNS = ("kind", "topic", "partition", "offset", "item_index", "event_time", "value")

    def __init__(self, store: Store, privacy_key: bytes, **kwargs):
        super().__init__(**kwargs)
        self.store = store
        self.key = privacy_key

    def rows(self, kind: str, topic: str, partition: int, offset: int, value: bytes) -> list[list]:
        items = split_raw(value) or [value]
        return [[kind, topic, partition, offset, i, naive_utc(t) if (t := raw_event_time(item)) else None,
                 scrub_raw(item, self.key)] for i, item in enumerate(items)]

    def _write(self, items: Sequence[tuple[str, str, int, int, bytes]]) -> int:
        rows = [row for item in items for row in self.rows(*item)]
        self.store.insert_rows("raw_items", rows, self.COLUMNS)
        return len(rows)


def raw_event_time(item: bytes) -> datetime | None:
    """published_at (news) or created_at (social) of a raw item, aware UTC; None when it has neither or
    is not JSON (it is archived all the same: replay gives it to ingest, which dead-letters it again)."""
    try:
        obj = orjson.loads(item)
        text = obj.get("published_at") or obj.get("created_at") if isinstance(obj, dict) else None
        return parse_utc(str(text)) if text else None
    except (orjson.JSONDecodeError, ValueError, TypeError):
        return None
