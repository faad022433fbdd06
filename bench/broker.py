"""``python -m bench broker``: the producer's two delivery modes (``kafka.idempotence``) side by side on tansu.

1. Throughput on a memory tansu, through :class:`~streams.kafka.producer.BatchProducer` (the pipeline's
   producer): small messages (a raw feed's) and envelope-sized ones (the stages'), modes interleaved.
2. Loss under crashes: a durable tansu (S3 storage on a local S3 API, :mod:`sentimon.local.s3`) killed with
   SIGKILL ``kills`` times while the producer sends batches and waits for each one's acknowledgement;
   at the end every partition is read back from the start. ``lost``: acknowledged, not in the log.
   ``written_twice``: a retry wrote a batch again (the idempotent sinks absorb those).

tansu can answer an idempotent producer's retry after a crash with ``DuplicateSequenceNumber`` for a
batch it did not keep; librdkafka then takes the batch as delivered. The broker's log lines that say so
are counted. Apache Kafka keeps a batch and its sequence numbers together; this measures tansu.
"""

from __future__ import annotations

import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from statistics import median

from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from bench.results import save_result
from sentimon.settings import KafkaSettings, Settings
from sentimon.local.broker import Broker
from streams.kafka.config import confluent_config
from streams.kafka.producer import BatchProducer, OutMessage

TOPIC, PARTITIONS = "bench-broker", 3
MODES = {"idempotent": True, "plain": False}  # kafka.idempotence
SIZES = {"small": 400, "envelope": 30_000}  # bytes: a raw feed item, a stage's envelope


def _topic(kafka: KafkaSettings) -> None:
    admin = AdminClient(confluent_config(kafka))
    admin.create_topics([NewTopic(TOPIC, PARTITIONS, 1)])[TOPIC].result(10)


def throughput(kafka: KafkaSettings, n: int, size: int) -> float:
    """Messages/s of ``n`` messages of ``size`` bytes (keys spread them), produced and all acknowledged."""
    producer = BatchProducer(kafka)
    value = b"x" * size
    began = time.perf_counter()
    errors = producer.produce(OutMessage(TOPIC, value, str(i).encode()) for i in range(n))
    elapsed = time.perf_counter() - began
    producer.close()
    if errors:
        raise RuntimeError(f"{len(errors)} messages not delivered: {errors[0]}")
    return n / elapsed


def _read_back(kafka: KafkaSettings, quiet_s: float = 5.0) -> list[int]:
    """Every message of the topic from offset 0 (values are integers); stops after ``quiet_s`` of nothing."""
    consumer = Consumer(confluent_config(kafka, **{"group.id": "bench-broker-check", "enable.auto.commit": False}))
    consumer.assign([TopicPartition(TOPIC, p, 0) for p in range(PARTITIONS)])
    seen, last = [], time.monotonic()
    try:
        while time.monotonic() - last < quiet_s:
            for m in consumer.consume(1000, 1.0):
                if m.error() is None:
                    seen.append(int(m.value()))
                    last = time.monotonic()
    finally:
        consumer.close()
    return seen


def loss_under_kills(idempotence: bool, kills: int, work: Path, batch: int = 500, every_s: float = 1.5) -> dict:
    """Produce batches of ``batch`` integers to a durable tansu, killing it ``kills`` times (every
    ``every_s``, down 1 s each time); counts of acknowledged, read back, lost and written twice."""
    from sentimon.local.s3 import S3Server

    with S3Server(work / "s3.log") as s3:
        broker = Broker(log=work / "broker.log", storage=f"s3://{s3.bucket}/", env=s3.env).start()
        try:
            kafka = KafkaSettings(bootstrap_servers=broker.bootstrap, idempotence=idempotence)
            _topic(kafka)
            producer, acked, failed, stop = BatchProducer(kafka), set(), 0, threading.Event()

            def batches() -> Iterator[range]:
                start = 0
                while not stop.is_set():
                    yield range(start, start + batch)
                    start += batch

            def produce() -> None:
                nonlocal failed
                for ids in batches():
                    errors = producer.produce(OutMessage(TOPIC, str(i).encode(), str(i % 97).encode()) for i in ids)
                    if errors:
                        failed += len(ids)  # which ones failed is not known: none of the batch counts as acknowledged
                    else:
                        acked.update(ids)

            thread = threading.Thread(target=produce, daemon=True)
            thread.start()
            for _ in range(kills):
                time.sleep(every_s)
                broker.kill()
                time.sleep(1.0)
                broker.start()
            time.sleep(every_s)
            stop.set()
            thread.join(120)
            producer.close()
            seen = _read_back(kafka)
        finally:
            broker.stop()
    log = (work / "broker.log").read_text(errors="replace")
    unique = set(seen)
    return {"kills": kills, "acknowledged": len(acked), "in_failed_batches": failed, "in_log": len(seen),
            "lost": len(acked - unique), "written_twice": len(seen) - len(unique),
            "duplicate_sequence_lines": log.count("DuplicateSequenceNumber")}


