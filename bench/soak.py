"""``python -m bench soak``: sustained load at the measured capacity, then a burst above it, on real parts
(tansu, a store worker, a pipeline worker with the configured model, chDB).

1. Capacity: a backlog published at once; documents stored per second while it drains.
2. Soak: the synthetic feed paced at that capacity for ``minutes``; every few seconds the resident memory
   (RSS, the process and its children, from /proc) of the broker and each worker, the backlog (published,
   not yet stored) and each stage's in-process buffer (``sentimon_buffered_messages``). Bounded memory
   means worker RSS flat while the backlog, if any, waits in Kafka: each stage's buffer holds a few
   micro-batches and Faust stops fetching when it is full. (The local tansu keeps messages in memory:
   its RSS grows with what was published; Apache Kafka keeps them on disk.)
3. Burst: ``burst_x`` times the capacity for ``burst_s`` seconds, published at once; the time it takes to
   drain, and the count at the end: every published item stored (nothing lost, nothing twice).

Writes ``soak.json`` and ``soak.png`` (RSS and backlog over time) under ``out_dir``.
"""

from __future__ import annotations

import tempfile
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path

import orjson

from bench.results import save_plot, save_result
from sentimon.settings import Settings
from streams import memory, metrics
from sentimon.cluster import LocalCluster
from streams.feed import publish
from streams.process import descendants as below
from streams.synthetic import SyntheticFeed


def rss_mb(pid: int, descendants: bool = True, field: str = "VmRSS") -> float:
    """Resident memory of a process and (``descendants``) its descendants, MiB (Linux /proc); ``field``
    ``RssAnon`` counts only anonymous memory (heaps, arenas, stacks: not the shared libraries' pages)."""
    total = 0
    for p in [pid, *(below(pid) if descendants else ())]:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith(f"{field}:"):
                    total += int(line.split()[1])
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return total / 1024


def _items(seed: int, n: int, rate: float, start: datetime) -> list[tuple[str, bytes]]:
    feed = SyntheticFeed(seed=seed, start=start, rhythm=False)
    return [(kind, orjson.dumps(item)) for _, kind, item in feed.items(n, rate)]


