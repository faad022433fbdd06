"""``python -m bench window``: the memory of the ingest stage's state (the duplicate window and its indexes)
over many more documents than the window holds, in this process, without the broker or the model.

A soak at the model's rate (~200 documents/s here) runs 10 minutes: 120,000 documents, only 2.4 times the
default window. The window's hash tables keep resizing under churn (insertions at one end, deletions at the
other) until well past that, so a soak's "second half" can still hold the window settling. This runs the
same ingest code (``Ingestor.process``, one process) over ``multiple`` times the window and samples this
process's anonymous RSS, the C heap (:mod:`streams.memory`) and Python's blocks: the growth per 100,000
documents over the last half says whether the state has stopped growing.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path

import orjson

from bench.results import save_plot, save_result
from sentimon.settings import Settings
from streams import memory
from streams.dedup import Deduplicator
from streams.ingest import Ingestor, RawRecord
from streams.process import collect_rarely
from bench.soak import rss_mb
from streams.synthetic import SyntheticFeed

BATCH = 256  # raw items per ingest call, the stage's default micro-batch


def sample(documents: int) -> dict[str, float]:
    """This process's memory now, MiB (Python blocks in thousands), after ``documents`` documents."""
    heap = memory.heap()
    out = {"documents": documents, "anonymous_mb": round(rss_mb(os.getpid(), False, "RssAnon"), 1),
           "python_blocks_k": round(memory.python_objects().blocks / 1000, 1)}
    if heap is not None:
        out |= {"heap_in_use_mb": round(heap.in_use / 2**20, 1), "heap_free_mb": round(heap.free / 2**20, 1),
                "heap_mmapped_mb": round(heap.mmapped / 2**20, 1)}
    return out


def growth_per_100k(samples: list[dict], name: str) -> float | None:
    """Least-squares slope of ``name`` per 100,000 documents over the last half of ``samples``."""
    from statistics import linear_regression

    half = [x for x in samples if x["documents"] >= samples[-1]["documents"] / 2] if samples else []
    if len(half) < 2:
        return None
    return linear_regression([x["documents"] / 1e5 for x in half], [x[name] for x in half]).slope


def run_window_bench(settings: Settings, out_dir: Path, quick: bool = False, log: Callable[[str], None] = print,
                     multiple: float = 8.0) -> dict:
    """``multiple`` x ``stream.dedup_window`` synthetic documents through one Ingestor (``quick``: 2x)."""
    from rich.progress import track

    window = settings.stream.dedup_window
    n = int(window * (2.0 if quick else multiple))
    every = max(BATCH, n // 32 // BATCH * BATCH)
    ingestor = Ingestor(settings.privacy.key.get_secret_value().encode(),
                        max_message_bytes=settings.stream.max_message_bytes,
                        max_text_chars=settings.stream.max_text_chars,
                        dedup=Deduplicator(window, settings.stream.near_duplicate_threshold))
    collect_rarely()  # as a worker does once set up (sentimon.worker)
    feed = SyntheticFeed(seed=2, start=datetime.now(timezone.utc) - timedelta(days=2), rhythm=False)
    samples, batch = [sample(0)], []
    for i, (_, kind, item) in enumerate(track(feed.items(n, 1000.0), total=n, description="ingest"), 1):
        batch.append(RawRecord(kind, orjson.dumps(item), "window", 0, i))
        if len(batch) == BATCH or i == n:
            ingestor.process(batch)
            batch = []
        if i % every == 0 or i == n:
            samples.append(sample(i))
    names = [k for k in samples[-1] if k != "documents"]
    result = {"window": window, "documents": n, "samples": samples,
              "growth_per_100k_last_half": {k: growth_per_100k(samples, k) for k in names}}
    for k in names:
        values = [x[k] for x in samples if k in x]
        log(f"{k}: {values[0]:.0f} -> {values[-1]:.0f} (max {max(values):.0f}), last half "
            f"{result['growth_per_100k_last_half'][k]:+.1f} per 100,000 documents")
    _plot(result, out_dir, log)
    save_result(out_dir, "window", result, log)
    return result


def _plot(result: dict, out_dir: Path, log: Callable[[str], None]) -> None:
    samples = result["samples"]

    def draw(plt):
        x = [s["documents"] / 1000 for s in samples]
        fig, ax = plt.subplots(figsize=(9, 4))
        for name in ("anonymous_mb", "heap_in_use_mb", "heap_free_mb", "heap_mmapped_mb"):
            if name in samples[-1]:
                ax.plot(x, [s.get(name) for s in samples], label=name.removesuffix("_mb").replace("_", " "))
        ax.axvline(result["window"] / 1000, linestyle=":", color="gray", label="window full")
        ax.set_xlabel("documents ingested (thousands)")
        ax.set_ylabel("MiB")
        ax.set_title(f"ingest state over {result['documents']:,} documents, window {result['window']:,}")
        ax.legend(loc="lower right")
        return fig

    save_plot(out_dir, "window", draw, log)
