"""``sentimon demo``: the whole pipeline on the embedded default, with a live terminal summary.

Starts tansu, a store worker (chDB under ``var/demo/<run>/store``) and a pipeline worker, streams the
synthetic feed with an injected event (event time runs ``speed`` times faster than the clock and ends
at "now", so per-minute aggregates fill up within a short run), shows throughput, dead letters, the
per-entity movers and the alerts a trading desk receives while it runs, drains, and prints the final
summary.

The desk is a verifying webhook receiver on loopback (:class:`sentimon.local.receiver.WebhookReceiver`) with a
fresh signing secret, unless ``SENTIMON_DESK_WEBHOOK_URL`` names a desk of your own. The event lasts
from 40% to 60% of the run's event time: the desk sees the burst fire and, after the recovery, resolve.
"""

from __future__ import annotations

import base64
import os
import threading
import time
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone

import orjson
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from sentimon.settings import Settings
from sentimon.local.receiver import WebhookReceiver
from sentimon.view import movers_table, notifications_table, sparkline
from streams import metrics
from sentimon.cluster import LocalCluster
from streams.feed import publish
from streams.synthetic import Injected, SyntheticFeed


def _stats(published: int, m: dict[str, float], rate: float) -> Table:
    dead = metrics.dead(m)
    table = Table.grid(padding=(0, 3))
    for _ in range(7):
        table.add_column(justify="right")
    table.add_row(*(Text(h, style="dim") for h in ("published", "ingested", "scored", "stored", "docs/s stored",
                                                   "dead letters", "duplicates")))
    table.add_row(str(published), str(int(m.get("produced.ingest", 0))), str(int(m.get("produced.scoring", 0))),
                  str(int(m.get("produced.sink", 0))), f"{rate:.0f}", str(int(dead)), str(int(m.get("duplicates", 0))))
    return table


@contextmanager
def desk_receiver(console: Console):
    """A verifying desk endpoint on loopback, wired to the shipped rules' ``desk`` receiver through the
    environment the workers inherit; None when the user set SENTIMON_DESK_WEBHOOK_URL (their own desk)."""
    if os.environ.get("SENTIMON_DESK_WEBHOOK_URL"):
        console.print(f"alerts go to your desk at {os.environ['SENTIMON_DESK_WEBHOOK_URL']}")
        yield None
        return
    secret = os.environ.get("SENTIMON_DESK_WEBHOOK_SECRET") or "whsec_" + base64.b64encode(os.urandom(24)).decode()
    receiver = WebhookReceiver(secret).start()
    saved = {k: os.environ.get(k) for k in ("SENTIMON_DESK_WEBHOOK_URL", "SENTIMON_DESK_WEBHOOK_SECRET")}
    os.environ.update(SENTIMON_DESK_WEBHOOK_URL=receiver.url, SENTIMON_DESK_WEBHOOK_SECRET=secret)
    try:
        yield receiver
    finally:
        receiver.stop()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _desk(receiver: WebhookReceiver | None) -> list:
    return sorted(receiver.inbox.unique.values(), key=lambda r: r.at) if receiver else []


def _open(received: list, drained_for: float) -> bool:
    """Whether to wait on after the input is stored: the last windows are evaluated once the watermark is
    released (alerts.idle_partition_s), and a firing alert's resolution is notified up to a group
    interval later; waiting ends when every alert that fired has resolved, or after 45 s."""
    if drained_for < 12:
        return True
    fired = {a["fingerprint"] for r in received for a in r.payload.get("alerts", []) if a["status"] == "firing"}
    ended = {a["fingerprint"] for r in received for a in r.payload.get("alerts", []) if a["status"] == "resolved"}
    return bool(fired - ended) and drained_for < 45


