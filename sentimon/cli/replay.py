"""Replaying history through the pipeline, and backtests of the runs."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Optional

import typer

from sentimon.cli.common import _fail, _iso_time, _log, app, console
from sentimon.settings import get_settings, redact


@app.command()
def replay(
    files: Annotated[Optional[list[Path]], typer.Argument(help="JSONL/CSV files of raw items (the `sentimon feed` formats)")] = None,
    source: Annotated[str, typer.Option(help="'files' (the FILES given), 'archive' (the store's raw archive) or 'kafka' "
                                             "(raw topics, by the log's time)")] = "files",
    topic: Annotated[Optional[list[str]], typer.Option(help="--source kafka: a topic to read (repeat; default: the raw "
                                                             "news and social topics)")] = None,
    from_: Annotated[Optional[str], typer.Option("--from", help="from, ISO 8601 UTC: event time (files, archive) or log "
                                                              "time (kafka: offsets_for_times)")] = None,
    to: Annotated[Optional[str], typer.Option(help="to (excluded), ISO 8601 UTC; kafka: default the end of the log now")] = None,
    speed: Annotated[str, typer.Option(help="'max' (as fast as possible) or N: N x event time (600: 10 min a second)")] = "max",
    workers: Annotated[int, typer.Option(min=1, help="pipeline workers for the run")] = 1,
    run_id: Annotated[Optional[str], typer.Option(help="the run's id (default: r<date>_<time>)")] = None,
    kind: Annotated[Optional[str], typer.Option(help="news or social for every item of FILES or --topic (default: guessed)")] = None,
) -> None:
    """Replay history through the same pipeline into a run's own namespace (topics replay-<run>.*, its own
    store, alerts to the log only, never to a desk); prints where the run's scores and alerts are."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from sentimon import replay as replays
    from streams.store import StoreUnavailable

    s = get_settings()
    try:
        rid = replays.check_run_id(run_id or replays.new_run_id())
        pace = None if speed == "max" else float(speed)
        if pace is not None and pace <= 0:
            raise ValueError("speed must be 'max' or a positive number")
        start = _iso_time(from_) if from_ else None
        end = _iso_time(to) if to else None
    except ValueError as exc:
        _fail(str(exc))
    if source == "files":
        if not files:
            _fail("give the files to replay, or --source archive")
        missing = [str(f) for f in files if not f.is_file()]
        if missing:
            _fail(f"no such file: {', '.join(missing)}")
        items, untimed = replays.in_order(replays.from_files(files, kind), start, end)  # type: ignore[arg-type]
    elif source == "archive":
        from streams.store import Store

        try:
            store = Store.open(s)
        except StoreUnavailable as exc:
            _fail(f"{exc}: the archive is in the store a worker owns; stop it (chDB) or use a ClickHouse server")
        try:
            items, untimed = replays.in_order(replays.from_archive(store, start, end))
        finally:
            store.close()
    elif source == "kafka":
        names = {s.topics.name("raw_news"): "news", s.topics.name("raw_social"): "social"}
        topics = {t: kind or names.get(t) for t in topic} if topic else names
        try:
            items, untimed = replays.in_order(replays.from_topic(s.kafka, topics, start, end))  # type: ignore[arg-type]
        except RuntimeError as exc:
            _fail(f"{exc}: check --topic and kafka.bootstrap_servers")
    else:
        _fail(f"unknown source {source!r}: use 'files', 'archive' or 'kafka'")
    if not items:
        _fail("nothing to replay in that range")
    run_dir = s.var_dir / "replays" / rid
    _log(f"replay {rid}: {len(items)} items, {items[0].event_time:%Y-%m-%d %H:%M:%S} to "
         f"{items[-1].event_time:%Y-%m-%d %H:%M:%S} UTC, speed {speed}" + (f", {untimed} without event time left out" if untimed else ""))
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[rate]}"),
                  TimeElapsedColumn(), console=console) as progress:
        task = progress.add_task("publishing", total=len(items), rate="")
        began = time.monotonic()

        def advance(n: int, at) -> None:
            done = progress.tasks[task].completed + n
            progress.update(task, advance=n, description=f"event time {at:%Y-%m-%d %H:%M:%S}",
                            rate=f"{done / max(time.monotonic() - began, 1e-6):,.0f} items/s")

        try:
            row = replays.run(s, items, rid, run_dir, pace, workers, source, untimed, on_progress=advance)
        except (RuntimeError, TimeoutError, ConnectionError) as exc:
            _fail(str(exc))
    counts = row["counts"]
    print(json.dumps({"run_id": rid, "store": redact(row["store"]), "database": row["database"], "topics_prefix": row["topics_prefix"],
                      "items": row["items"], "documents": counts["documents"], "alerts": dict(row["alerts"]),
                      "models": row["models"], "rules_hash": row["rules_hash"]}, indent=2, default=str))


@app.command()
def backtest(
    runs: Annotated[list[str], typer.Argument(help="replay run ids to compare (e.g. one per rule set)")],
    events: Annotated[Optional[Path], typer.Option(help="labelled events: CSV ticker,time,kind")] = None,
    prices: Annotated[Optional[Path], typer.Option(help="prices: CSV ticker,time,price")] = None,
    horizon: Annotated[str, typer.Option(help="how long after an alert counts, e.g. 30m, 2h")] = "30m",
    alertname: Annotated[Optional[str], typer.Option(help="only this rule's alerts")] = None,
    out: Annotated[Optional[Path], typer.Option(help="output folder (default: var/backtests/<time>)")] = None,
) -> None:
    """Evaluate replay runs' alerts against outcomes: precision, recall and lead time against labelled events;
    abnormal return and volatility after alerts against random times (an event study) from prices. Writes
    backtest.json and backtest.html, one column per run."""
    from datetime import datetime, timezone

    from alerts import backtest_report as report
    from alerts.config import parse_duration
    from sentimon import replay as replays
    from streams.store import Store, StoreUnavailable

    if events is None and prices is None:
        _fail("give --events CSV (ticker,time,kind) and/or --prices CSV (ticker,time,price)")
    for path in (events, prices):
        if path is not None and not path.is_file():
            _fail(f"no such file: {path}")
    s = get_settings()
    signals = {}
    for rid in runs:
        try:
            rs = replays.run_settings(s, replays.check_run_id(rid), s.var_dir / "replays" / rid)
            store = Store(rs.store_dsn, rs.store.database)
        except (ValueError, StoreUnavailable) as exc:
            _fail(f"run {rid}: {exc}")
        try:
            recorded = store.query("SELECT count() FROM {db}.runs")[0][0]
            signals[rid] = report.run_alerts(store, alertname)
        except Exception as exc:  # a missing database or table: say which run
            recorded, problem = 0, exc
        else:
            problem = None
        finally:
            store.close()
        if not recorded:
            _fail(f"run {rid}: no such replay run in {redact(rs.store_dsn)} ({rs.store.database})" + (f": {problem}" if problem else ""))
    try:
        result = report.evaluate(signals, report.read_events(events) if events else None,
                                 report.read_prices(prices) if prices else None, parse_duration(horizon))
    except (KeyError, ValueError) as exc:
        _fail(f"bad CSV: {exc}")
    folder = out or s.var_dir / "backtests" / datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
    for path in report.write(result, folder):
        print(path)
