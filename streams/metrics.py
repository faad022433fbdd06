"""Prometheus metrics of every stage, served at ``/metrics`` by each worker's web server."""

from __future__ import annotations

import time

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest

STAGES = ("ingest", "scoring", "sink")
_SIZES = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096)
_SECONDS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)

consumed = Counter("sentimon_consumed", "items (documents, not envelopes) a stage consumed", ["stage"])
produced = Counter("sentimon_produced", "items a stage produced (ingest, scoring) or newly stored (sink)", ["stage"])
dead_letters = Counter("sentimon_dead_letters", "items sent to the dead-letter topic", ["stage"])
duplicates = Counter("sentimon_duplicates", "documents flagged as a duplicate of an earlier story")
scorer_unavailable = Counter("sentimon_scorer_unavailable", "scoring attempts that found the scorer unavailable")
buffered = Gauge("sentimon_buffered_messages", "messages waiting in a stage's in-process buffer (bounded: at the "
                 "bound the stage is the bottleneck and the backlog stays in Kafka)", ["stage"])
evaluation_failures = Counter("sentimon_evaluation_failures", "alert evaluations (or watermark records) that failed and are retried")
store_retries = Counter("sentimon_store_retries", "store writes that failed and were retried", ["sink"])
forged_alerts = Counter("sentimon_forged_alerts", "messages on the alerts topic without the evaluator's signature, "
                        "dead-lettered instead of notified")
store_rejected = Counter("sentimon_store_rejected", "items the store refused for themselves, dead-lettered", ["sink"])
redelivered = Counter("sentimon_redelivered", "documents the sink skipped because they were already stored")
first_batch = Gauge("sentimon_first_batch_timestamp_seconds", "when a stage's first micro-batch started (unix time)",
                    ["stage"])
first_done = Gauge("sentimon_first_batch_done_timestamp_seconds", "when a stage's first micro-batch finished, its "
                   "output written (unix time)", ["stage"])
last_batch = Gauge("sentimon_last_batch_timestamp_seconds", "when a stage last finished a micro-batch (unix time)",
                   ["stage"])
batch_size = Histogram("sentimon_batch_size", "micro-batch sizes", ["stage"], buckets=_SIZES)
batch_seconds = Histogram("sentimon_batch_seconds", "time to process one micro-batch", ["stage"], buckets=_SECONDS)
inference_seconds = Histogram("sentimon_inference_seconds", "classifier time per micro-batch", buckets=_SECONDS)
sink_seconds = Histogram("sentimon_sink_write_seconds", "store write time per micro-batch", buckets=_SECONDS)
end_to_end_seconds = Histogram(
    "sentimon_end_to_end_seconds", "event time to stored, per document (sampled: up to 256 per batch)",
    buckets=_SECONDS + (120, 300, 900, 3600),
)
pipeline_seconds = Histogram(
    "sentimon_pipeline_seconds", "ingested to stored, per document (the pipeline's own latency; sampled)",
    buckets=_SECONDS,
)
alert_changes = Counter("sentimon_alert_changes", "alert state changes the evaluator published", ["status"])
notifications = Counter("sentimon_notifications", "notifications per outcome (delivered, parked, nothing new)",
                        ["outcome"])
watermark = Gauge("sentimon_watermark_timestamp_seconds", "event-time watermark of the alert evaluator (unix time)")
heap_bytes = Gauge("sentimon_heap_bytes", "the worker process's C heap (glibc, all arenas): in_use allocated, free held "
                   "but unused (fragmentation), mmapped in blocks of their own; sampled with each trim", ["kind"])
python_objects = Gauge("sentimon_python_objects", "the worker process's Python allocations: blocks held from pymalloc, "
                       "tracked objects the garbage collector knows of; sampled with the heap", ["kind"])


_SNAPSHOT = {"consumed": consumed, "produced": produced, "dead_letters": dead_letters, "duplicates": duplicates,
             "redelivered": redelivered, "scorer_unavailable": scorer_unavailable, "first_batch": first_batch, "first_done": first_done, "last_batch": last_batch,
             "alert_changes": alert_changes, "notifications": notifications, "watermark": watermark,
             "buffered": buffered, "store_retries": store_retries, "store_rejected": store_rejected, "forged_alerts": forged_alerts, "evaluation_failures": evaluation_failures,
             "heap_bytes": heap_bytes, "python_objects": python_objects}