def _final(console: Console, cluster: LocalCluster, store, pipeline, event: Injected, published: int,
           receiver: WebhookReceiver | None = None) -> dict:
    summary = store.get("/api/summary?window=5&baseline=30&limit=8")
    top = [t["entity"] for t in summary["top"]]
    if event.target not in top and event.kind != "storm":
        top = [event.target] + top[:7]
    spark = Table(title="per-ticker mean sentiment, 2-minute buckets of event time (oldest left)", title_justify="left")
    for col in ("ticker", "stories", "mean", "trend"):
        spark.add_column(col, justify="left" if col in ("ticker", "trend") else "right")
    grid = [r["time"] for r in store.get("/api/entity/all/?minutes=600&bucket=2")["series"]]
    for ticker in top:
        series = store.get(f"/api/entity/{ticker}/?minutes=600&bucket=2")["series"]
        by_time = {r["time"]: r["mean_score"] for r in series}
        stories = sum(r["stories"] for r in series)
        total = sum((r["mean_score"] or 0) * r["stories"] for r in series)
        spark.add_row(Text(ticker, style="bold yellow" if ticker == event.target else ""), str(stories),
                      f"{total / stories:+.2f}" if stories else "–", sparkline([by_time.get(t) for t in grid]))
    counts, latency = summary["counts"], (store.health() or {}).get("latency", {})
    console.print(movers_table(summary["movers"], "movers at the end: last 5 min vs the 30 min before", event.target))
    console.print(spark)
    dead = int(metrics.dead(metrics.combined(pipeline.metrics(), summary["metrics"])))
    p50, p99 = latency.get("pipeline_p50_s"), latency.get("pipeline_p99_s")
    console.print(
        f"published {published}, stored {counts['documents']} documents / {counts['scores']} scores "
        f"({counts['aggregated_stories']} distinct stories in the aggregates), dead letters {dead}; "
        f"ingest -> stored latency p50 {p50 or 0:.2f} s, p99 {p99 or 0:.2f} s"
    )
    console.print(f"injected: {event.kind} burst about {event.target} from 40% to 60% of the run (highlighted; "
                  "a gap in a trend is a bucket without stories)")
    if receiver is not None:
        received = _desk(receiver)
        console.print(notifications_table(received, "the desk's webhook notifications (signatures verified)"))
        inbox = receiver.inbox
        console.print(f"desk: {len(inbox.unique)} signed notifications verified, {inbox.duplicates} redeliveries "
                      f"dropped on webhook-id, {inbox.rejected} refused; every alert change: {store.url}/api/alerts")
        summary["desk"] = [a for r in received for a in r.payload.get("alerts", [])]
    console.print(f"logs and store: {cluster.workdir}; a snapshot of the run: SENTIMON_STORE__DSN=chdb://{cluster.workdir}/store "
                  "sentimon report --from ... --to ...")
    return summary


def model_line(settings: Settings) -> str:
    """Which model scores the demo, its validation figures (from its ``metrics.json``) and, for a test
    model, that it is one."""
    from models import artifact
    from models.profiles import test_model_warning

    ref = artifact.resolve(settings.model, settings.models_dir)
    released = ref.path.is_relative_to(artifact.RELEASED_DIR)
    line = f"model: {ref.name} v{ref.version}" + (" (the released model)" if released else f" ({ref.path})")
    metrics_file = ref.path / "metrics.json"
    if metrics_file.is_file():
        validation = artifact.read_json(metrics_file).get("validation", {})
        figures = [f"{task} {entry['model']['accuracy']:.3f}" for task, entry in validation.items() if "model" in entry]
        if figures:
            line += f"; validation accuracy {', '.join(figures)}"
    warning = test_model_warning(ref.name, artifact.load_training(ref.path))
    return line + (f"\n[yellow]{warning}[/yellow]" if warning else "")