def run_broker_bench(settings: Settings, out_dir: Path, quick: bool = False, log: Callable[[str], None] = print,
                     reps: int | None = None, kills: int | None = None) -> dict:
    """Both modes side by side: throughput (``reps`` interleaved rounds) and loss under ``kills`` crashes."""
    from rich.console import Console
    from rich.table import Table

    reps, kills = reps or (1 if quick else 3), kills or (2 if quick else 4)
    counts = {"small": 20_000, "envelope": 500} if quick else {"small": 100_000, "envelope": 2_000}
    rates: dict[str, dict[str, list[float]]] = {m: {k: [] for k in SIZES} for m in MODES}
    with tempfile.TemporaryDirectory(prefix="sentimon-broker-bench-") as tmp:
        with Broker(log=Path(tmp) / "memory-broker.log") as broker:
            _topic(KafkaSettings(bootstrap_servers=broker.bootstrap))
            for rep in range(reps):
                for mode, idempotence in MODES.items():
                    kafka = KafkaSettings(bootstrap_servers=broker.bootstrap, idempotence=idempotence)
                    for kind, size in SIZES.items():
                        rates[mode][kind].append(throughput(kafka, counts[kind], size))
                    log(f"round {rep + 1}/{reps} {mode}: {rates[mode]['small'][-1]:,.0f} small msg/s, "
                        f"{rates[mode]['envelope'][-1] * SIZES['envelope'] / 1e6:,.0f} MB/s of envelopes")
        losses = {}
        for mode, idempotence in MODES.items():
            work = Path(tmp) / mode
            work.mkdir()
            losses[mode] = loss_under_kills(idempotence, kills, work)
            log(f"{mode}, {kills} broker kills: {losses[mode]}")
    result = {"reps": reps, "bytes": SIZES, "rates_msg_s": rates, "loss": losses,
              "median_msg_s": {m: {k: median(v) for k, v in r.items()} for m, r in rates.items()}}
    result["plain_over_idempotent"] = {k: result["median_msg_s"]["plain"][k] / result["median_msg_s"]["idempotent"][k]
                                       for k in SIZES}
    table = Table(title=f"broker bench: tansu, kafka.idempotence on vs off (medians of {reps} interleaved rounds)",
                  title_justify="left")
    for column in ("mode", "small msg/s", "envelope MB/s", "kills", "acknowledged", "lost", "written twice",
                   "DuplicateSequenceNumber"):
        table.add_column(column, justify="left" if column == "mode" else "right")
    for mode in MODES:
        m, x = result["median_msg_s"][mode], losses[mode]
        table.add_row(mode, f"{m['small']:,.0f}", f"{m['envelope'] * SIZES['envelope'] / 1e6:,.0f}", str(x["kills"]),
                      f"{x['acknowledged']:,}", f"{x['lost']:,}", f"{x['written_twice']:,}", str(x["duplicate_sequence_lines"]))
    Console().print(table)
    r = result["plain_over_idempotent"]
    log(f"plain / idempotent throughput: small {r['small']:.2f}x, envelopes {r['envelope']:.2f}x")
    save_result(out_dir, "broker", result, log)
    return result
