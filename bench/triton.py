"""Triton benchmark (``make bench``, Triton part; ``python -m bench triton``), side by side in one run:
texts/s and per-request p50/p99 latency of the model in-process and through the real tritonserver,
for batch sizes 1-64 and 1-8 requests in flight, with Triton's own statistics (queue and compute time).

Both sides run the model on ``scoring.runtime`` (:mod:`models.runtime`). Each Triton configuration
(instances x threads per instance) gets its own server start on the
same exported repository; the in-process cells use ``settings.threads``. Cells run in rounds (in-process,
then each in-flight level) per batch size, so drift on a shared machine hits them alike.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from bench.results import save_result

from models import artifact
from models.classifier import Classifier
from models.export import Serving, export_python
from sentimon.settings import Settings
from streams.triton.client import TritonClient
from sentimon.local.triton import TritonServer

BATCH_SIZES = (1, 8, 32, 64)
IN_FLIGHT = (1, 4, 8)


def _cell(n: int, seconds: float, latencies: list[float]) -> dict:
    arr = np.asarray(latencies) if latencies else np.zeros(1)
    return {"texts_per_s": n / seconds, "p50_ms": float(np.percentile(arr, 50) * 1e3),
            "p99_ms": float(np.percentile(arr, 99) * 1e3), "requests": len(latencies)}


def _in_process(classifier: Classifier, texts: list[str], batch: int) -> dict:
    latencies = []
    started = time.perf_counter()
    for i in range(0, len(texts), batch):
        t0 = time.perf_counter()
        classifier.proba(texts[i:i + batch])
        latencies.append(time.perf_counter() - t0)
    return _cell(len(texts), time.perf_counter() - started, latencies)


async def through_triton(server: TritonServer, ref, classifier: Classifier, texts: list[str], batch: int,
                         in_flight: int) -> dict:
    """One cell: ``texts`` scored through the stage's own client (``batch`` per request, ``in_flight`` at once)."""
    client = TritonClient(server.grpc_url, ref.name, ref.version, classifier.tokenizer, classifier.max_length,
                          batch_size=batch, in_flight=in_flight, retries=0)
    try:
        await client.proba(texts[: batch * in_flight])  # warm up
        client.latencies = []
        started = time.perf_counter()
        await client.proba(texts)
        return _cell(len(texts), time.perf_counter() - started, client.latencies)
    finally:
        await client.close()


def _statistics(server: TritonServer, ref) -> dict:
    import tritonclient.http as http

    stats = http.InferenceServerClient(server.http_url.removeprefix("http://")).get_inference_statistics(
        ref.name, ref.version)["model_stats"][0]
    inference = stats["inference_stats"]
    count = max(1, int(inference["success"]["count"]))
    batches = stats.get("batch_stats", [])
    executions = sum(int(b["compute_infer"]["count"]) for b in batches) or 1
    return {"requests": count, "executions": int(stats.get("execution_count", 0)),
            "mean_batch": int(stats.get("inference_count", 0)) / max(1, int(stats.get("execution_count", 1))),
            "queue_ms_per_request": int(inference["queue"]["ns"]) / count / 1e6,
            "compute_ms_per_execution": sum(int(b["compute_infer"]["ns"]) for b in batches) / executions / 1e6}


PROMETHEUS = ("nv_inference_request_success", "nv_inference_exec_count", "nv_inference_queue_duration_us",
              "nv_inference_compute_infer_duration_us")


def _prometheus(server: TritonServer, name: str) -> dict[str, float]:
    """Triton's own Prometheus counters for the model (summed over versions)."""
    import urllib.request

    with urllib.request.urlopen(server.metrics_url, timeout=5) as response:
        text = response.read().decode()
    out = dict.fromkeys(PROMETHEUS, 0.0)
    for line in text.splitlines():
        metric, _, rest = line.partition("{")
        if metric in out and f'model="{name}"' in rest:
            out[metric] += float(line.rsplit(" ", 1)[1])
    return out