_TIME_SPENT = {"inference_seconds": inference_seconds, "sink_write_seconds": sink_seconds}  # totals, in snapshots
_started: set[str] = set()


def batch_done(stage: str, size: int, seconds: float) -> None:
    """Record one finished micro-batch of ``size`` items that took ``seconds``."""
    batch_size.labels(stage).observe(size)
    batch_seconds.labels(stage).observe(seconds)
    now = time.time()
    if stage not in _started:
        _started.add(stage)
        first_batch.labels(stage).set(now - seconds)
        first_done.labels(stage).set(now)
    last_batch.labels(stage).set(now)


def exposition() -> tuple[bytes, str]:
    """The text exposition of all metrics and its content type."""
    return generate_latest(), CONTENT_TYPE_LATEST


def snapshot() -> dict[str, float]:
    """Counter totals, micro-batch counts, batch timestamps and time spent by name and stage, e.g.
    ``{'consumed.ingest': 1200.0, 'batches.ingest': 5.0, 'last_batch.ingest': 1796.5e6, 'inference_seconds': 12.5}``
    (for summaries, benchmarks, tests)."""
    out: dict[str, float] = {}
    for name, metric in _SNAPSHOT.items():
        for sample in metric.collect()[0].samples:
            if sample.name.endswith("_total") or isinstance(metric, Gauge):
                label = next((sample.labels[k] for k in ("stage", "status", "outcome", "sink", "kind") if sample.labels.get(k)), None)
                out[name + (f".{label}" if label else "")] = sample.value
    for sample in batch_size.collect()[0].samples:
        if sample.name.endswith("_count"):
            out[f"batches.{sample.labels['stage']}"] = sample.value
    for name, histogram in _TIME_SPENT.items():
        out[name] = next(s.value for s in histogram.collect()[0].samples if s.name.endswith("_sum"))
    return out


def quantile(histogram: Histogram, q: float) -> float | None:
    """Estimate the q-quantile (0..1) of an unlabelled histogram from its buckets (upper bound of the
    bucket where the quantile falls, linearly interpolated); None when it has no observations."""
    buckets = [(float(s.labels["le"]), s.value) for s in histogram.collect()[0].samples if s.name.endswith("_bucket")]
    total = buckets[-1][1] if buckets else 0
    if not total:
        return None
    rank, lower_bound, lower_count = q * total, 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if bound == float("inf"):
                return lower_bound
            share = (rank - lower_count) / (count - lower_count) if count > lower_count else 1.0
            return lower_bound + (bound - lower_bound) * share
        lower_bound, lower_count = bound, count
    return lower_bound


def latencies() -> dict[str, float | None]:
    """p50/p99 seconds of the pipeline's own latency (ingested -> stored) and of event time -> stored."""
    return {
        "pipeline_p50_s": quantile(pipeline_seconds, 0.5),
        "pipeline_p99_s": quantile(pipeline_seconds, 0.99),
        "end_to_end_p50_s": quantile(end_to_end_seconds, 0.5),
        "end_to_end_p99_s": quantile(end_to_end_seconds, 0.99),
    }


def combined(*snapshots: dict[str, float]) -> dict[str, float]:
    """Counters of several workers added up (each worker reports only its own stages)."""
    total: dict[str, float] = {}
    for snapshot in snapshots:
        for key, value in snapshot.items():
            total[key] = total.get(key, 0.0) + value
    return total


def dead(m: dict[str, float]) -> float:
    """Items sent to the dead letters, all stages."""
    return sum(v for k, v in m.items() if k.startswith("dead_letters"))


def handled(m: dict[str, float]) -> float:
    """Items a deployment is done with: stored (new or already there) or dead-lettered."""
    return m.get("produced.sink", 0.0) + m.get("redelivered", 0.0) + dead(m)
