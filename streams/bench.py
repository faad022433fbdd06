"""Pipeline benchmark (``make bench``, pipeline part), side by side in one run on one broker:

1. raw consume: confluent-kafka reading the same raw messages (the floor any consumer pays), and a bare
   Faust agent taking and acknowledging them (the ceiling of one Faust hop: each stage pays it);
2. the pipeline (ingest -> scoring -> store, two worker processes) with the no-op classifier: its own
   overhead, in documents per second through one pipeline worker;
3. the model alone in this process (batch throughput, same threads), then the pipeline with the
   model: the ratio says whether the pipeline is ever the bottleneck;
4. latency at half of (3)'s capacity: live items, p50/p99 of ingested -> stored and event time ->
   stored, computed exactly from the store's ``stored_at`` column.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path

import orjson
from rich.console import Console
from rich.table import Table

from sentimon.settings import Settings
from streams.broker import Broker
from streams.cluster import LocalCluster, WorkerProcess
from streams.feed import publish
from streams.kafka.consumer import read
from streams.synthetic import SyntheticFeed


def _items(n: int, seed: int) -> list[tuple[str, bytes]]:
    """A backlog of ``n`` items with event times a day in the past (apart from the live latency items)."""
    start = datetime.now(timezone.utc) - timedelta(days=1)
    return [(k, orjson.dumps(i)) for _, k, i in SyntheticFeed(seed=seed, start=start, rhythm=False).items(n, 50.0)]


def _drain(pipeline: WorkerProcess, store: WorkerProcess, n: int, timeout_s: float) -> float:
    """Seconds from the pipeline's first consumed message until the store has stored ``n`` (backlog run)."""
    deadline = time.monotonic() + timeout_s
    first = None
    while time.monotonic() < deadline:
        if first is None and pipeline.metrics().get("consumed.ingest", 0) > 0:
            first = time.monotonic()
        if store.metrics().get("produced.sink", 0) >= n:
            return time.monotonic() - (first or time.monotonic())
        for w in (pipeline, store):
            if not w.alive():
                raise RuntimeError(f"{w.name} died:\n{w.tail()}")
        time.sleep(0.05)
    raise TimeoutError(f"{n} documents not stored within {timeout_s} s")


def _pipeline_run(settings: Settings, workdir: Path, prefix: str, items, backend: str) -> tuple[float, LocalCluster]:
    s = settings.model_copy(update={
        "topics": settings.topics.model_copy(update={"prefix": prefix}),
        "store": settings.store.model_copy(update={"dsn": f"chdb://{(workdir / prefix.strip('.') / 'store').resolve()}"}),
        "scoring": settings.scoring.model_copy(update={"backend": backend}),
    })
    cluster = LocalCluster(s, workdir / prefix.strip("."), start_broker=False).start()
    publish(cluster.settings, items)  # a backlog: the workers start on a full topic
    store = cluster.start_worker("store")
    pipeline = cluster.start_worker("pipeline")
    return _drain(pipeline, store, len(items), 1800), cluster


def _latencies(cluster: LocalCluster, since: datetime) -> dict[str, float]:
    with cluster.store() as store:
        row = store.query(
            "SELECT count(), quantiles(0.5, 0.99)(dateDiff('millisecond', d.ingested_at, s.stored_at)), "
            "quantiles(0.5, 0.99)(dateDiff('millisecond', s.event_time, s.stored_at)) "
            "FROM {db}.scores AS s INNER JOIN {db}.documents AS d USING doc_id WHERE s.event_time >= {since:DateTime64(3)}",
            {"since": since},
        )[0]
    n, pipe, e2e = row
    return {"documents": n, "pipeline_p50_s": pipe[0] / 1000, "pipeline_p99_s": pipe[1] / 1000,
            "end_to_end_p50_s": e2e[0] / 1000, "end_to_end_p99_s": e2e[1] / 1000}


