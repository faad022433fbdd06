"""Pipeline benchmark (``make bench``, pipeline part), side by side in one run on one broker:

1. raw consume: confluent-kafka reading the same raw messages (the floor any consumer pays), and a bare
   Faust agent taking and acknowledging them (the ceiling of one Faust hop: each stage pays it);
2. the no-op classifier (the pipeline's own cost), one worker at a time over the same backlog: the
   pipeline worker (ingest + scoring), then the store worker; with one item per raw message, then with
   JSON Lines raw messages (``BULK`` items each, as a bulk feed delivers them);
3. the model alone in this process (batch throughput, same threads, the texts the scoring stage will
   see) and the pipeline worker with the model (loaded before the backlog arrives), alternated three
   times (alone, pipeline, alone, ...: the machine drifts): the median ratio says whether the pipeline
   is ever the bottleneck. Each worker has the machine to itself, as in (2); the store worker then
   stores every document. Once more with the store worker beside it (both on the same machine). Then
   the same pairs through a local Triton server: Triton alone (the stage's own client) vs the pipeline,
   with one item per raw message and then with ``BULK`` items per raw message;
4. latency at half of (3)'s capacity: live items, p50/p99 of ingested -> stored and event time ->
   stored, computed exactly from the store's ``stored_at`` column;
5. the through-Triton pairs again with tritonserver on a core of its own and everything else on the rest
   (as deployed, where Triton has its own machine): whether the pipeline keeps a Triton it does not share
   cores with busy.
"""

from __future__ import annotations

import asyncio
import os
import time
from statistics import median_high
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from datetime import datetime, timezone
from pathlib import Path

import orjson
from rich.console import Console
from rich.table import Table

from bench import cpu
from bench.results import save_result

from sentimon.settings import Settings
from sentimon.local.broker import Broker
from sentimon.cluster import LocalCluster, WorkerProcess
from streams.feed import publish
from streams.kafka.consumer import read
from streams.synthetic import SyntheticFeed
from bench.triton import through_triton
from bench.workload import backlog, scoring_texts

BULK = 50  # items per raw message in the JSON Lines run


def _pipeline_alone(cluster: LocalCluster, items, per_message: int = 1) -> tuple[float, dict]:
    """The pipeline worker's docs/s over ``items`` with the machine to itself (the store worker drains the
    scores afterwards and must store every document), and the worker's counters with ``cpu_s``: CPU
    seconds by role while it worked (:mod:`bench.cpu`). The backlog is published first, so the feed's own
    work does not share the cores with the worker measured. ``per_message`` > 1: raw messages of that
    many items (JSON Lines)."""
    publish(cluster.settings, items, per_message=per_message)
    pipeline = cluster.start_worker("pipeline")  # ready: the scorer is loaded / reachable
    before = cpu.snapshot()
    rate = drain_rate(pipeline, "ingest", "scoring", len(items), 1800)
    counters = {**pipeline.metrics(), "cpu_s": cpu.by_role(before, cpu.snapshot(), pipeline.process.pid)}
    pipeline.stop()
    store = cluster.start_worker("store")
    _wait(lambda: store.metrics().get("produced.sink", 0) >= len(items), 300)
    stored = store.metrics().get("produced.sink", 0)
    if stored != len(items):
        raise RuntimeError(f"{cluster.settings.topics.prefix}: {stored} of {len(items)} documents stored")
    return rate, counters


def _pipeline_beside_store(cluster: LocalCluster, items) -> float:
    """The pipeline worker's docs/s over ``items`` with the store worker storing beside it on the same cores."""
    store = cluster.start_worker("store")
    pipeline = cluster.start_worker("pipeline")
    publish(cluster.settings, items)
    rate = drain_rate(pipeline, "ingest", "scoring", len(items), 1800, [store])
    _wait(lambda: store.metrics().get("produced.sink", 0) >= len(items), 300)
    return rate


