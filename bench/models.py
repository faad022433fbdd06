"""Model benchmark (``make bench``, models part): CPU texts/s and per-batch latency.

Float and int8 models at batch sizes 1, 8, 32, 64 and 1-2 threads, beside the TF-IDF baseline, all
in one process and interleaved in rounds so machine noise hits every cell alike. Ratios (int8 vs
float, model vs baseline) are computed from the same run.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from models.artifact import ModelRef
from models.classifier import Classifier
from models.dataset import LabelledTexts
from models.evaluate import fit_baselines
from models.labels import Task
from models.preprocess import prepare

BATCH_SIZES = (1, 8, 32, 64)
THREADS = (1, 2)


def model_bytes(model: torch.nn.Module) -> int:
    """Serialized size of the state dict (int8 packed weights included)."""
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    return buf.tell()


def time_batches(fn: Callable[[list[str]], object], texts: list[str], batch: int, budget_s: float) -> list[float]:
    """Run ``fn`` on consecutive batches until the budget is spent; per-batch seconds."""
    fn(texts[:batch])  # warm-up
    times: list[float] = []
    start, i = time.perf_counter(), 0
    while time.perf_counter() - start < budget_s or len(times) < 3:
        chunk = texts[i : i + batch] if i + batch <= len(texts) else texts[:batch]
        i = (i + batch) % max(1, len(texts) - batch)
        t0 = time.perf_counter()
        fn(chunk)
        times.append(time.perf_counter() - t0)
    return times


def summarise(batch: int, times: list[float]) -> dict:
    arr = np.asarray(times)
    return {
        "batches": len(arr),
        "texts_per_s": batch * len(arr) / arr.sum(),
        "p50_ms": float(np.percentile(arr, 50) * 1e3),
        "p99_ms": float(np.percentile(arr, 99) * 1e3),
    }


def run_models_bench(
    ref: ModelRef,
    train_sets: dict[Task, LabelledTexts],
    valid_sets: dict[Task, LabelledTexts],
    out_dir: Path,
    *,
    quick: bool = False,
    rounds: int = 2,
    log: Callable[[str], None] = print,
) -> dict:
    """Measure every cell, print the table, save JSON to ``out_dir``; returns the result."""
    texts = [prepare(t) for data in valid_sets.values() for t in data.texts]
    texts = [texts[i] for i in np.random.default_rng(0).permutation(len(texts))[:2000]]
    budget = (0.4 if quick else 2.0) / rounds
    variants = {"float": Classifier.load(ref.path), "int8": Classifier.load(ref.path, int8=True)}
    log("fitting the TF-IDF baselines")
    baselines = fit_baselines(train_sets)

    def baseline_fn(batch: list[str]) -> object:
        return [b.pipeline.predict_proba(batch) for b in baselines.values()]

    cells: dict[tuple[str, int, int], list[float]] = {}
    for r in range(rounds):
        log(f"round {r + 1}/{rounds}")
        for threads in THREADS:
            torch.set_num_threads(threads)
            for batch in BATCH_SIZES:
                for variant, clf in variants.items():
                    cells.setdefault((variant, threads, batch), []).extend(
                        time_batches(clf.proba, texts, batch, budget)
                    )
                if threads == 1:
                    cells.setdefault(("tfidf", 1, batch), []).extend(time_batches(baseline_fn, texts, batch, budget))
    rows = [{"variant": v, "threads": t, "batch": b, **summarise(b, times)} for (v, t, b), times in cells.items()]
    rows.sort(key=lambda r: (r["variant"], r["threads"], r["batch"]))
    by = {(r["variant"], r["threads"], r["batch"]): r for r in rows}
    for row in rows:
        if row["variant"] == "int8":
            row["speedup_vs_float"] = row["texts_per_s"] / by[("float", row["threads"], row["batch"])]["texts_per_s"]
        if row["variant"] != "tfidf":
            row["vs_tfidf"] = row["texts_per_s"] / by[("tfidf", 1, row["batch"])]["texts_per_s"]
    result = {
        "model": {"name": ref.name, "version": ref.version, "path": str(ref.path)},
        "size_mb": {v: model_bytes(c.model) / 2**20 for v, c in variants.items()},
        "torch": torch.__version__,
        "quick": quick,
        "rows": rows,
    }
    print_table(result)
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    for name in (f"models-{stamp}.json", "models-latest.json"):
        (out_dir / name).write_text(json.dumps(result, indent=2) + "\n")
    log(f"saved {out_dir / f'models-{stamp}.json'}")
    return result


def print_table(result: dict) -> None:
    table = Table(title=f"models bench: {result['model']['name']} v{result['model']['version']} "
                        f"(float {result['size_mb']['float']:.0f} MB, int8 {result['size_mb']['int8']:.0f} MB)")
    for col in ("variant", "threads", "batch", "texts/s", "p50 ms", "p99 ms", "int8/float", "vs tfidf"):
        table.add_column(col, justify="left" if col == "variant" else "right")
    for r in result["rows"]:
        table.add_row(
            r["variant"], str(r["threads"]), str(r["batch"]), f"{r['texts_per_s']:.1f}", f"{r['p50_ms']:.1f}",
            f"{r['p99_ms']:.1f}", f"{r['speedup_vs_float']:.2f}x" if "speedup_vs_float" in r else "",
            f"{r['vs_tfidf']:.2f}x" if "vs_tfidf" in r else "",
        )
    Console().print(table)
