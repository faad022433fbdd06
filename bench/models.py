"""Model benchmark (``make bench``, models part): every runtime side by side, speed and accuracy.

Speed: the same topic validation texts (1,536; 256 with ``quick``) scored end to end by each runtime of
:mod:`models.runtime` (torch fp32, torch int8, ONNX Runtime fp32, ONNX Runtime int8 per token, and ONNX
Runtime's per-tensor int8 row by row and batched for comparison) at 1 and 2 threads, length-sorted batches
of 64, in rounds that alternate the runtimes so machine drift hits every one alike; the median pass is
reported.
Each pass is split into tokenization, padding and the forward passes (per-batch p50/p99 from those), so
the table also says where the time goes.

Accuracy: every runtime scores both validation splits; each is compared with torch fp32 on the same rows
(paired bootstrap and McNemar, :func:`models.significance.paired`), with the share of identical decisions
and the largest probability difference. An int8 runtime passes when its accuracy is within
``INT8_TOLERANCE`` of fp32 on both tasks.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from models import artifact, quantize, significance
from models.artifact import ModelRef
from models.batching import inference_batches, pad_arrays
from models.classifier import token_ids
from models.dataset import LabelledTexts
from models.classifier import Classifier
from models.evaluate import score_sets
from models.labels import LABELS, Task
from models.preprocess import prepare
from models.runtime import DEFAULT_RUNTIME, RUNTIMES, OrtRuntime, SessionSettings, build, onnx_file

THREADS = (1, 2)
BATCH = 64
INT8_TOLERANCE = 0.003  # accuracy, absolute: an int8 runtime may cost at most 0.3 points on either task
# ONNX Runtime's per-tensor dynamic quantization: row by row (batch-independent, what per-token replaced), and
# batched (rows sharing activation scales, which no scoring path may do: the speed per-token is held against)
PER_TENSOR = "ort-int8-per-tensor"
PER_TENSOR_BATCHED = "ort-int8-per-tensor-batched"
# at two threads: the per-token file with each batch in one run on two intra-op threads (the default splits it
# into two one-thread runs, models.runtime.SessionSettings), and torch fp32 split the same way
ONE_RUN = "ort-int8-one-run"
TORCH_SPLIT = "torch-fp32-split"


class SplitTorch:
    """torch fp32 with a batch split into ``threads`` groups of rows by length, each run at once on one torch
    thread (:func:`models.runtime.in_groups`): the way the default ONNX Runtime session uses two cores."""

    def __init__(self, runtime, threads: int):
        from concurrent.futures import ThreadPoolExecutor

        self.runtime, self.threads = runtime, threads
        self.pool = ThreadPoolExecutor(threads)

    def probabilities(self, input_ids, attention_mask):
        from models.runtime import by_length, in_groups

        previous = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return in_groups(self.runtime.probabilities, input_ids, attention_mask,
                             by_length(attention_mask, self.threads), self.pool.map)
        finally:
            torch.set_num_threads(previous)


def _runners(ref: ModelRef, threads: int, cache_dir: Path, only: str | None = None) -> dict[str, object]:
    """Every runtime at ``threads`` threads (torch's are set per pass), plus the two references the per-token
    int8 file is measured against: ONNX Runtime's per-tensor dynamic quantization row by row (each text
    alone, so batch-independent) and batched (rows sharing activation scales, which scoring never does)."""
    model, _, _ = artifact.load(ref.path)
    out = {name: build(ref.path, model, name, threads=threads, cache_dir=cache_dir) for name in RUNTIMES if not only}
    fp32 = onnx_file(ref.path, model, False, cache_dir)
    per_tensor = fp32.with_name("model-int8-per-tensor.onnx")
    if not per_tensor.is_file():
        quantize.per_tensor(fp32, per_tensor)
    out[PER_TENSOR] = OrtRuntime.open(per_tensor, model.tasks, "ort-int8", SessionSettings(threads=threads),
                                      row_wise=True)
    if only:
        return out
    out[PER_TENSOR_BATCHED] = OrtRuntime.open(per_tensor, model.tasks, "ort-int8", SessionSettings(threads=threads))
    if threads > 1:
        out[ONE_RUN] = OrtRuntime.open(onnx_file(ref.path, model, True, cache_dir), model.tasks, "ort-int8",
                                       SessionSettings(threads=threads, split_batches=False))
        out[TORCH_SPLIT] = SplitTorch(build(ref.path, model, "torch-fp32"), threads)
    return out


def timed_pass(runtime, tokenizer, texts: list[str], max_length: int) -> dict:
    """Score ``texts`` once as the scoring stage does; seconds spent tokenizing, padding and in the
    forward passes, and each batch's forward seconds. The three intervals follow each other, so they add
    up to the pass: the batching between two forward passes is counted with padding (preparing the next)."""
    t0 = time.perf_counter()
    ids = token_ids(tokenizer, texts, max_length)
    t1 = p0 = time.perf_counter()
    pad_s, batch_s = 0.0, []
    for batch in inference_batches([len(x) for x in ids], BATCH):
        input_ids, mask = pad_arrays([ids[i] for i in batch], tokenizer.pad_token_id)
        p1 = time.perf_counter()
        runtime.probabilities(input_ids, mask)
        p2 = time.perf_counter()
        batch_s.append(p2 - p1)
        pad_s += p1 - p0
        p0 = p2
    total = p0 - t0
    return {"seconds": total, "tokenize_s": t1 - t0, "pad_s": pad_s, "forward_s": sum(batch_s), "batch_s": batch_s}


def speed(ref: ModelRef, texts: list[str], cache_dir: Path, rounds: int, log: Callable[[str], None]) -> list[dict]:
    """One row per (runtime, threads): texts/s of the median pass, per-batch p50/p99, time shares."""
    tokenizer = artifact.load_tokenizer(ref.path)
    max_length = artifact.max_length(artifact.load_training(ref.path))
    rows = []
    for threads in THREADS:
        torch.set_num_threads(threads)
        runners = _runners(ref, threads, cache_dir)
        passes: dict[str, list[dict]] = {name: [] for name in runners}
        for name, runtime in runners.items():  # warm-up: first-call allocations and kernel choices
            timed_pass(runtime, tokenizer, texts[:BATCH], max_length)
        for r in range(rounds):
            log(f"{threads} thread(s), round {r + 1}/{rounds}")
            order = list(runners) if r % 2 == 0 else list(runners)[::-1]
            for name in order:
                passes[name].append(timed_pass(runners[name], tokenizer, texts, max_length))
        for name, runs in passes.items():
            mid = sorted(runs, key=lambda p: p["seconds"])[len(runs) // 2]
            batch_ms = np.asarray([b for p in runs for b in p["batch_s"]]) * 1e3
            rows.append({
                "runtime": name, "threads": threads, "batch": BATCH, "texts": len(texts),
                "texts_per_s": len(texts) / mid["seconds"],
                "passes_texts_per_s": [len(texts) / p["seconds"] for p in runs],
                "p50_ms": float(np.percentile(batch_ms, 50)), "p99_ms": float(np.percentile(batch_ms, 99)),
                "tokenize_share": mid["tokenize_s"] / mid["seconds"], "pad_share": mid["pad_s"] / mid["seconds"],
                "forward_share": mid["forward_s"] / mid["seconds"],
            })
        del runners
    base = {r["threads"]: r["texts_per_s"] for r in rows if r["runtime"] == "torch-fp32"}
    for row in rows:
        row["vs_torch_fp32"] = row["texts_per_s"] / base[row["threads"]]
    return rows


GPU_RUNTIMES = (("torch-fp32", "cuda"), ("ort-fp32", "CUDAExecutionProvider"), ("ort-fp32", "TensorrtExecutionProvider"))


def gpu_rows(ref: ModelRef, texts: list[str], cache_dir: Path, rounds: int, log: Callable[[str], None]) -> list[dict]:
    """The fp32 network on the GPU: torch on CUDA, ONNX Runtime with its CUDA and TensorRT (float16)
    execution providers, batches of :data:`BATCH`; a row says why when its provider is missing here."""
    import onnxruntime as ort

    tokenizer = artifact.load_tokenizer(ref.path)
    max_length = artifact.max_length(artifact.load_training(ref.path))
    model, _, _ = artifact.load(ref.path)
    available = set(ort.get_available_providers())
    rows = []
    for name, where in GPU_RUNTIMES:
        row: dict = {"runtime": name, "device": where, "batch": BATCH, "texts": len(texts)}
        if where == "cuda" and not torch.cuda.is_available():
            rows.append({**row, "unavailable": "torch sees no CUDA device"})
            continue
        if where != "cuda" and where not in available:
            rows.append({**row, "unavailable": f"onnxruntime {ort.__version__} lacks {where} (onnxruntime-gpu has it)"})
            continue
        if where == "cuda":
            runtime = build(ref.path, model, "torch-fp32", device="cuda:0")
        else:
            options = {"trt_fp16_enable": True} if where.startswith("Tensorrt") else {}
            settings = SessionSettings(providers=((where, options), "CPUExecutionProvider"))
            runtime = OrtRuntime.open(onnx_file(ref.path, model, False, cache_dir), model.tasks, "ort-fp32", settings)
        timed_pass(runtime, tokenizer, texts, max_length)  # warm-up (TensorRT builds its engines here)
        runs = [timed_pass(runtime, tokenizer, texts, max_length) for _ in range(rounds)]
        mid = sorted(runs, key=lambda r: r["seconds"])[len(runs) // 2]
        batch_ms = np.asarray([b for r in runs for b in r["batch_s"]]) * 1e3
        rows.append({**row, "texts_per_s": len(texts) / mid["seconds"], "p50_ms": float(np.percentile(batch_ms, 50)),
                     "p99_ms": float(np.percentile(batch_ms, 99)), "tokenize_share": mid["tokenize_s"] / mid["seconds"]})
        log(f"GPU {name} ({where}): {rows[-1]['texts_per_s']:.0f} texts/s")
    return rows


def accuracy(ref: ModelRef, valid_sets: dict[Task, LabelledTexts], cache_dir: Path, log: Callable[[str], None]) -> dict:
    """Per runtime and task: accuracy, macro-F1 and, against torch fp32 on the same rows, the paired
    difference with its interval, McNemar's p, the share of identical decisions, the largest probability
    difference; and whether an int8 runtime stays within :data:`INT8_TOLERANCE`."""
    torch.set_num_threads(2)
    probs = {}
    for name in RUNTIMES:
        log(f"accuracy: {name} on {sum(len(d) for d in valid_sets.values())} validation texts")
        probs[name] = score_sets(Classifier.load(ref.path, runtime=name, threads=2, cache_dir=cache_dir), valid_sets)
    log(f"accuracy: {PER_TENSOR}")
    per_tensor = _runners(ref, 2, cache_dir, only=PER_TENSOR)[PER_TENSOR]
    reference = Classifier.load(ref.path, runtime="ort-int8", threads=2, cache_dir=cache_dir)
    probs[PER_TENSOR] = score_sets(replace(reference, runtime=per_tensor), valid_sets)
    out: dict[str, dict] = {}
    for name, by_task in probs.items():
        entry: dict = {}
        for task, data in valid_sets.items():
            y = np.asarray(data.labels)
            mine, fp32 = by_task[task].argmax(1), probs["torch-fp32"][task].argmax(1)
            acc, macro_f1 = significance.scores(y, mine, len(LABELS[task]))
            pair = significance.paired(data.labels, mine, fp32, len(LABELS[task]))
            entry[task] = {
                "accuracy": acc, "macro_f1": macro_f1, "n": len(y),
                "difference_vs_torch_fp32": pair["accuracy"]["difference"],
                "difference_ci": pair["accuracy"]["ci"],
                "mcnemar_p": pair["mcnemar"]["p_value"],
                "same_decision": float(np.mean(mine == fp32)),
                "largest_probability_difference": float(np.abs(by_task[task] - probs["torch-fp32"][task]).max()),
            }
        entry["within_tolerance"] = all(entry[t]["difference_vs_torch_fp32"] >= -INT8_TOLERANCE for t in valid_sets)
        out[name] = entry
    return out


def run_models_bench(
    ref: ModelRef,
    train_sets: dict[Task, LabelledTexts],
    valid_sets: dict[Task, LabelledTexts],
    out_dir: Path,
    *,
    quick: bool = False,
    rounds: int | None = None,
    cache_dir: Path | None = None,
    gpu: bool = False,
    log: Callable[[str], None] = print,
) -> dict:
    """Measure speed and accuracy of every runtime, print the tables, save JSON to ``out_dir``; ``gpu`` adds
    the GPU rows (:func:`gpu_rows`). ``train_sets`` is unused (kept for the bench runner's signature)."""
    cache_dir = cache_dir or out_dir / "onnx"
    topic = valid_sets.get("topic") or next(iter(valid_sets.values()))
    texts = [prepare(t) or "." for t in topic.texts][: 256 if quick else 1536]
    rounds = rounds or (1 if quick else 3)
    rows = speed(ref, texts, cache_dir, rounds, log)
    acc_sets = {t: d.sample(300, seed=0) for t, d in valid_sets.items()} if quick else valid_sets
    acc = accuracy(ref, acc_sets, cache_dir, log)
    two = {r["runtime"]: r for r in rows if r["threads"] == 2}
    one = {r["runtime"]: r for r in rows if r["threads"] == 1}
    result = {
        "model": {"name": ref.name, "version": ref.version, "path": str(ref.path)},
        "protocol": f"{len(texts)} topic validation texts, length-sorted batches of {BATCH}, tokenized and padded "
                    f"per pass, {rounds} rounds alternated, median pass",
        "session": SessionSettings().__dict__ | {"threads": "as the row says"},
        "versions": {"torch": torch.__version__, "onnxruntime": __import__("onnxruntime").__version__},
        "quick": quick,
        "rows": rows,
        "ort_int8_vs_torch_fp32_ratio": two["ort-int8"]["vs_torch_fp32"],
        "ort_int8_vs_torch_fp32_ratio_1_thread": one["ort-int8"]["vs_torch_fp32"],
        "ort_fp32_vs_torch_fp32_ratio": two["ort-fp32"]["vs_torch_fp32"],
        "torch_int8_vs_torch_fp32_ratio": two["torch-int8"]["vs_torch_fp32"],
        "per_token_vs_per_tensor_row_wise_ratio": two["ort-int8"]["texts_per_s"] / two[PER_TENSOR]["texts_per_s"],
        "per_token_vs_per_tensor_batched_ratio":
            two["ort-int8"]["texts_per_s"] / two[PER_TENSOR_BATCHED]["texts_per_s"],
        "per_token_vs_per_tensor_batched_ratio_1_thread":
            one["ort-int8"]["texts_per_s"] / one[PER_TENSOR_BATCHED]["texts_per_s"],
        # the default's split batches against one run on two intra-op threads; torch fp32 split the same way
        "split_vs_one_run_ratio": two["ort-int8"]["texts_per_s"] / two[ONE_RUN]["texts_per_s"],
        "ort_int8_vs_torch_fp32_split_ratio": two["ort-int8"]["texts_per_s"] / two[TORCH_SPLIT]["texts_per_s"],
        "accuracy": acc,
        "default_runtime": DEFAULT_RUNTIME,
        "default_within_tolerance": acc[DEFAULT_RUNTIME]["within_tolerance"],
        "int8_tolerance": INT8_TOLERANCE,
        "size_mb": {p.name: p.stat().st_size / 2**20 for p in sorted(cache_dir.glob("*/*.onnx"))
                    if p.parent.name.startswith(f"{Path(ref.path).parent.name}-{Path(ref.path).name}-")},
    }
    if gpu:
        result["gpu"] = gpu_rows(ref, texts, cache_dir, rounds, log)
    print_tables(result)
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    for name in (f"models-{stamp}.json", "models-latest.json"):
        (out_dir / name).write_text(json.dumps(result, indent=2) + "\n")
    log(f"saved {out_dir / f'models-{stamp}.json'}")
    return result


def print_tables(result: dict) -> None:
    console = Console(width=160)
    table = Table(title=f"runtimes: {result['model']['name']} v{result['model']['version']} ({result['protocol']})")
    for col in ("runtime", "threads", "texts/s", "vs torch fp32", "batch p50 ms", "batch p99 ms", "tokenize", "pad",
                "forward"):
        table.add_column(col, justify="left" if col == "runtime" else "right")
    for r in result["rows"]:
        table.add_row(r["runtime"], str(r["threads"]), f"{r['texts_per_s']:.1f}", f"{r['vs_torch_fp32']:.2f}x",
                      f"{r['p50_ms']:.1f}", f"{r['p99_ms']:.1f}", f"{r['tokenize_share']:.1%}", f"{r['pad_share']:.1%}",
                      f"{r['forward_share']:.1%}")
    console.print(table)
    acc = Table(title="accuracy per runtime on the validation splits, against torch fp32 on the same rows")
    for col in ("runtime", "task", "accuracy", "macro-F1", "difference [95% CI]", "McNemar p", "same decision"):
        acc.add_column(col, justify="left" if col in ("runtime", "task") else "right")
    for name, entry in result["accuracy"].items():
        for task, r in entry.items():
            if task == "within_tolerance":
                continue
            lo, hi = r["difference_ci"]
            acc.add_row(name, task, f"{r['accuracy']:.4f}", f"{r['macro_f1']:.4f}",
                        f"{r['difference_vs_torch_fp32']:+.4f} [{lo:+.4f}, {hi:+.4f}]", f"{r['mcnemar_p']:.3g}",
                        f"{r['same_decision']:.2%}")
    console.print(acc)
    for r in result.get("gpu", []):
        console.print(f"GPU {r['runtime']} on {r['device']}: " + (r["unavailable"] if "unavailable" in r else
                      f"{r['texts_per_s']:.0f} texts/s, batch p50 {r['p50_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms"))
    verdict = "within" if result["default_within_tolerance"] else "NOT within"
    console.print(f"ONNX Runtime int8 vs torch fp32 (2 threads): {result['ort_int8_vs_torch_fp32_ratio']:.2f}x; "
                  f"the default runtime {result['default_runtime']} is {verdict} {result['int8_tolerance'] * 100:.1f} "
                  "accuracy points of torch fp32 on both tasks")
