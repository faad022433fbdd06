"""Replays: history republished, in event-time order, through the same pipeline, into a run's own
namespace, so live and backtest never mix.

A run (``run_id``) gets its own topics (prefix ``replay-<run_id>.``, which also names its consumer
groups), its own store (the database ``<db>_<run_id>``; with chDB also its own path, since a path is
owned by one process), and alert receivers that only log: every webhook and Grafana target of the
rules file is dropped, and the desk variables are not passed on. Everything a run produced is in its
store: scores, aggregates, alerts, and the ``runs`` row saying what it was (source, data range,
speed, model, rules hash, settings).

Event time drives the alerts (watermarks), so the same history gives the same alerts at any speed; the
end of a run releases the watermark to the data's last event time. Each kind goes to one partition of
its raw topic, in event-time order: duplicate marking (the first copy of a story seen is the original)
then gives the same stories at any speed.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import orjson
import yaml

from schemas.base import assume_utc, naive_utc, now_utc
from sentimon.settings import KafkaSettings, Settings
from streams.envelope import split_raw
from streams.feed import Kind, guess_kind_of, read_file
from streams.kafka.consumer import read_range
from streams.kafka.producer import BatchProducer, OutMessage
from streams.sink import raw_event_time

DESK_VARIABLES = ("SENTIMON_DESK_WEBHOOK_URL", "SENTIMON_DESK_WEBHOOK_SECRET")
RUN_IDLE_S = 86_400.0
_RUN_ID = re.compile(r"^[a-z0-9][a-z0-9_]{0,40}$")


@dataclass(frozen=True)
class Item:
    """One raw item of history: its event time (None: unknown), kind and bytes as first received."""

    event_time: datetime | None
    kind: Kind
    value: bytes


def check_run_id(run_id: str) -> str:
    if not _RUN_ID.match(run_id):
        raise ValueError(f"run id {run_id!r}: use 1-41 lowercase letters, digits and '_', starting with a letter or digit")
    return run_id


def new_run_id() -> str:
    return datetime.now(timezone.utc).strftime("r%Y%m%d_%H%M%S")


# --- sources ---------------------------------------------------------------------------------------


def from_files(paths: Iterable[Path], kind: Kind | None = None) -> list[Item]:
    """Items of JSONL, CSV or Parquet files (``sentimon feed`` formats)."""
    return [Item(raw_event_time(value), k, value) for path in paths for k, value in read_file(Path(path), kind)]


def from_archive(store, start: datetime | None, end: datetime | None) -> list[Item]:
    """Items of the raw archive with an event time in [start, end) (put them in order with :func:`in_order`)."""
    rows = store.query(
        "SELECT event_time, kind, value FROM {db}.raw_items FINAL WHERE event_time IS NOT NULL "
        "AND event_time >= {start:DateTime64(3)} AND event_time < {end:DateTime64(3)}",
        {"start": naive_utc(start or datetime(1970, 1, 1, tzinfo=timezone.utc)),
         "end": naive_utc(end or datetime(2999, 1, 1, tzinfo=timezone.utc))})
    return [Item(assume_utc(t), kind, v.encode() if isinstance(v, str) else v) for t, kind, v in rows]


def from_topic(kafka: KafkaSettings, topics: dict[str, Kind | None], start: datetime | None, end: datetime | None,
               idle_s: float = 3.0) -> list[Item]:
    """Items of raw topics (topic -> kind; None: guessed per item) whose messages' log time is in [start, end) (end None: now), each
    JSON Lines message split into its items, in the topics' order; put them in event-time order with
    :func:`in_order` (no range: the range was the log's)."""
    items = []
    for msg in read_range(kafka, list(topics), start, end, idle_s=idle_s):
        value = msg.value() or b""
        kind = topics[msg.topic()]
        items += [Item(raw_event_time(v), kind or guess_kind_of(v), v) for v in (split_raw(value) or [value])]
    return items


def in_order(items: Iterable[Item], start: datetime | None = None, end: datetime | None = None) -> tuple[list[Item], int]:
    """The items in event-time order within [start, end), and how many were left out for having no
    event time (they cannot be placed in time; the live pipeline dead-lettered them already)."""
    timed, untimed = [], 0
    for item in items:
        if item.event_time is None:
            untimed += 1
        elif (start is None or item.event_time >= start) and (end is None or item.event_time < end):
            timed.append(item)
    # ties broken by content, not by the source's order: the same history replays in the same order from a
    # file, the archive or a topic read in any partition order (and so marks the same re-publications)
    timed.sort(key=lambda i: (i.event_time, i.kind, i.value))
    return timed, untimed


# --- the run's namespace -----------------------------------------------------------------------------


def backtest_rules(source: str | Path, out: Path) -> Path:
    """The rules file with every receiver reduced to the log: a replay never notifies a desk."""
    data = yaml.safe_load(Path(source).read_text())
    for receiver in data.get("receivers", []):
        for key in ("webhooks", "grafana"):
            receiver.pop(key, None)
        receiver["log"] = True
    out.write_text(yaml.safe_dump(data, sort_keys=False))
    return out


def run_settings(settings: Settings, run_id: str, run_dir: Path) -> Settings:
    """The settings of a run: its topics, its store, logging-only alert receivers, no idle partitions."""
    from alerts.config import DEFAULT_RULES

    dsn = settings.store_dsn
    if dsn.startswith("chdb://"):
        dsn = f"chdb://{(run_dir / 'store').resolve()}"
    rules = backtest_rules(settings.alerts.rules_file or DEFAULT_RULES, run_dir / "rules.yaml")
    return settings.model_copy(update={
        "topics": settings.topics.model_copy(update={"prefix": f"{settings.topics.prefix}replay-{run_id}."}),
        "store": settings.store.model_copy(update={"dsn": dsn, "database": f"{settings.store.database}_{run_id}"}),
        # no partition counts as idle during a run: the watermark waits for every partition, so each window
        # is evaluated on all its data at any speed; the run's end releases it (`run` says when)
        "alerts": settings.alerts.model_copy(update={"rules_file": str(rules), "run_in": "store",
                                                     "idle_partition_s": RUN_IDLE_S}),
    })


def without_desk() -> dict[str, str]:
    """Remove the desk's variables from this process's environment (the run's workers inherit it);
    what was removed, to put back."""
    return {k: os.environ.pop(k) for k in DESK_VARIABLES if k in os.environ}


# --- publishing ------------------------------------------------------------------------------------


def publish(settings: Settings, items: list[Item], speed: float | None,
            on_progress: Callable[[int, datetime], None] | None = None, batch: int = 500,
            clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
            ends: dict[tuple[str, int], int] | None = None) -> int:
    """Publish ``items`` (in event-time order) to the run's raw topics: ``speed`` x event time (600:
    ten minutes of history a second), or as fast as possible (None). Returns how many were sent; ``ends``
    receives the offset after the last message written to each partition (where the input ends)."""
    topics = {"news": settings.topics.name("raw_news"), "social": settings.topics.name("raw_social")}
    producer = BatchProducer(settings.kafka)
    sent, pending = 0, []
    started = clock()
    first = items[0].event_time if items else None
    try:
        for item in items:
            if speed and first is not None:
                due = started + (item.event_time - first).total_seconds() / speed
                if due > clock() and pending:  # deliver what is due before waiting
                    sent += _send(producer, pending, topics, on_progress, ends)
                wait = due - clock()
                if wait > 0:
                    sleep(wait)
            pending.append(item)
            if len(pending) >= batch:
                sent += _send(producer, pending, topics, on_progress, ends)
        sent += _send(producer, pending, topics, on_progress, ends)
    finally:
        producer.close()
    return sent


def _send(producer: BatchProducer, pending: list[Item], topics: dict[str, str], on_progress,
          ends: dict[tuple[str, int], int] | None = None) -> int:
    if not pending:
        return 0
    # one partition per raw topic: ingest then reads history in event-time order, and marks the same
    # documents as re-publications of a story at any speed (the first one seen is the original)
    errors = producer.produce([OutMessage(topics[i.kind], i.value, partition=0) for i in pending], ends)
    if errors:
        raise RuntimeError(f"{len(errors)} of {len(pending)} messages not delivered: {errors[0]}")
    n, last = len(pending), pending[-1].event_time
    pending.clear()
    if on_progress:
        on_progress(n, last)
    return n


# --- the record of a run -------------------------------------------------------------------------------


def record(store, run_id: str, source: str, items: list[Item], speed: float | None, settings: Settings,
           started_at: datetime, untimed: int) -> dict:
    """Write the run's ``runs`` row (what produced these scores and alerts) and return it."""
    from alerts.config import load, rules_hash

    models = store.query("SELECT DISTINCT model, model_version FROM {db}.scores ORDER BY model, model_version")
    row = {
        "run_id": run_id, "source": source, "speed": speed or 0.0, "items": len(items), "untimed": untimed,
        "data_from": items[0].event_time if items else None, "data_to": items[-1].event_time if items else None,
        "models": [f"{m}/{v}" for m, v in models], "rules_hash": rules_hash(load(settings.alerts.rules_file or None)),
        "settings": settings.shown(),
        "started_at": started_at, "finished_at": now_utc(),
    }
    store.insert_rows("runs", [[
        run_id, source, row["speed"], row["items"], row["untimed"],
        naive_utc(row["data_from"]) if row["data_from"] else None, naive_utc(row["data_to"]) if row["data_to"] else None,
        row["models"], row["rules_hash"], orjson.dumps(row["settings"]).decode(), naive_utc(started_at),
        naive_utc(row["finished_at"]),
    ]], ["run_id", "source", "speed", "items", "untimed", "data_from", "data_to", "models", "rules_hash", "settings",
         "started_at", "finished_at"])
    return row


def iter_minutes(store) -> Iterator[tuple]:
    """The run's per-minute aggregates, for comparing runs: (kind, entity, minute, docs, stories, score sum)."""
    yield from store.query(
        "SELECT entity_kind, entity, minute, sum(docs), sum(stories), sum(score_sum) FROM {db}.entity_minute "
        "GROUP BY entity_kind, entity, minute ORDER BY entity_kind, entity, minute")


# --- a run -----------------------------------------------------------------------------------------------


def run(settings: Settings, items: list[Item], run_id: str, run_dir: Path, speed: float | None, workers: int = 1,
        source: str = "files", untimed: int = 0, start_broker: bool | None = None,
        on_progress: Callable[[int, datetime], None] | None = None, timeout_s: float = 3600.0) -> dict:
    """Replay ``items`` (in event-time order) through a pipeline of the run's own: start its store worker and
    ``workers`` pipeline workers, publish, wait until every item is stored or dead-lettered and the alerts
    are evaluated to the end of the data, then record the run. The run's row, with its counts."""
    from alerts.evaluate import floor_minute
    from streams import metrics
    from sentimon.cluster import LocalCluster

    check_run_id(run_id)
    run_dir.mkdir(parents=True, exist_ok=True)
    if start_broker is None:  # the configured Kafka when it answers, else a tansu of the run's own
        start_broker = not reachable(settings.kafka.bootstrap_servers)
    rs = run_settings(settings, run_id, run_dir)
    saved = without_desk()
    try:
        with LocalCluster(rs, run_dir / "workers", start_broker=start_broker) as cluster:
            store = cluster.start_worker("store")
            pipelines = [cluster.start_worker("pipeline") for _ in range(workers)]
            started_at, began = now_utc(), time.monotonic()
            ends: dict[tuple[str, int], int] = {}
            sent = publish(cluster.settings, items, speed, on_progress, ends=ends)
            deadline = time.monotonic() + timeout_s
            if items:
                # where the input ends, by offset: each pipeline worker passes the last event time on once it
                # has handled its raw partitions that far, so the last windows are evaluated on all their data
                # (a count of what was stored could be reached early: a redelivered item counts twice)
                end = {"offsets": {topic: {str(p): o for (t, p), o in ends.items() if t == topic} for topic, _ in ends},
                       "until": items[-1].event_time.isoformat()}
                for p in pipelines:
                    p.post("/api/input-end", end)

            def wait(condition: Callable[[], bool], what: str) -> None:
                while not condition():
                    for w in cluster.workers:
                        if not w.alive():
                            raise RuntimeError(f"replay {run_id}: worker {w.name} died:\n{w.tail()}")
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"replay {run_id}: timed out waiting for {what}")
                    time.sleep(0.5)

            wait(lambda: metrics.handled(metrics.combined(store.metrics(), *(p.metrics() for p in pipelines))) >= sent,
                 "every item stored or dead-lettered")
            handled_s = time.monotonic() - began
            if rs.alerts.enabled and items:
                last = floor_minute(items[-1].event_time - timedelta(seconds=rs.alerts.lateness_s))

                def evaluated() -> bool:
                    until = (store.health() or {}).get("evaluated_until")
                    return until is not None and datetime.fromisoformat(until) >= last

                wait(evaluated, "the alerts evaluated to the end of the data")
            with cluster.store() as s:
                row = record(s, run_id, source, items, speed, rs, started_at, untimed)
                row["counts"] = s.counts()
                row["alerts"] = s.query("SELECT status, count() FROM {db}.alerts FINAL GROUP BY status ORDER BY status")
            row["store"], row["topics_prefix"], row["database"] = rs.store_dsn, rs.topics.prefix, rs.store.database
            row["handled_s"] = handled_s  # first item published -> last one stored (throughput)
            return row
    finally:
        os.environ.update(saved)


def reachable(bootstrap_servers: str, timeout_s: float = 1.0) -> bool:
    """Whether the first Kafka bootstrap server accepts a connection."""
    import socket

    host, _, port = bootstrap_servers.split(",")[0].strip().rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout_s):
            return True
    except (OSError, ValueError):
        return False