def run_demo(settings: Settings, duration_s: float, rate: float, event_spec: str, speed: float = 15.0,
             scorer: str = "triton", console: Console | None = None) -> dict:
    console = console or Console()
    run_dir = settings.var_dir / "demo" / datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
    store_dsn = f"chdb://{(run_dir / 'store').resolve()}"
    kind, _, target = event_spec.partition(":")
    # the event from 40% to 60% of the event time: a baseline before it, time to recover after it (the
    # burst rule keeps firing 5 minutes after its last bad window)
    event = Injected(kind, target, at_s=duration_s * speed * 0.4, duration_s=duration_s * speed * 0.2)  # type: ignore[arg-type]
    settings = settings.model_copy(update={
        "store": settings.store.model_copy(update={"dsn": store_dsn}),
        "scoring": settings.scoring.model_copy(update={"backend": scorer}),
        # the feed ends with the run: release the watermark a few seconds after the input stops
        "alerts": settings.alerts.model_copy(update={"idle_partition_s": min(settings.alerts.idle_partition_s, 5.0)}),
    })
    console.print(f"[bold]Sentimon demo[/bold]: {duration_s:.0f} s at {rate:.0f} items/s, event time x{speed:g}; "
                  f"starting tansu, the store worker and a pipeline worker (logs in {run_dir}) ...")
    if scorer != "noop":
        console.print(model_line(settings))
    cluster = LocalCluster(settings, run_dir)
    with desk_receiver(console) as receiver, cluster:
        if scorer == "triton":
            console.print("starting Triton (tritonserver, python backend on the CPU) with the model ...")
            triton = cluster.start_triton()
            console.print(f"Triton ready: gRPC {triton.grpc_url}, metrics {triton.metrics_url}")
        store = cluster.start_worker("store")
        pipeline = cluster.start_worker("pipeline")
        console.print(f"[bold]live view: {store.url}/live/[/bold]   API: {store.url}/api/v1/openapi.json   "
                      f"metrics: {store.url}/metrics, {pipeline.url}/metrics")
        # event time ends at 'now': the feed starts duration*speed seconds in the past
        feed = SyntheticFeed(seed=settings.seed, start=datetime.now(timezone.utc) - timedelta(seconds=duration_s * speed),
                             events=(event,), rhythm=False)
        n_items = int(duration_s * rate)
        published = [0]

        def run_feed() -> None:
            items = ((k, orjson.dumps(i)) for _, k, i in feed.items(n_items, rate / speed))  # per event-second
            publish(cluster.settings, items, rate, on_progress=lambda n: published.__setitem__(0, published[0] + n))

        feeder = threading.Thread(target=run_feed, daemon=True)
        started = time.monotonic()
        feeder.start()
        last_stored, last_t, docs_rate = 0.0, started, 0.0
        drained_at = started
        with Live(console=console, refresh_per_second=2, transient=False) as live:
            while True:
                for w in cluster.workers:
                    if not w.alive():
                        raise RuntimeError(f"worker {w.name} died (exit {w.process.returncode}); last log lines:\n{w.tail()}")
                elapsed = time.monotonic() - started
                try:
                    summary = store.get("/api/summary?window=5&baseline=30&limit=8")
                except OSError:
                    summary = {"movers": [], "latest_minute": None, "metrics": {}}
                m = metrics.combined(pipeline.metrics(), summary["metrics"])
                stored = m.get("produced.sink", 0.0)
                done = not feeder.is_alive()
                handled = metrics.handled(m)
                all_stored = done and handled >= published[0]
                if not all_stored:
                    drained_at = time.monotonic()
                now = time.monotonic()
                docs_rate = 0.7 * docs_rate + 0.3 * (stored - last_stored) / max(now - last_t, 1e-6)
                last_stored, last_t = stored, now
                header = Text(f"{min(elapsed, duration_s):5.0f}/{duration_s:.0f} s   event time {summary['latest_minute'] or '-'}"
                              + ("   all stored; evaluating the last windows" if all_stored else ""), style="bold")
                received = _desk(receiver)
                live.update(Group(header, _stats(published[0], m, docs_rate),
                                  movers_table(summary["movers"], "movers: last 5 min vs the 30 min before (event time)",
                                               event.target),
                                  *([notifications_table(received[-6:], "desk notifications")] if received else [])))
                if all_stored and not _open(received, drained_for=time.monotonic() - drained_at):
                    break
                if done and elapsed > duration_s + 90:
                    break
                time.sleep(1.0)
        return _final(console, cluster, store, pipeline, event, published[0], receiver)
