"""The workers' event loop (``worker.event_loop``): uvloop against the standard library's asyncio loop.

The pipeline worker with the no-op classifier drains the same backlog of one-item raw messages, the two
loops alternated (asyncio, uvloop, asyncio, ...) on topics of their own, each run timed on the worker's own
clock (:func:`bench.pipeline.drain_rate`) with the CPU seconds of every process counted by role
(:mod:`bench.cpu`). The backlog is published before the worker starts, so the feed's work is not counted.
With the cores saturated by a model server beside it, the worker's CPU per document is what it takes
from the model: the figure that decides the pipeline-through-Triton ratio.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from statistics import median

from bench import cpu
from bench.pipeline import drain_rate, local_cluster, on_broker
from bench.results import save_result
from bench.workload import backlog
from sentimon.local.broker import Broker
from sentimon.settings import Settings
from streams.feed import publish

LOOPS = ("asyncio", "uvloop")


def _run(settings: Settings, workdir: Path, prefix: str, items) -> tuple[float, dict[str, float]]:
    """One no-op pipeline run: (docs/s, CPU seconds by role)."""
    cluster = local_cluster(settings, workdir, prefix, "noop")
    try:
        publish(cluster.settings, items)
        worker = cluster.start_worker("pipeline")
        before = cpu.snapshot()
        rate = drain_rate(worker, "ingest", "scoring", len(items), 900)
        spent = cpu.by_role(before, cpu.snapshot(), worker.process.pid)
        worker.stop()
        return rate, spent
    finally:
        cluster.stop()


def run_event_loop_bench(settings: Settings, out_dir: Path, *, quick: bool = False,
                         log: Callable[[str], None] = print) -> dict:
    n, reps = (3000, 1) if quick else (20000, 3)
    items = backlog(n, seed=1)
    workdir = out_dir / "event-loop-run"
    runs: dict[str, list[tuple[float, dict[str, float]]]] = {loop: [] for loop in LOOPS}
    with Broker(log=out_dir / "bench-broker.log") as broker:
        base = on_broker(settings, broker)
        for rep in range(reps):
            for loop in LOOPS:
                s = base.model_copy(update={"worker": base.worker.model_copy(update={"event_loop": loop})})
                rate, spent = _run(s, workdir, f"loop-{loop}{rep}.", items)
                runs[loop].append((rate, spent))
                ms = cpu.per_document([spent], n)
                log(f"   {loop} run {rep + 1}/{reps}: {rate:,.0f} docs/s, worker {ms.get('worker', 0):.3f} ms/doc "
                    f"(+ helpers {ms.get('worker_helpers', 0):.3f}, broker {ms.get('broker', 0):.3f})")
    result: dict = {"documents": n, "runs": reps, "quick": quick}
    for loop, measured in runs.items():
        result[loop] = {
            "docs_per_s": median(r for r, _ in measured),
            "cpu_ms_per_doc": cpu.per_document([spent for _, spent in measured], n),
            "runs_docs_per_s": [r for r, _ in measured],
        }
    a, u = result["asyncio"], result["uvloop"]
    pipeline_cpu = {loop: sum(v for k, v in result[loop]["cpu_ms_per_doc"].items() if k != "bench") for loop in LOOPS}
    result["uvloop_vs_asyncio_docs_ratio"] = u["docs_per_s"] / a["docs_per_s"]
    result["uvloop_vs_asyncio_cpu_ratio"] = pipeline_cpu["uvloop"] / max(pipeline_cpu["asyncio"], 1e-9)
    log(f"no-op pipeline worker: uvloop {u['docs_per_s']:,.0f} docs/s vs asyncio {a['docs_per_s']:,.0f} docs/s "
        f"({result['uvloop_vs_asyncio_docs_ratio']:.2f}x); CPU per document (worker, helpers, broker) "
        f"{pipeline_cpu['uvloop']:.3f} vs {pipeline_cpu['asyncio']:.3f} ms ({result['uvloop_vs_asyncio_cpu_ratio']:.2f}x)")
    save_result(out_dir, "event-loop", result, log)
    return result
