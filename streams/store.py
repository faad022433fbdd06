"""The ClickHouse store: one code path for embedded chDB (``chdb:///path``) and a server (``http(s)://``).

Writes are idempotent by ``doc_id``: :meth:`Store.write` inserts only documents not stored yet, so a
redelivered batch adds nothing and the aggregate materialized views never count a document twice.
This relies on one writer per document at a time, which the design guarantees: the scores topic is
keyed by ``doc_id`` and one store worker owns each partition (with chDB, one process owns the store).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import pyarrow as pa

from schemas import ScoredDocument
from schemas.migrate import Migration, check_identifier, migrate
from streams.settings import StoreConfig, redact
from streams import faults



_MS = pa.timestamp("ms", tz="UTC")
_STRINGS = pa.list_(pa.string())


MAX_MONTHS_PER_INSERT = 100
"""ClickHouse refuses an insert touching more partitions than ``max_partitions_per_insert_block`` (100 by
default); documents and scores are partitioned by month of event time."""


def by_months(items: Sequence[ScoredDocument], limit: int = MAX_MONTHS_PER_INSERT) -> list[list[ScoredDocument]]:
    """``items`` in parts of at most ``limit`` distinct event-time months each (a replay may send any history)."""
    months: dict[tuple[int, int], list[ScoredDocument]] = {}
    for item in items:
        t = item.document.event_time
        months.setdefault((t.year, t.month), []).append(item)
    keys = sorted(months)
    return [[i for k in keys[j:j + limit] for i in months[k]] for j in range(0, len(keys), limit)]


class StoreUnavailable(RuntimeError):
    """The store cannot be opened; the message says why and what to do."""


def _owned_by_another_process(dsn: str) -> bool:
    """chDB locks ``<path>/status`` while a process has the store open; probe that lock."""
    import fcntl
    from pathlib import Path

    status = Path(dsn.removeprefix("chdb://")) / "status"
    if not dsn.startswith("chdb://") or not status.is_file():
        return False
    with open(status, "rb") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return True
        fcntl.flock(f, fcntl.LOCK_UN)
    return False


def connect(dsn: str):
    """A clickhouse-connect client for ``chdb:///path`` or ``http(s)://user:password@host:port``."""
    import clickhouse_connect

    if _owned_by_another_process(dsn):
        raise StoreUnavailable(
            f"the store {dsn} is owned by another process (chDB allows one per path): "
            "stop the running store worker, or query it through its web API"
        )
    try:
        return clickhouse_connect.get_client(dsn=dsn)
    except Exception as exc:  # chDB and HTTP raise different types; the message is what matters
        text = str(exc)
        if "already initialized with path" in text:
            raise StoreUnavailable(
                f"this process already has another chDB store open (chDB allows one path per process); "
                f"close it before opening {dsn}"
            ) from None
        raise StoreUnavailable(f"cannot open the store {redact(dsn)}: {redact(text.splitlines()[0]) if text else exc!r}") from None


