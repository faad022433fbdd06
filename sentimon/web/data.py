"""What the live page, the HTML report and the read-only JSON API show, as JSON-ready dicts: pure
queries over the store for a range of event time (parameterized SQL; no text from a request reaches a
statement). The same functions serve the store worker's API and ``sentimon report``."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from schemas.base import assume_utc, naive_utc

MAX_POINTS = 120  # buckets per chart: enough to see a burst, few enough for a quick page


def bucket_for(start: datetime, end: datetime) -> int:
    """A bucket (whole minutes) that gives at most MAX_POINTS points over the range."""
    minutes = max(1, int((end - start).total_seconds() // 60))
    return max(1, -(-minutes // MAX_POINTS))


def default_range(store, hours: float = 2.0) -> tuple[datetime, datetime]:
    """The last ``hours`` of data (event time), ending at the newest minute stored (a replay of the past
    shows its own time); now when the store is empty."""
    latest = store.latest_minute()
    end = assume_utc(latest) + timedelta(minutes=1) if latest else datetime.now(timezone.utc)
    return end - timedelta(hours=hours), end


def _iso(t: datetime) -> str:
    return assume_utc(t).isoformat().replace("+00:00", "Z")


def sentiment(store, entity: str, start: datetime, end: datetime, bucket_min: int | None = None,
              kind: str | None = None) -> list[dict[str, Any]]:
    """An entity's stories, mean score and negative share per bucket. ``entity`` 'all' is the market;
    ``kind`` (ticker, sector, market) narrows a name used by two kinds."""
    bucket = bucket_min or bucket_for(start, end)
    rows = store.query(
        "SELECT toStartOfInterval(minute, toIntervalMinute({bucket:UInt32})) AS t, sum(stories), "
        "sum(score_sum) / nullIf(sum(stories), 0), sum(negative) / nullIf(sum(stories), 0) "
        "FROM {db}.entity_minute WHERE entity = {entity:String} AND (empty({kind:String}) OR entity_kind = {kind:String}) "
        "AND minute >= {start:DateTime} AND minute < {end:DateTime} GROUP BY t ORDER BY t",
        {"bucket": bucket, "entity": entity, "kind": kind or "", "start": naive_utc(start), "end": naive_utc(end)})
    return [{"time": _iso(t), "stories": int(n), "mean_score": m, "negative_share": s} for t, n, m, s in rows]


def sectors(store, start: datetime, end: datetime, bucket_min: int | None = None) -> dict[str, Any]:
    """Mean score per sector and bucket, as a grid (rows: sectors by volume; columns: bucket times)."""
    bucket = bucket_min or bucket_for(start, end)
    rows = store.query(
        "SELECT entity, toStartOfInterval(minute, toIntervalMinute({bucket:UInt32})) AS t, "
        "sum(score_sum) / nullIf(sum(stories), 0), sum(stories) FROM {db}.entity_minute "
        "WHERE entity_kind = 'sector' AND minute >= {start:DateTime} AND minute < {end:DateTime} "
        "GROUP BY entity, t ORDER BY t",
        {"bucket": bucket, "start": naive_utc(start), "end": naive_utc(end)})
    times = sorted({_iso(t) for _, t, _, _ in rows})
    volume: dict[str, int] = {}
    cells: dict[tuple[str, str], float | None] = {}
    for entity, t, mean, n in rows:
        volume[entity] = volume.get(entity, 0) + int(n)
        cells[(entity, _iso(t))] = mean
    names = sorted(volume, key=lambda e: -volume[e])
    return {"times": times, "sectors": names, "mean_score": [[cells.get((e, t)) for t in times] for e in names]}


def alerts(store, start: datetime, end: datetime, entity: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
    """Alert changes (firing, resolved) in the range, newest first."""
    rows = store.query(
        "SELECT at, status, alertname, severity, entity_kind, entity, annotations['summary'], fingerprint, starts_at, "
        "ends_at FROM {db}.alerts FINAL WHERE status IN ('firing', 'resolved') AND at >= {start:DateTime64(3)} "
        "AND at < {end:DateTime64(3)} AND (empty({entity:String}) OR entity = {entity:String}) "
        "ORDER BY at DESC LIMIT {limit:UInt32}",
        {"start": naive_utc(start), "end": naive_utc(end), "entity": entity or "", "limit": limit})
    keys = ("at", "status", "alertname", "severity", "entity_kind", "entity", "summary", "fingerprint", "starts_at",
            "ends_at")
    return [{k: (_iso(v) if isinstance(v, datetime) else v) for k, v in zip(keys, r)} for r in rows]


def headlines(store, entity: str, start: datetime, end: datetime, limit: int = 20) -> list[dict[str, Any]]:
    """The latest distinct stories about a ticker in the range, with their scores."""
    rows = store.query(
        "SELECT s.event_time, s.sentiment, s.score, s.topic, if(d.title != '', d.title, substring(d.text, 1, 200)), "
        "s.source FROM {db}.scores AS s INNER JOIN {db}.documents AS d ON d.doc_id = s.doc_id "
        "WHERE has(s.tickers, {entity:String}) AND s.is_duplicate = 0 AND s.event_time >= {start:DateTime64(3)} "
        "AND s.event_time < {end:DateTime64(3)} ORDER BY s.event_time DESC LIMIT 1 BY s.doc_id LIMIT {limit:UInt32}",
        {"entity": entity, "start": naive_utc(start), "end": naive_utc(end), "limit": limit})
    return [{"time": _iso(t), "sentiment": str(sent), "score": float(score), "topic": str(topic), "headline": h,
             "source": str(src)} for t, sent, score, topic, h, src in rows]


def movers(store, end: datetime, window_min: int = 15, baseline_min: int = 60, limit: int = 10) -> list[dict[str, Any]]:
    return store.movers(window_min, baseline_min, limit=limit, end=end - timedelta(minutes=1))


def snapshot(store, start: datetime, end: datetime, entity: str | None = None) -> dict[str, Any]:
    """Everything the page shows for a range: the market, sectors, movers, alerts, and one ticker's
    drill-down (``entity``, default the top mover, else the busiest ticker)."""
    top = movers(store, end)
    if not entity:
        busiest = store.query(
            "SELECT entity FROM {db}.entity_minute WHERE entity_kind = 'ticker' AND minute >= {start:DateTime} "
            "AND minute < {end:DateTime} GROUP BY entity ORDER BY sum(stories) DESC LIMIT 1",
            {"start": naive_utc(start), "end": naive_utc(end)})
        entity = top[0]["entity"] if top else (busiest[0][0] if busiest else "")
    return {
        "from": _iso(start), "to": _iso(end), "bucket_minutes": bucket_for(start, end),
        "market": sentiment(store, "all", start, end, kind="market"),
        "sectors": sectors(store, start, end),
        "movers": top,
        "alerts": alerts(store, start, end),
        "entity": {"name": entity, "sentiment": sentiment(store, entity, start, end, kind="ticker") if entity else [],
                   "alerts": alerts(store, start, end, entity) if entity else [],
                   "headlines": headlines(store, entity, start, end) if entity else []},
    }