def run_soak_bench(settings: Settings, out_dir: Path, quick: bool = False, log: Callable[[str], None] = print,
                   minutes: float | None = None, burst_x: float = 5.0, burst_s: float | None = None,
                   sample_s: float = 5.0) -> dict:
    """The soak (``quick``: 1 minute and a 10 s burst, a smoke run; default 10 minutes and 30 s)."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    minutes = minutes or (1.0 if quick else 10.0)
    burst_s = burst_s or (10.0 if quick else 30.0)

    result: dict = {"minutes": minutes, "burst_x": burst_x, "burst_s": burst_s, "scorer": settings.scoring.backend,
                    "dedup_window": settings.stream.dedup_window, "samples": []}
    with tempfile.TemporaryDirectory() as tmp:
        s = settings.model_copy(update={
            "topics": settings.topics.model_copy(update={"prefix": "soak."}),
            "store": settings.store.model_copy(update={"dsn": f"chdb://{Path(tmp) / 'store'}"}),
        })
        with LocalCluster(s, Path(tmp) / "run") as cluster:
            store, pipeline = cluster.start_worker("store"), cluster.start_worker("pipeline")
            procs = {"broker": cluster.broker, "store worker": store, "pipeline worker": pipeline}
            published = 0

            def handled() -> int:
                return metrics.handled(metrics.combined(store.metrics(), pipeline.metrics()))

            def wait_handled(n: int, timeout_s: float) -> None:
                deadline = time.monotonic() + timeout_s
                while handled() < n:
                    if time.monotonic() > deadline or not (store.alive() and pipeline.alive()):
                        raise RuntimeError(f"soak: {handled()} of {n} handled; see {cluster.workdir}")
                    time.sleep(0.5)

            now = datetime.now(timezone.utc)
            # 1. capacity
            warm = _items(1, 3000, 100.0, now - timedelta(hours=2))
            published += publish(cluster.settings, warm)
            began = time.monotonic()
            wait_handled(published, 900)
            capacity = len(warm) / (time.monotonic() - began)
            result["capacity_docs_per_s"] = capacity
            log(f"capacity: {capacity:,.0f} docs/s (a backlog of {len(warm)} drained)")

            # 2. soak at the capacity, sampling memory and backlog
            n = int(capacity * minutes * 60)
            soak = _items(2, n, capacity, now - timedelta(hours=1))
            feeder = threading.Thread(target=publish, args=(cluster.settings, soak, capacity), daemon=True)
            census = pipeline.get("/debug/objects?limit=200", timeout_s=60)
            t0 = time.monotonic()
            feeder.start()
            with Progress(TextColumn("soak"), BarColumn(), TextColumn("{task.fields[info]}"), TimeElapsedColumn()) as bar:
                task = bar.add_task("soak", total=minutes * 60, info="")
                while feeder.is_alive():
                    time.sleep(sample_s)
                    t = time.monotonic() - t0
                    sent = published + min(n, int(capacity * t))
                    own = pipeline.metrics()
                    m = metrics.combined(store.metrics(), own)
                    sample = {"t_s": round(t, 1), "backlog": int(max(0, sent - metrics.handled(m))),
                              "ingested": int(m.get("consumed.ingest", 0)),  # since the worker started
                              **{name: round(rss_mb(p.process.pid), 1) for name, p in procs.items()},
                              # the worker's own process apart from its helpers (model processes, ingest helper)
                              "pipeline worker alone": round(rss_mb(pipeline.process.pid, descendants=False), 1),
                              ALONE_ANON: round(rss_mb(pipeline.process.pid, descendants=False, field="RssAnon"), 1),
                              # its C heap (sentimon_heap_bytes, as of its last trim): what is allocated vs free
                              **heap_mb(own, "pipeline"),
                              **python_k(own, "pipeline"),
                              "buffered": {k.removeprefix("buffered."): int(v) for k, v in m.items() if k.startswith("buffered.")}}
                    result["samples"].append(sample)
                    bar.update(task, completed=min(t, minutes * 60),
                               info=f"backlog {sample['backlog']:,}, RSS " + ", ".join(f"{k} {sample[k]:.0f} MB" for k in procs))
            published += n
            wait_handled(published, 1800)
            result["soak_s"] = time.monotonic() - t0
            # what the pipeline worker's Python objects gained over the soak, by type
            result["objects_grown"] = memory.grown(census, pipeline.get("/debug/objects?limit=200", timeout_s=60))

            # 3. a burst above capacity
            burst = _items(3, int(capacity * burst_x * burst_s), capacity * burst_x, now - timedelta(minutes=30))
            b0 = time.monotonic()
            published += publish(cluster.settings, burst)
            result["burst_publish_s"] = time.monotonic() - b0
            wait_handled(published, 1800)
            result["burst_items"], result["burst_drain_s"] = len(burst), time.monotonic() - b0
            result["burst_rss_mb"] = {name: round(rss_mb(p.process.pid), 1) for name, p in procs.items()}
            log(f"burst: {len(burst):,} items ({burst_x:g}x capacity for {burst_s:g} s) drained in {result['burst_drain_s']:.0f} s")
            with cluster.store() as st:
                counts = st.counts()
        result["published"], result["stored"] = published, counts["documents"]
        result["lost"] = published - counts["documents"]
        result["counted_twice"] = counts["aggregated_docs"] - counts["documents"]
    summarize(result, [*procs, "pipeline worker alone", ALONE_ANON, *HEAP, *PYTHON], out_dir, log)
    save_result(out_dir, "soak", result, log)
    return result


ALONE_ANON = "pipeline worker alone, anonymous"
HEAP = ("pipeline heap in use", "pipeline heap free", "pipeline heap mmapped")
PYTHON = ("pipeline python blocks (k)", "pipeline python tracked objects (k)")


def python_k(m: dict[str, float], worker: str) -> dict[str, float]:
    """A worker's Python allocations from its metrics, thousands: pymalloc blocks held and objects the garbage
    collector tracks (names in :data:`PYTHON` for the pipeline); empty before its first sample."""
    if "python_objects.blocks" not in m:
        return {}
    return {f"{worker} python {label} (k)": round(m[f"python_objects.{kind}"] / 1000, 1)
            for kind, label in (("blocks", "blocks"), ("tracked", "tracked objects"))}


def heap_mb(m: dict[str, float], worker: str) -> dict[str, float]:
    """A worker's C heap from its metrics, MiB: allocated (``<worker> heap in use``), held free by the
    allocator (``<worker> heap free``) and in blocks mmapped on their own (``<worker> heap mmapped``);
    empty before its first heap sample (or off glibc)."""
    if "heap_bytes.in_use" not in m:
        return {}
    return {f"{worker} heap {kind.replace('_', ' ')}": round(m[f"heap_bytes.{kind}"] / 2**20, 1)
            for kind in ("in_use", "free", "mmapped")}


def window_full_at(samples: list[dict], window: int) -> float | None:
    """When (seconds into the soak) the pipeline worker had ingested ``window`` documents, so its duplicate
    window was full and stopped growing by design; None if it never was (samples without a count: 0)."""
    return next((x["t_s"] for x in samples if x.get("ingested", 0) >= window), None)


def _slope(samples: list[dict], name: str) -> float | None:
    """MiB/min of ``name`` over ``samples`` (least squares), None with fewer than 2 samples."""
    from statistics import linear_regression

    if len(samples) < 2:
        return None
    return linear_regression([x["t_s"] / 60 for x in samples], [x[name] for x in samples]).slope


def summarize(result: dict, names: list[str], out_dir: Path, log: Callable[[str], None]) -> None:
    """RSS first/last/max per process and its growth over the second half of the soak (MiB/min, the
    least-squares slope: allocators and the store's merges make RSS a sawtooth, two end points mislead), also
    counted only from when the duplicate window was full (it fills by design: 50,000 documents take 4-6 minutes
    at the model's rate here); a plot."""

    samples = result["samples"]
    half = [x for x in samples if x["t_s"] >= samples[-1]["t_s"] / 2] if samples else []
    full = window_full_at(samples, result.get("dedup_window", 0))
    steady = [x for x in half if full is not None and x["t_s"] >= full]
    result["window_full_s"] = full
    result["rss"] = {}
    for name in names:
        values = [x[name] for x in samples if name in x]
        growth = _slope([x for x in half if name in x], name) or 0.0
        after = _slope([x for x in steady if name in x], name)
        result["rss"][name] = {"first_mb": values[0] if values else None, "last_mb": values[-1] if values else None,
                               "max_mb": max(values) if values else None, "second_half_mb_per_min": round(growth, 2),
                               "steady_mb_per_min": None if after is None else round(after, 2)}
        what, unit = ("", "k") if name in PYTHON else ("", "MB") if name in HEAP else ("RSS ", "MB")
        steady_text = (f", with the duplicate window full {after:+.1f} {unit}/min" if after is not None
                       else ", the duplicate window not full over the second half (run longer)")
        log(f"{name}: {what}{values[0]:.0f} -> {values[-1]:.0f} {unit} (max {max(values):.0f}), second half "
            f"{growth:+.1f} {unit}/min{steady_text}" if values else f"{name}: no samples")
    result["max_backlog"] = max((x["backlog"] for x in samples), default=0)
    stages = sorted({k for x in samples for k in x.get("buffered", {})})
    result["max_buffered"] = {k: max(x.get("buffered", {}).get(k, 0) for x in samples) for k in stages}
    log("largest in-process buffers (messages): " + ", ".join(f"{k} {v}" for k, v in result["max_buffered"].items()))
    if result.get("objects_grown") is not None:
        log("Python objects the pipeline worker gained over the soak, by type: "
            + (", ".join(f"{k} +{v:,}" for k, v in result["objects_grown"].items()) or "none"))
    log(f"published {result['published']:,}, stored {result['stored']:,}: lost {result['lost']}, counted twice "
        f"{result['counted_twice']}; largest backlog during the soak {result['max_backlog']:,}")

    def draw(plt):
        t = [x["t_s"] / 60 for x in samples]
        fig, (top, middle, bottom) = plt.subplots(3, 1, figsize=(9, 8), sharex=True)
        for name in (n for n in names if n not in PYTHON):
            top.plot([x["t_s"] / 60 for x in samples if name in x], [x[name] for x in samples if name in x], label=name,
                     linestyle="--" if name in HEAP else "-")
        if full is not None:
            top.axvline(full / 60, linestyle=":", color="gray", label="duplicate window full")
        top.set_ylabel("RSS; C heap dashed (MiB)")
        top.legend(loc="upper left")
        top.set_title(f"soak at {result['capacity_docs_per_s']:,.0f} docs/s for {result['minutes']:g} min")
        for name in PYTHON:
            middle.plot([x["t_s"] / 60 for x in samples if name in x], [x[name] for x in samples if name in x], label=name)
        middle.set_ylabel("Python (thousands)")
        middle.legend(loc="upper left")
        bottom.plot(t, [x["backlog"] for x in samples], color="tab:red")
        bottom.set_ylabel("backlog (items)")
        bottom.set_xlabel("minutes")
        return fig

    save_plot(out_dir, "soak", draw, log)
