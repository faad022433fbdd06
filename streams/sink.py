"""Sinks: one batching base class with the retry policy, and the ClickHouse sinks built on it (scored
documents; dead letters, for dashboards; the raw archive, for replays).

A sink's ``write`` returns only after every item of the batch is durably stored or refused by the store for
itself (then the stage dead-letters it); the stage acknowledges the batch's offsets after that, never before.
A store that is down is retried with capped exponential backoff (the stream stops pulling meanwhile:
backpressure) until it recovers or the worker stops; see :mod:`streams.errors` for which failure is which.
"""

from __future__ import annotations

import logging
import threading
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Generic, TypeVar

import orjson
from pydantic import TypeAdapter, ValidationError

from schemas import DeadLetter, ScoredDocument
from schemas.base import EARLIEST, LATEST, naive_utc, now_utc, parse_utc
from streams import metrics
from streams.envelope import split_raw
from streams.errors import classify, reason
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


@dataclass(frozen=True)
class Written:
    """What one batch came to: ``new`` items stored (not stored before), and ``rejected``: (index in the
    batch, reason) of each item the store refused for itself (:mod:`streams.errors`), to be dead-lettered."""

    new: int
    rejected: list[tuple[int, str]] = field(default_factory=list)


class BatchingSink(ABC, Generic[T]):
    """The base of every sink: one batch a write, transient failures retried with capped exponential backoff
    (``failing`` says why meanwhile: the worker reports not ready), data failures isolated by splitting the
    batch until each refused item is alone (see :mod:`streams.errors`)."""

    def __init__(self, backoff_s: float = 0.5, max_backoff_s: float = 30.0):
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.failing = ""
        self._closed = threading.Event()

    @abstractmethod
    def _write(self, items: Sequence[T]) -> int:
        """Store the batch in one go; return how many items were new. Raise on failure."""

    def _probe(self) -> None:
        """Raise when the store is down (a cheap query); a data failure is believed only when this passes."""

    def write(self, items: Sequence[T]) -> Written:
        """Store the batch: every item written or rejected with a reason. Transient failures are retried
        until they pass; :class:`SinkClosed` if the sink is closed first."""
        return self._isolating(items, 0)

    def _isolating(self, items: Sequence[T], offset: int) -> Written:
        try:
            return Written(self._retrying(items))
        except _Refused as refused:
            if len(items) == 1:
                metrics.store_rejected.labels(type(self).__name__).inc()
                log.warning("sink refused an item, dead-lettered: %s", refused.reason)
                return Written(0, [(offset, refused.reason)])
        half = len(items) // 2
        first, second = self._isolating(items[:half], offset), self._isolating(items[half:], offset + half)
        return Written(first.new + second.new, first.rejected + second.rejected)

    def _retrying(self, items: Sequence[T]) -> int:
        """``_write``, retried while it fails transiently; :class:`_Refused` on a data failure."""
        delay, attempt = self.backoff_s, 1
        while True:
            try:
                written = self._write(items)
                if self.failing:
                    log.info("sink %s writes again", type(self).__name__)
                self.failing = ""
                return written
            except Exception as exc:  # noqa: BLE001 - classified below: retried, or the items isolated
                if classify(exc) == "data" and self._store_answers():
                    raise _Refused(reason(exc)) from None
                self.failing = reason(exc)
                log.warning("sink write failed (attempt %d, retry in %.1f s): %s", attempt, delay, self.failing)
                metrics.store_retries.labels(type(self).__name__).inc()
            if self._closed.wait(delay):
                raise SinkClosed(f"closed after {attempt} failed attempts")
            delay = min(delay * 2, self.max_backoff_s)
            attempt += 1

    def _store_answers(self) -> bool:
        try:
            self._probe()
            return True
        except Exception:  # noqa: BLE001 - any failure of the probe: the store is down
            return False

    def close(self) -> None:
        self._closed.set()


class _Refused(Exception):
    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class StoreBackedSink(BatchingSink[T]):
    """A sink writing to the ClickHouse store, which it also probes to tell a refusal from an outage."""

    def __init__(self, store: Store, **kwargs):
        super().__init__(**kwargs)
        self.store = store

    def _probe(self) -> None:
        self.store.ping()


class StoreSink(StoreBackedSink[ScoredDocument]):
    """Scored documents into the ClickHouse store (idempotent by doc_id)."""

    def _write(self, items: Sequence[ScoredDocument]) -> int:
        return self.store.write(items)


class DeadLetterSink(StoreBackedSink[tuple[int, int, bytes]]):
    """Dead letters into the store's ``dead_letters`` table, keyed by their own position in the
    dead-letter topic (idempotent). Items: (partition, offset, message value)."""

    COLUMNS = ("letter_partition", "letter_offset", "stage", "reason", "topic", "partition", "offset", "item_index",
               "original_bytes", "failed_at")

    def write(self, items: Sequence[tuple[int, int, bytes]]) -> Written:
        """As :meth:`BatchingSink.write`; a letter the store refuses gets a row saying so (stage ``unknown``) in its
        place: the dead-letter topic, the source of truth, still holds it whole."""
        written = super().write(items)
        if written.rejected:
            super().write([(items[i][0], items[i][1], _Refused(why)) for i, why in written.rejected])  # type: ignore[misc]
        return written

    @staticmethod
    def row(partition: int, offset: int, value: bytes) -> list:
        """One row; a message that is not a dead letter is recorded as such (stage ``unknown``)."""
        if isinstance(value, _Refused):
            return [partition, offset, "unknown", f"the store refused this dead letter: {value.reason}", "", -1, -1,
                    None, 0, naive_utc(now_utc())]
        try:
            d = DeadLetter.model_validate_json(value)
        except ValidationError as exc:
            return [partition, offset, "unknown", f"not a dead letter: {exc.errors()[0]['msg']}", "", -1, -1, None,
                    len(value), naive_utc(now_utc())]
        return [partition, offset, d.stage, d.reason, d.topic, d.partition, d.offset, d.index,
                d.original_size if d.original_size is not None else len(d.original) * 3 // 4, naive_utc(d.failed_at)]

    def _write(self, items: Sequence[tuple[int, int, bytes]]) -> int:
        self.store.insert_rows("dead_letters", [self.row(*i) for i in items], self.COLUMNS)
        return len(items)


class ArchiveSink(StoreBackedSink[tuple[str, str, int, int, bytes]]):
    """Raw messages into the ``raw_items`` archive, one row per item (a JSON Lines message is split as
    the ingest stage splits it), keyed by position (idempotent), personal data scrubbed as ingest
    scrubs it (:func:`streams.privacy.scrub_raw`). Items: (kind, topic, partition, offset, value)."""

    COLUMNS = ("kind", "topic", "partition", "offset", "item_index", "event_time", "value")

    def __init__(self, store: Store, privacy_key: bytes, **kwargs):
        super().__init__(store, **kwargs)
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
    """published_at (news) or created_at (social) of a raw item, aware UTC; None when it has neither, is not
    JSON or lies outside what the store holds (it is archived all the same: replay gives it to ingest, which
    dead-letters it again)."""
    try:
        obj = orjson.loads(item)
        text = obj.get("published_at") or obj.get("created_at") if isinstance(obj, dict) else None
        t = parse_utc(str(text)) if text else None
    except (orjson.JSONDecodeError, ValueError, TypeError, OverflowError):
        return None
    return t if t is not None and EARLIEST <= t < LATEST else None