def _paired(reps: int, alone: Callable[[], float], pipeline: Callable[[int], tuple[float, dict]],
            log: Callable[[str], None]) -> dict:
    """alone, pipeline, alone, ..., pipeline, alone: each pipeline run against the mean of the alone runs
    on either side of it, because this shared machine drifts by 15-20% within minutes. The ratio
    reported is the median of the ``reps`` pairs."""
    alone_runs, runs, ratios, fills, steady, batches, counters = [alone()], [], [], [], [], [], {}
    cpu_runs = []
    first_ingest, handoff = [], []  # the fill split: ingest's first batch (delivered), then until scoring took one
    for rep in range(reps):
        rate, counters = pipeline(rep)
        cpu_runs.append(counters.pop("cpu_s", {}))
        alone_runs.append(alone())
        runs.append(rate)
        fills.append(counters["first_batch.scoring"] - counters["first_batch.ingest"])
        first_ingest.append(counters["first_done.ingest"] - counters["first_batch.ingest"])
        handoff.append(counters["first_batch.scoring"] - counters["first_done.ingest"])
        around = (alone_runs[-2] + alone_runs[-1]) / 2
        ratios.append(rate / around)
        # the same run counted from its first scoring batch: what the pipeline sustains once filled
        n = counters["produced.scoring"]
        steady.append(n / max(n / rate - fills[-1], 1e-9) / around)
        batches.append(counters["consumed.scoring"] / max(1.0, counters.get("batches.scoring", 1.0)))
        log(f"   pair {rep + 1}/{reps}: pipeline {rate:,.0f}/s, alone {alone_runs[-2]:,.0f} and {alone_runs[-1]:,.0f}/s: "
            f"{ratios[-1]:.0%} ({steady[-1]:.0%} once filled: fill {fills[-1]:.2f} s = ingest's first batch "
            f"{first_ingest[-1]:.2f} s + {handoff[-1]:.2f} s to scoring; {batches[-1]:,.0f} documents per scoring batch)")
    return {"alone_runs_per_s": alone_runs, "pipeline_runs_per_s": runs, "ratios": ratios, "fill_s": fills,
            "steady_ratios": steady, "scoring_batch_docs": batches, "fill_first_ingest_s": first_ingest,
            "fill_handoff_s": handoff, "cpu_s": cpu_runs,
            "alone_per_s": median_high(alone_runs), "pipeline_per_s": median_high(runs), "ratio": median_high(ratios),
            "counters": counters}


def _fresh_runs(settings: Settings, workdir: Path, name: str, backend: str, items,
                per_message: int = 1) -> Callable[[int], tuple[float, dict]]:
    """:func:`_pipeline_alone` on topics and a store of its own per run (``<name><run>.``), for :func:`_paired`."""
    def run(rep: int) -> tuple[float, dict]:
        cluster = local_cluster(settings, workdir, f"{name}{rep}.", backend)
        try:
            return _pipeline_alone(cluster, items, per_message)
        finally:
            cluster.stop()

    return run