class Store:
    def __init__(self, dsn: str, database: str = "sentimon"):
        self.dsn = dsn
        self.db = check_identifier(database)
        self.client = connect(dsn)
        self._lock = threading.Lock()  # one statement at a time per client (chDB is not re-entrant)

    @classmethod
    def open(cls, settings: StoreConfig, migrate_schema: bool = True) -> "Store":
        store = cls(settings.store_dsn, settings.store.database)
        if migrate_schema:
            store.migrate()
            store.archive_retention(settings.archive.ttl_days)
        return store

    def archive_retention(self, ttl_days: int) -> None:
        """Keep archived raw items ``ttl_days`` after archiving (0: forever); changed only when it differs."""
        with self._lock:
            ddl = self.client.command(f"SHOW CREATE TABLE {self.db}.raw_items")
            has = "TTL" in str(ddl)
            if ttl_days:
                wanted = f"toDateTime(archived_at) + toIntervalDay({int(ttl_days)})"
                if f"TTL {wanted}" not in str(ddl):
                    self.client.command(f"ALTER TABLE {self.db}.raw_items MODIFY TTL toDateTime(archived_at) "
                                        f"+ INTERVAL {int(ttl_days)} DAY")
            elif has:
                self.client.command(f"ALTER TABLE {self.db}.raw_items REMOVE TTL")

    def migrate(self) -> list[Migration]:
        with self._lock:
            return migrate(self.client, self.db)

    def query(self, sql: str, parameters: dict[str, Any] | None = None) -> list[tuple]:
        """Rows of a parameterized query; ``{db}`` in the SQL names our database."""
        with self._lock:
            return self.client.query(sql.replace("{db}", self.db), parameters=parameters or {}).result_rows

    def insert_rows(self, table: str, rows: Sequence[Sequence[Any]], columns: Sequence[str]) -> None:
        """Insert rows into one of our tables (small writes: alerts, silences, state)."""
        if rows:
            faults.check("store.insert")
            with self._lock:
                self.client.insert(f"{self.db}.{check_identifier(table)}", [list(r) for r in rows],
                                   column_names=list(columns))

    def stored(self, doc_ids: Sequence[str]) -> set[str]:
        """The subset of ``doc_ids`` already in the scores table."""
        if not doc_ids:
            return set()
        # one string parameter split server-side: binding thousands of separate strings costs ~25 us each
        joined = ",".join(doc_ids)
        if any("," in d for d in doc_ids):
            raise ValueError("doc_id must not contain ','")
        rows = self.query("SELECT doc_id FROM {db}.scores WHERE doc_id IN splitByChar(',', {ids:String})", {"ids": joined})
        return {r[0] for r in rows}

    def write(self, items: Sequence[ScoredDocument]) -> int:
        """Insert the documents and scores not stored yet; returns how many were new."""
        unique: dict[str, ScoredDocument] = {}
        for item in items:
            unique.setdefault(item.document.doc_id, item)
        already = self.stored(list(unique))
        new = [item for doc_id, item in unique.items() if doc_id not in already]
        for part in by_months(new):
            self._insert(part)
        return len(new)

    def _insert(self, new: Sequence[ScoredDocument]) -> None:
        docs = [item.document for item in new]
        scores = [item.score for item in new]
        documents = pa.table({
            "doc_id": [d.doc_id for d in docs], "kind": [d.kind for d in docs], "source": [d.source for d in docs],
            "source_id": [d.source_id for d in docs],
            "event_time": pa.array([d.event_time for d in docs], _MS),
            "ingested_at": pa.array([d.ingested_at for d in docs], _MS),
            "title": [d.title for d in docs], "text": [d.text for d in docs], "url": [d.url for d in docs],
            "language": [d.language for d in docs], "author_hash": [d.author_hash for d in docs],
            "tickers": pa.array([d.tickers for d in docs], _STRINGS), "sectors": pa.array([d.sectors for d in docs], _STRINGS),
            "engagement": pa.array([d.engagement for d in docs], pa.uint32()),
            "duplicate_of": [d.duplicate_of for d in docs],
        })
        score_table = pa.table({
            "doc_id": [s.doc_id for s in scores],
            "event_time": documents.column("event_time"),
            "scored_at": pa.array([s.scored_at for s in scores], _MS),
            "kind": documents.column("kind"), "source": documents.column("source"),
            "tickers": documents.column("tickers"), "sectors": documents.column("sectors"),
            "is_duplicate": pa.array([1 if d.duplicate_of else 0 for d in docs], pa.uint8()),
            "model": [s.model for s in scores], "model_version": [s.model_version for s in scores],
            "sentiment": [s.sentiment for s in scores],
            "p_negative": pa.array([s.p_negative for s in scores], pa.float32()),
            "p_neutral": pa.array([s.p_neutral for s in scores], pa.float32()),
            "p_positive": pa.array([s.p_positive for s in scores], pa.float32()),
            "score": pa.array([s.score for s in scores], pa.float32()),
            "topic": [s.topic for s in scores],
            "topic_confidence": pa.array([s.topic_confidence for s in scores], pa.float32()),
        })
        faults.check("store.insert")
        with self._lock:
            # Arrow: columnar and converted in C (row-wise inserts cost ~10x more per document here).
            # Documents first: a crash between the two inserts leaves a document without a score, which
            # the redelivery completes (the scores table decides what is stored)
            self.client.insert_arrow(f"{self.db}.documents", documents)
            faults.check("store.scores")
            self.client.insert_arrow(f"{self.db}.scores", score_table)

    def ping(self) -> None:
        """Raise when the store does not answer a query."""
        self.query("SELECT 1")

    # --- the common questions -------------------------------------------------------------------

    def counts(self) -> dict[str, int]:
        """Distinct documents and scores stored, and the sum of per-minute 'market' stories and docs."""
        rows = self.query(
            "SELECT (SELECT uniqExact(doc_id) FROM {db}.documents), (SELECT uniqExact(doc_id) FROM {db}.scores), "
            "(SELECT sum(docs) FROM {db}.entity_minute WHERE entity_kind = 'market'), "
            "(SELECT sum(stories) FROM {db}.entity_minute WHERE entity_kind = 'market')"
        )
        documents, scores, docs, stories = rows[0]
        return {"documents": documents, "scores": scores, "aggregated_docs": docs, "aggregated_stories": stories}

    def latest_minute(self) -> datetime | None:
        """The newest minute with data: 'now' for a store that may hold a replay of the past."""
        rows = self.query("SELECT max(minute), count() FROM {db}.entity_minute WHERE entity_kind = 'market'")
        return rows[0][0] if rows and rows[0][1] else None

    def entity_series(self, entity: str, minutes: int = 60, bucket_minutes: int = 1) -> list[dict]:
        """Sentiment of one ticker or sector (or 'all') over the last ``minutes`` of data, per bucket."""
        end = self.latest_minute()
        if end is None:
            return []
        rows = self.query(
            "SELECT toStartOfInterval(minute, toIntervalMinute({bucket:UInt32})) AS t, sum(docs), sum(stories), "
            "sum(score_sum) / nullIf(sum(stories), 0), sum(negative) / nullIf(sum(stories), 0) "
            "FROM {db}.entity_minute WHERE entity = {entity:String} AND minute > {start:DateTime} "
            "GROUP BY t ORDER BY t",
            {"bucket": bucket_minutes, "entity": entity, "start": end - timedelta(minutes=minutes)},
        )
        return [
            {"time": t, "docs": d, "stories": s, "mean_score": m, "negative_share": n} for t, d, s, m, n in rows
        ]

    def movers(self, window_minutes: int = 5, baseline_minutes: int = 30, min_stories: int = 5, limit: int = 10,
               kind: str = "ticker", end: datetime | None = None) -> list[dict]:
        """Entities whose mean score in the window ending at minute ``end`` (default: the latest with data)
        moved most against the baseline before it (the mean of its per-minute means), ranked by |change| x
        sqrt(recent stories) so that one or two stories do not top the list."""
        end = end.replace(second=0, microsecond=0, tzinfo=None) if end else self.latest_minute()
        if end is None:
            return []
        split = end - timedelta(minutes=window_minutes - 1)
        start = split - timedelta(minutes=baseline_minutes)
        # the baseline is the mean of per-minute means, so that a burst at its end (many stories in a
        # few minutes) does not become the baseline itself
        rows = self.query(
            "SELECT entity, sumIf(m_stories, minute >= {split:DateTime}) AS recent, "
            "sumIf(m_sum, minute >= {split:DateTime}) / nullIf(recent, 0) AS now_mean, "
            "sumIf(m_stories, minute < {split:DateTime}) AS before, "
            "avgIf(m_sum / m_stories, minute < {split:DateTime} AND m_stories > 0) AS before_mean, "
            "sumIf(m_negative, minute >= {split:DateTime}) / nullIf(recent, 0) AS negative_share "
            "FROM (SELECT entity, minute, sum(stories) AS m_stories, sum(score_sum) AS m_sum, "
            "      sum(negative) AS m_negative "
            "      FROM {db}.entity_minute WHERE entity_kind = {kind:String} AND minute >= {start:DateTime} "
            "      AND minute <= {end:DateTime} GROUP BY entity, minute) "
            "GROUP BY entity HAVING recent >= {min:UInt32} "
            "ORDER BY abs(ifNull(now_mean, 0) - ifNull(before_mean, 0)) * sqrt(recent) DESC, recent DESC "
            "LIMIT {limit:UInt32}",
            {"split": split, "start": start, "end": end, "kind": kind, "min": min_stories, "limit": limit},
        )
        return [
            {"entity": e, "stories": r, "mean_score": m, "baseline_stories": b, "baseline_score": bm,
             "change": (m - bm) if m is not None and bm is not None else None, "negative_share": n}
            for e, r, m, b, bm, n in rows
        ]

    def top_entities(self, kind: str = "ticker", limit: int = 10) -> list[dict]:
        """The entities with the most stories overall, with their mean score and negative share."""
        rows = self.query(
            "SELECT entity, sum(docs), sum(stories) AS s, sum(score_sum) / nullIf(s, 0), sum(negative) / nullIf(s, 0) "
            "FROM {db}.entity_minute WHERE entity_kind = {kind:String} GROUP BY entity ORDER BY s DESC, entity "
            "LIMIT {limit:UInt32}",
            {"kind": kind, "limit": limit},
        )
        return [{"entity": e, "docs": d, "stories": s, "mean_score": m, "negative_share": n} for e, d, s, m, n in rows]

    def close(self) -> None:
        with self._lock:
            try:
                self.client.close()
            except Exception:
                pass