def run_triton_bench(settings: Settings, out_dir: Path, *, quick: bool = False, log=print) -> dict:
    import torch

    torch.set_num_threads(settings.threads)
    ref = artifact.resolve(settings.model, settings.models_dir)
    runtime = settings.scoring.runtime
    classifier = Classifier.load(ref.path, runtime=runtime, threads=settings.threads, cache_dir=settings.onnx_cache_dir)
    n = 128 if quick else 512
    from bench.workload import backlog, scoring_texts

    texts = (scoring_texts(backlog(n, seed=5)) * 2)[:n]
    classifier.proba(texts[:64])  # warm up
    configs = [(1, 1)] if quick else [(1, 1), (2, 1)]
    work = out_dir / "triton-run"
    result: dict = {"model": f"{ref.name}/{ref.version}", "runtime": runtime, "texts": n, "threads_in_process": settings.threads,
                    "in_process": {}, "triton": {}, "triton_stats": {}}
    for instances, threads in configs:
        name = f"{instances}x{threads}"
        log(f"Triton {instances} instance(s) x {threads} thread(s): exporting and starting the server")
        export_python(ref, work / name / "repo", Serving.of(
            settings.triton, instances=instances, threads=threads, max_batch_size=max(BATCH_SIZES) * max(IN_FLIGHT),
            runtime=runtime))
        with TritonServer(work / name / "repo", work / name) as server:
            cells = {}
            for batch in BATCH_SIZES:
                result["in_process"].setdefault(str(batch), []).append(_in_process(classifier, texts, batch))
                for flight in IN_FLIGHT:
                    cells[f"{batch}/{flight}"] = asyncio.run(through_triton(server, ref, classifier, texts, batch,
                                                                             flight))
                    log(f"  batch {batch}, {flight} in flight: {cells[f'{batch}/{flight}']['texts_per_s']:.0f} texts/s")
            result["triton"][name] = cells
            result["triton_stats"][name] = _statistics(server, ref)
            result["triton_stats"][name]["prometheus"] = _prometheus(server, ref.name)
    # in-process: the mean of its rounds (one per Triton configuration)
    result["in_process"] = {b: {k: float(np.mean([r[k] for r in runs])) for k in runs[0]}
                            for b, runs in result["in_process"].items()}
    best_local = max(c["texts_per_s"] for c in result["in_process"].values())
    best = max(((name, key, c) for name, cells in result["triton"].items() for key, c in cells.items()),
               key=lambda x: x[2]["texts_per_s"])
    result["best_triton"] = {"config": best[0], "cell": best[1], **best[2]}
    result["best_in_process_per_s"] = best_local
    result["triton_vs_in_process"] = best[2]["texts_per_s"] / best_local
    _print(result)
    save_result(out_dir, "triton", result, log)
    return result


def _print(r: dict) -> None:
    table = Table(title=f"Triton vs in-process ({r['model']}, {r.get('runtime', 'torch-fp32')}, {r['texts']} texts per cell; texts/s, p50/p99 ms "
                        "per request)", title_justify="left")
    table.add_column("batch")
    table.add_column(f"in-process ({r['threads_in_process']} threads)", justify="right")
    heads = [(name, f) for name in r["triton"] for f in IN_FLIGHT]
    for name, f in heads:
        table.add_column(f"Triton {name}, {f} in flight", justify="right")
    for batch in BATCH_SIZES:
        local = r["in_process"][str(batch)]
        row = [str(batch), f"{local['texts_per_s']:.0f}  {local['p50_ms']:.0f}/{local['p99_ms']:.0f}"]
        for name, f in heads:
            c = r["triton"][name][f"{batch}/{f}"]
            row.append(f"{c['texts_per_s']:.0f}  {c['p50_ms']:.0f}/{c['p99_ms']:.0f}")
        table.add_row(*row)
    console = Console()
    console.print(table)
    for name, st in r["triton_stats"].items():
        prom = st["prometheus"]
        console.print(f"Triton {name}: mean dynamic batch {st['mean_batch']:.1f}, queue {st['queue_ms_per_request']:.1f} "
                      f"ms/request, compute {st['compute_ms_per_execution']:.1f} ms/execution; Prometheus: "
                      f"{prom['nv_inference_request_success']:.0f} requests in {prom['nv_inference_exec_count']:.0f} "
                      f"executions, queue {prom['nv_inference_queue_duration_us'] / 1e6:.1f} s, compute "
                      f"{prom['nv_inference_compute_infer_duration_us'] / 1e6:.1f} s (summed over requests)")
    b = r["best_triton"]
    console.print(f"best Triton {b['texts_per_s']:.0f} texts/s ({b['config']}, batch/in flight {b['cell']}) vs best "
                  f"in-process {r['best_in_process_per_s']:.0f}: {r['triton_vs_in_process']:.0%} (target >= 90%)")