def drain_rate(worker: WorkerProcess, first: str, last: str, n: int, timeout_s: float, others=()) -> float:
    """Documents/s of ``worker`` over a backlog of ``n``: from the start of stage ``first``'s first
    micro-batch to the end of the batch that brought stage ``last``'s output to ``n`` (the worker's
    own clock, so polling adds nothing)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        m = worker.metrics()
        if m.get(f"produced.{last}", 0) >= n:
            return n / max(m[f"last_batch.{last}"] - m[f"first_batch.{first}"], 1e-9)
        for w in (worker, *others):
            if not w.alive():
                raise RuntimeError(f"{w.name} died:\n{w.tail()}")
        time.sleep(0.5)  # the rate comes from the worker's own clock: polling less often only spares its loop
    raise TimeoutError(f"{worker.name}: stage {last} did not produce {n} within {timeout_s} s")


def _texts_per_s(classifier, texts: list[str]) -> float:
    """The model alone: texts/s of one in-process ``predict`` over ``texts``."""
    t0 = time.perf_counter()
    classifier.predict(texts)
    return len(texts) / (time.perf_counter() - t0)


def local_cluster(settings: Settings, workdir: Path, prefix: str, backend: str) -> LocalCluster:
    """The workers of one measured run, started on the broker already running: topics under ``prefix``, a
    store of their own under ``workdir/<prefix>`` and the scoring ``backend`` given."""
    s = settings.model_copy(update={
        "topics": settings.topics.model_copy(update={"prefix": prefix}),
        "store": settings.store.model_copy(update={"dsn": f"chdb://{(workdir / prefix.strip('.') / 'store').resolve()}"}),
        "scoring": settings.scoring.model_copy(update={"backend": backend}),
    })
    return LocalCluster(s, workdir / prefix.strip("."), start_broker=False).start()


def _per_worker(settings: Settings, workdir: Path, prefix: str, items, per_message: int) -> tuple[float, float]:
    """No-op classifier, one worker at a time over the same backlog: (pipeline worker docs/s, store worker docs/s).
    The backlog is published first, so the feed's own work does not share the cores with the worker measured
    (each rate counts from the worker's first micro-batch, so its start-up does not count either)."""
    cluster = local_cluster(settings, workdir, prefix, "noop")
    try:
        publish(cluster.settings, items, per_message=per_message)
        pipeline = cluster.start_worker("pipeline")
        pipeline_rate = drain_rate(pipeline, "ingest", "scoring", len(items), 900)
        pipeline.stop()
        store = cluster.start_worker("store")
        store_rate = drain_rate(store, "sink", "sink", len(items), 900)
        return pipeline_rate, store_rate
    finally:
        cluster.stop()


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
    # 6,000 model documents: a backlog long enough that the pipeline's fill (its first documents crossing
    # ingest and Faust before the model has work, ~1 s) does not dominate a throughput ratio (~25 s a run)
    n_noop, n_model, latency_s, reps = (3000, 300, 10, 1) if quick else (30000, 6000, 40, 3)
    workdir = out_dir / "pipeline-run"
    result: dict = {"machine_note": f"{os.cpu_count()} cores shared by tansu, both workers and the feed", "quick": quick}
    with Broker(log=out_dir / "bench-broker.log") as broker:
        settings = on_broker(settings, broker)
        items = backlog(n_noop, seed=1)

        log(f"1/5 raw confluent-kafka consume of {n_noop} messages")
        raw = settings.model_copy(update={"topics": settings.topics.model_copy(update={"prefix": "consume."})})
        LocalCluster(raw, workdir / "consume", start_broker=False).start()
        publish(raw, [("news", v) for _, v in items])
        first = last = None
        for count, _ in enumerate(read(raw.kafka, raw.topics.name("raw_news"), limit=n_noop, idle_s=2.0), 1):
            last = time.monotonic()
            first = first or last
        result["raw_consume_per_s"] = count / max(last - first, 1e-9)
        result["faust_hop_per_s"] = _faust_floor(raw, raw.topics.name("raw_news"), n_noop)
        result["faust_hop_plain_delivery_per_s"] = _faust_floor(raw, raw.topics.name("raw_news"), n_noop, "plain")

        log(f"2/5 pipeline with the no-op classifier, {n_noop} documents: one per raw message, then {BULK} per message")
        result["noop_pipeline_per_s"], result["noop_store_per_s"] = _per_worker(settings, workdir, "noop.", items, 1)
        result["bulk_per_message"] = BULK
        result["bulk_pipeline_per_s"], result["bulk_store_per_s"] = _per_worker(settings, workdir, "bulk.", items, BULK)

        log("3/5 the model alone, then the pipeline with the model")
        ref, classifier, model_items, texts = _model_inputs(settings, n_model)

        alone = partial(_texts_per_s, classifier, texts)

        result["model"] = f"{ref.name}/{ref.version} ({settings.scoring.runtime})"
        model = _paired(reps, alone, _fresh_runs(settings, workdir, "model", "local", model_items), log)
        m = model.pop("counters")
        result["model_pipeline"] = model
        result["model_pipeline_per_s"] = model["pipeline_per_s"]
        result["model_alone_per_s"] = model["alone_per_s"]
        result["model_pipeline_vs_model"] = result["pipeline_vs_model_ratio"] = model["ratio"]
        result["model_share_of_pipeline"] = m["inference_seconds"] / (m["last_batch.scoring"] - m["first_batch.ingest"])
        cluster = local_cluster(settings, workdir, "beside.", "local")
        result["model_beside_store_per_s"] = _pipeline_beside_store(cluster, model_items)
        cluster.stop()
        result["model_beside_store_vs_model"] = result["model_beside_store_per_s"] / alone()

        log("3b/5 Triton alone (the scoring stage's client, same texts), then the pipeline through Triton")
        result.update(_through_triton(settings, workdir, ref, classifier, texts, model_items, _triton_pairs(quick), log))
        log(f"3c/5 the same with the raw backlog in messages of {BULK} items (JSON Lines): Faust's cost per consumed "
            "message shared by as many documents")
        bulk = _through_triton(settings, workdir, ref, classifier, texts, model_items, _triton_pairs(quick), log, BULK)
        result["triton_bulk"] = bulk
        result["triton_bulk_pipeline_vs_triton_ratio"] = bulk["triton_pipeline_vs_triton_ratio"]
        del classifier, alone  # the model's memory goes back before the latency run starts its own
        cluster = local_cluster(settings, workdir, "latency.", "local")
        store = cluster.start_worker("store")
        cluster.start_worker("pipeline")

        rate = max(1.0, result["model_pipeline_per_s"] / 2)
        log(f"4/5 latency at half capacity: {rate:.0f} live documents/s for {latency_s} s")
        since = datetime.now(timezone.utc)
        live = SyntheticFeed(seed=3, rhythm=False, live=True)
        n_live = int(rate * latency_s)
        publish(cluster.settings, ((k, orjson.dumps(i)) for _, k, i in live.items(n_live, rate)), rate)
        _wait(lambda: store.metrics().get("produced.sink", 0) >= n_live, 300)
        result["latency_rate_per_s"] = rate
        result["latency"] = _latencies(cluster, since)
        cluster.stop()

    log("5/5 the through-Triton pairs once more with Triton on a core of its own, as deployed")
    own = run_through_triton_bench(settings, out_dir, quick=quick, triton_cores=1, log=log)
    result["triton_own_cores"] = {k: own[k] for k in ("machine_note", "triton_config", "triton_pipeline", "cpu_ms_per_doc",
                                                      "triton_alone_per_s", "triton_pipeline_per_s")}
    result["triton_own_cores_pipeline_vs_triton_ratio"] = own["triton_pipeline_vs_triton_ratio"]
    _print(result)
    save_result(out_dir, "pipeline", result, log)
    return result


def on_broker(settings: Settings, broker: Broker) -> Settings:
    """The benchmarks' settings: ``broker``, and ingest micro-batches of 1,024 raw messages."""
    return settings.model_copy(update={
        "kafka": settings.kafka.model_copy(update={"bootstrap_servers": broker.bootstrap}),
        "stream": settings.stream.model_copy(update={"max_batch": 1024}),
    })


def _model_inputs(settings: Settings, n: int):
    """The configured model loaded in this process (warmed up), a backlog of ``n`` raw items and the texts the
    scoring stage will see for them: (artifact ref, classifier, items, texts)."""
    from models import artifact
    from models.classifier import Classifier
    import torch

    torch.set_num_threads(settings.threads)
    ref = artifact.resolve(settings.model, settings.models_dir)
    classifier = Classifier.load(ref.path, runtime=settings.scoring.runtime, threads=settings.threads,
                                 batch_size=settings.scoring.batch_size, cache_dir=settings.onnx_cache_dir)
    items = backlog(n, seed=2)
    texts = scoring_texts(items)
    classifier.predict(texts[:64])  # warm up
    return ref, classifier, items, texts


def run_through_triton_bench(settings: Settings, out_dir: Path, *, quick: bool = False, per_message: int = 1,
                             triton_cores: int = 0, log: Callable[[str], None] = print) -> dict:
    """Only part 3b of :func:`run_pipeline_bench` (the pipeline through Triton against Triton alone, paired),
    the same code and sizes: a few minutes instead of the whole benchmark's quarter hour. ``per_message``
    > 1: the raw backlog in messages of that many items (JSON Lines), so Faust's cost per consumed message
    is shared by as many documents (saved as ``pipeline-triton-bulk``). ``triton_cores`` > 0: Triton on
    that many cores of its own (one single-thread instance each) and everything else (the broker, the
    worker, the benchmark's client) on the rest, in both arms of every pair, as on a deployment where
    Triton has its own machine (saved as ``pipeline-triton-own-cores``)."""
    n_model, reps = 300 if quick else 6000, _triton_pairs(quick)
    result: dict = {"quick": quick, "raw_items_per_message": per_message, "triton_cores": triton_cores}
    with _cores(settings, triton_cores) as (settings, note):
        result["machine_note"] = note
        with Broker(log=out_dir / "bench-broker.log") as broker:
            settings = on_broker(settings, broker)
            ref, classifier, items, texts = _model_inputs(settings, n_model)
            result["model"] = f"{ref.name}/{ref.version} ({settings.scoring.runtime})"
            log(f"Triton alone (the scoring stage's client, {len(texts)} texts), then the pipeline through Triton, "
                f"{reps} pairs ({per_message} raw item(s) per message; {note})")
            result.update(_through_triton(settings, out_dir / "pipeline-run", ref, classifier, texts, items, reps, log,
                                          per_message))
    tp = result["triton_pipeline"]
    log(f"pipeline through Triton {result['triton_pipeline_per_s']:,.0f} docs/s vs Triton alone "
        f"{result['triton_alone_per_s']:,.0f} texts/s ({result['triton_config']}; {note}): "
        f"{result['triton_pipeline_vs_triton']:.0%} (target >= 90%; median of the pairs "
        f"{', '.join(f'{x:.0%}' for x in tp['ratios'])}; once filled "
        f"{', '.join(f'{x:.0%}' for x in tp['steady_ratios'])}; fill {', '.join(f'{x:.2f}' for x in tp['fill_s'])} s)")
    log(_cpu_line(result))
    kind = "pipeline-triton" if per_message == 1 else "pipeline-triton-bulk"
    save_result(out_dir, f"{kind}-own-cores" if triton_cores else kind, result, log)
    return result


@contextmanager
def _cores(settings: Settings, triton_cores: int) -> Iterator[tuple[Settings, str]]:
    """``triton_cores`` > 0: settings that start Triton on the last that many cores (one single-thread
    instance each), and this process pinned to the others while the block runs, so the broker and workers it
    starts inherit them; yields (settings, a note saying where each part runs)."""
    usable = sorted(os.sched_getaffinity(0))
    if not triton_cores:
        yield settings, f"{len(usable)} cores shared by tansu, tritonserver and the worker"
        return
    if not 0 < triton_cores < len(usable):
        raise ValueError(f"--triton-cores {triton_cores}: give 1 to {len(usable) - 1}, so the pipeline keeps a core "
                         f"({len(usable)} usable here)")
    own, rest = usable[-triton_cores:], usable[:-triton_cores]
    os.sched_setaffinity(0, rest)
    try:
        yield (settings.model_copy(update={"triton": settings.triton.model_copy(
            update={"cpus": own, "instances": triton_cores, "threads": 1})}),
            f"tritonserver on core(s) {own}; tansu, the worker and the client on {rest}")
    finally:
        os.sched_setaffinity(0, usable)


def _triton_pairs(quick: bool) -> int:
    """Pairs of the through-Triton comparison: five, because its pairs spread from 73% to 96% on the shared
    cores (three runs of three pairs), so a median of three moved by several points between runs."""
    return 1 if quick else 5


def _through_triton(settings: Settings, workdir: Path, ref, classifier, texts: list[str], items, reps: int,
                    log: Callable[[str], None], per_message: int = 1) -> dict:
    """Triton alone (the scoring stage's own client over ``texts``) paired with the pipeline worker through
    Triton over ``items`` (:func:`_paired`), one local tritonserver for both; the result's triton_* keys."""
    name = "triton" if per_message == 1 else "triton-bulk"  # the topics and stores of these runs
    cluster = local_cluster(settings, workdir, f"{name}.", "local")
    alone_cpu: list[dict[str, float]] = []
    try:
        triton = cluster.start_triton()
        sc = cluster.settings.scoring

        def triton_alone() -> float:
            before = cpu.snapshot()
            cell = asyncio.run(through_triton(triton, ref, classifier, texts, sc.batch_size, sc.in_flight))
            alone_cpu.append(cpu.by_role(before, cpu.snapshot()))
            return cell["texts_per_s"]

        through = _paired(reps, triton_alone, _fresh_runs(cluster.settings, workdir, name, "triton", items, per_message), log)
    finally:
        cluster.stop()
    through.pop("counters")
    t = cluster.settings.triton
    split = {"triton_alone": cpu.per_document(alone_cpu, len(texts)),
             "pipeline": cpu.per_document(through.pop("cpu_s"), len(items))}
    return {"triton_config": f"{t.instances} x {t.kind}, {t.threads} thread(s); {sc.in_flight} in flight of {sc.batch_size}",
            "cpu_ms_per_doc": split,
            # on saturated shared cores, docs/s is inversely proportional to CPU per document
            "cpu_bound_ratio": sum(split["triton_alone"].values()) / max(sum(split["pipeline"].values()), 1e-9),
            "triton_pipeline": through, "triton_pipeline_per_s": through["pipeline_per_s"],
            "triton_alone_per_s": through["alone_per_s"], "triton_pipeline_vs_triton": through["ratio"],
            "triton_pipeline_vs_triton_ratio": through["ratio"]}


def _cpu_line(result: dict) -> str:
    split = result["cpu_ms_per_doc"]

    def roles(d: dict[str, float]) -> str:
        return ", ".join(f"{r} {v:.3f}" for r, v in sorted(d.items(), key=lambda kv: -kv[1]))

    line = (f"CPU ms per document: Triton alone {sum(split['triton_alone'].values()):.3f} ({roles(split['triton_alone'])}); "
            f"pipeline {sum(split['pipeline'].values()):.3f} ({roles(split['pipeline'])})")
    if result.get("triton_cores"):
        return line
    return f"{line}: on saturated shared cores the pipeline can reach {result['cpu_bound_ratio']:.0%} of Triton alone"


def _faust_floor(settings: Settings, topic: str, n: int, delivery: str = "prompt") -> float:
    """Messages/s of a bare Faust agent over ``topic`` (see :mod:`bench.faust_floor`; ``delivery``: 'prompt'
    as the workers deliver, 'plain' as Faust alone does)."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "bench.faust_floor", settings.kafka.bootstrap_servers, topic, str(n),
                          delivery],
                         capture_output=True, text=True, timeout=600, cwd=Path(__file__).resolve().parents[1])
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
                  "the ceiling of a worker's stage per consumed message")
    if "faust_hop_plain_delivery_per_s" in r:
        table.add_row("the same with Faust's own per-message delivery", f"{r['faust_hop_plain_delivery_per_s']:,.0f} msg/s",
                      "four tasks per message (streams.kafka.delivery)")
    table.add_row("pipeline worker, no-op classifier, 1 item per raw message", f"{r['noop_pipeline_per_s']:,.0f} docs/s",
                  f">= 5,000 per worker; {r['noop_pipeline_per_s'] / r['faust_hop_per_s']:.0%} of the bare Faust agent")
    table.add_row(f"pipeline worker, no-op classifier, {r['bulk_per_message']} items per raw message (JSON Lines)",
                  f"{r['bulk_pipeline_per_s']:,.0f} docs/s", ">= 5,000 per worker")
    table.add_row("store worker (validate, dedup check, Arrow inserts, views)",
                  f"{r['noop_store_per_s']:,.0f} / {r['bulk_store_per_s']:,.0f} docs/s", "after each of the two runs above")
    def runs(values) -> str:
        return ", ".join(f"{v:,.0f}" for v in values)

    def fills(paired) -> str:
        """The time from each run's first ingest batch to its first scoring batch (the pipeline filling), and
        the ratios counted from the first scoring batch (what the filled pipeline sustains)."""
        text = ", ".join(f"{x:.1f}" for x in paired.get("fill_s", [])) + " s"
        if paired.get("steady_ratios"):
            text += (f" (once filled: {', '.join(f'{x:.0%}' for x in paired['steady_ratios'])}; "
                     f"{median_high(paired['scoring_batch_docs']):,.0f} documents per scoring batch)")
        return text

    mp, tp = r["model_pipeline"], r["triton_pipeline"]
    table.add_row("model alone (in-process, batch)", f"{r['model_alone_per_s']:,.0f} texts/s",
                  f"{r['model']}; median of {runs(mp['alone_runs_per_s'])}, before, between and after the pipeline runs")
    table.add_row("pipeline worker with the model", f"{r['model_pipeline_per_s']:,.0f} docs/s",
                  f">= 90% of the model alone: {r['model_pipeline_vs_model']:.0%} (median of {len(mp['ratios'])} pairs: "
                  f"{', '.join(f'{x:.0%}' for x in mp['ratios'])}); the model ran {r['model_share_of_pipeline']:.0%} of the worker's time; "
                  f"fill {fills(mp)}")
    table.add_row("the same, the store worker storing beside it", f"{r['model_beside_store_per_s']:,.0f} docs/s",
                  f"{r['model_beside_store_vs_model']:.0%} of the model alone measured right after: the two workers share the machine's cores")
    table.add_row("Triton alone (the stage's client, same texts)", f"{r['triton_alone_per_s']:,.0f} texts/s",
                  f"{r['triton_config']}; median of {runs(tp['alone_runs_per_s'])}")
    table.add_row("pipeline worker through Triton", f"{r['triton_pipeline_per_s']:,.0f} docs/s",
                  f">= 90% of Triton alone: {r['triton_pipeline_vs_triton']:.0%} (median of {len(tp['ratios'])} pairs: "
                  f"{', '.join(f'{x:.0%}' for x in tp['ratios'])}); fill {fills(tp)}")
    if "cpu_ms_per_doc" in r:
        table.add_row("CPU per document (ms), Triton alone vs the pipeline through it",
                      f"{sum(r['cpu_ms_per_doc']['triton_alone'].values()):.2f} vs {sum(r['cpu_ms_per_doc']['pipeline'].values()):.2f}",
                      _cpu_line(r).split(": ", 1)[1])
    if "triton_bulk" in r:
        b = r["triton_bulk"]
        table.add_row(f"the same, {BULK} items per raw message (JSON Lines)", f"{b['triton_pipeline_per_s']:,.0f} docs/s",
                      f"{b['triton_pipeline_vs_triton']:.0%} of Triton alone ({b['triton_alone_per_s']:,.0f} texts/s; pairs "
                      f"{', '.join(f'{x:.0%}' for x in b['triton_pipeline']['ratios'])}); {_cpu_line(b).split(': ', 1)[1]}")
    if "triton_own_cores" in r:
        o = r["triton_own_cores"]
        table.add_row("the same, one item per raw message, Triton on a core of its own", f"{o['triton_pipeline_per_s']:,.0f} docs/s",
                      f"{r['triton_own_cores_pipeline_vs_triton_ratio']:.0%} of Triton alone ({o['triton_alone_per_s']:,.0f} "
                      f"texts/s; pairs {', '.join(f'{x:.0%}' for x in o['triton_pipeline']['ratios'])}); {o['machine_note']}")
    lat = r["latency"]
    table.add_row(f"latency at {r['latency_rate_per_s']:.0f} docs/s (half of the model pipeline), ingested -> stored",
                  f"p50 {lat['pipeline_p50_s']:.2f} s, p99 {lat['pipeline_p99_s']:.2f} s", f"{lat['documents']} documents")
    table.add_row("latency, event time -> stored", f"p50 {lat['end_to_end_p50_s']:.2f} s, p99 {lat['end_to_end_p99_s']:.2f} s", "")
    Console().print(table)