def run_pipeline_bench(settings: Settings, out_dir: Path, *, quick: bool = False,
                       log: Callable[[str], None] = print) -> dict:
    n_noop, n_model, latency_s = (3000, 300, 10) if quick else (30000, 3000, 40)
    workdir = out_dir / "pipeline-run"
    result: dict = {"machine_note": "2 cores shared by tansu, both workers and the feed", "quick": quick}
    with Broker(log=out_dir / "bench-broker.log") as broker:
        settings = settings.model_copy(update={
            "kafka": settings.kafka.model_copy(update={"bootstrap_servers": broker.bootstrap}),
            "stream": settings.stream.model_copy(update={"max_batch": 1024}),
        })
        items = _items(n_noop, seed=1)

        log(f"1/4 raw confluent-kafka consume of {n_noop} messages")
        raw = settings.model_copy(update={"topics": settings.topics.model_copy(update={"prefix": "consume."})})
        LocalCluster(raw, workdir / "consume", start_broker=False).start()
        publish(raw, [("news", v) for _, v in items])
        first = last = None
        for count, _ in enumerate(read(raw.kafka, raw.topics.name("raw_news"), limit=n_noop, idle_s=2.0), 1):
            last = time.monotonic()
            first = first or last
        result["raw_consume_per_s"] = count / max(last - first, 1e-9)
        result["faust_hop_per_s"] = _faust_floor(raw, raw.topics.name("raw_news"), n_noop)

        log(f"2/4 pipeline with the no-op classifier, {n_noop} documents")
        seconds, cluster = _pipeline_run(settings, workdir, "noop.", items, "noop")
        cluster.stop()
        result["noop_pipeline_per_s"] = n_noop / seconds

        log("3/4 the model alone, then the pipeline with the model")
        from models import artifact
        from models.classifier import Classifier
        import torch

        torch.set_num_threads(settings.threads)
        ref = artifact.resolve(settings.model, settings.models_dir)
        classifier = Classifier.load(ref.path, batch_size=settings.scoring.batch_size)
        texts = [orjson.loads(v).get("headline") or orjson.loads(v)["text"] for _, v in items[:n_model]]
        classifier.predict(texts[:64])  # warm up
        t0 = time.perf_counter()
        classifier.predict(texts)
        result["model_alone_per_s"] = len(texts) / (time.perf_counter() - t0)
        result["model"] = f"{ref.name}/{ref.version}"
        del classifier
        model_items = _items(n_model, seed=2)
        seconds, cluster = _pipeline_run(settings, workdir, "model.", model_items, "local")
        result["model_pipeline_per_s"] = n_model / seconds

        rate = max(1.0, result["model_pipeline_per_s"] / 2)
        log(f"4/4 latency at half capacity: {rate:.0f} live documents/s for {latency_s} s")
        since = datetime.now(timezone.utc)
        live = SyntheticFeed(seed=3, rhythm=False, live=True)
        n_live = int(rate * latency_s)
        publish(cluster.settings, ((k, orjson.dumps(i)) for _, k, i in live.items(n_live, rate)), rate)
        store = next(w for w in cluster.workers if w.role == "store")
        _wait(lambda: store.metrics().get("produced.sink", 0) >= n_model + n_live, 300)
        result["latency_rate_per_s"] = rate
        result["latency"] = _latencies(cluster, since)
        cluster.stop()

    result["noop_vs_raw"] = result["noop_pipeline_per_s"] / result["raw_consume_per_s"]
    result["model_pipeline_vs_model"] = result["model_pipeline_per_s"] / result["model_alone_per_s"]
    _print(result)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"pipeline-{datetime.now(timezone.utc):%Y%m%dT%H%M%S}.json"
    path.write_text(json.dumps(result, indent=2))
    log(f"saved {path}")
    return result


def _faust_floor(settings: Settings, topic: str, n: int) -> float:
    """Messages/s of a bare Faust agent over ``topic`` (see :mod:`streams.faust_floor`)."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "streams.faust_floor", settings.kafka.bootstrap_servers, topic, str(n)],
                         capture_output=True, text=True, timeout=600)
    for line in out.stdout.splitlines():
        if "FLOOR " in line:  # the worker may print terminal control codes first
            return float(line.split("FLOOR ")[1].split()[0])
    raise RuntimeError(f"the Faust floor run failed:\n{out.stderr[-2000:]}")


def _wait(condition, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and not condition():
        time.sleep(0.2)


def _print(r: dict) -> None:
    table = Table(title="pipeline benchmark (one run, side by side)", title_justify="left")
    table.add_column("measurement")
    table.add_column("value", justify="right")
    table.add_column("target / note")
    table.add_row("raw confluent-kafka consume", f"{r['raw_consume_per_s']:,.0f} msg/s", "floor of any consumer")
    table.add_row("bare Faust agent (take + ack)", f"{r['faust_hop_per_s']:,.0f} msg/s",
                  "ceiling of one Faust hop; ingest, scoring and sink each pay one")
    table.add_row("pipeline, no-op classifier", f"{r['noop_pipeline_per_s']:,.0f} docs/s",
                  f">= 5,000 per worker; {r['noop_vs_raw']:.1%} of raw consume")
    table.add_row("model alone (in-process, batch)", f"{r['model_alone_per_s']:,.0f} texts/s", r["model"])
    table.add_row("pipeline with the model", f"{r['model_pipeline_per_s']:,.0f} docs/s",
                  f">= 90% of the model alone: {r['model_pipeline_vs_model']:.0%}")
    lat = r["latency"]
    table.add_row(f"latency at {r['latency_rate_per_s']:.0f} docs/s (half of the model pipeline), ingested -> stored",
                  f"p50 {lat['pipeline_p50_s']:.2f} s, p99 {lat['pipeline_p99_s']:.2f} s", f"{lat['documents']} documents")
    table.add_row("latency, event time -> stored", f"p50 {lat['end_to_end_p50_s']:.2f} s, p99 {lat['end_to_end_p99_s']:.2f} s", "")
    Console().print(table)
