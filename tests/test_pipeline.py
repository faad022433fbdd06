"""The pipeline end to end on real parts: a tansu broker, Faust workers as processes, the real (tiny)
model, and a chDB store. Exact counts: nothing lost, nothing stored or aggregated twice."""

from __future__ import annotations

import base64
import hashlib
import time

import orjson
import pytest

from conftest import record_figure, wait_until
from sentimon.settings import Settings
from sentimon.cluster import LocalCluster
from streams.feed import publish
from streams.ingest import MAX_ORIGINAL_BYTES
from streams.kafka.consumer import read
from streams.kafka.producer import BatchProducer, OutMessage
from streams.synthetic import SyntheticFeed

pytestmark = pytest.mark.slow


@pytest.fixture()
def cluster(broker, tiny_model, tmp_path, request):
    settings = Settings(
        kafka={"bootstrap_servers": broker.bootstrap},
        topics={"prefix": request.node.name[:40] + "."},
        store={"dsn": f"chdb://{tmp_path / 'store'}"},
        stream={"max_batch": 128, "max_wait_s": 0.1},
        model=str(tiny_model[0]),
        threads=1,
    )
    c = LocalCluster(settings, tmp_path / "run", start_broker=False).start()
    yield c
    c.stop()


def synthetic(n: int, seed: int = 1) -> list[tuple[str, bytes]]:
    """``n`` raw items at 20 a second of event time from now, flat: with the daily rhythm, a night-time run
    spread 1,500 items over more than ``stream.max_future_s`` and the last ones were dead-lettered."""
    return [(k, orjson.dumps(i)) for _, k, i in SyntheticFeed(seed=seed, rhythm=False).items(n, 20.0)]


def stored_counts(cluster: LocalCluster) -> dict[str, int]:
    """Counts read from the store itself once every worker has stopped (chDB: one process at a time)."""
    with cluster.store() as store:
        counts = store.counts()
        counts["rows"] = store.query("SELECT count() FROM {db}.scores")[0][0]
        return counts


def test_n_in_n_stored_and_bad_messages_dead_lettered(cluster):
    good = synthetic(300)
    bad = [
        ("news", b'{"id": "x1", "source": "r", "headline": '),  # malformed JSON
        ("news", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"),  # binary
        ("news", orjson.dumps({"id": "x3", "source": "r", "published_at": "2026-11-29T07:00:00Z",
                               "headline": "big " * 80_000})),  # oversized
        ("social", orjson.dumps({"id": "x4", "source": "r", "published_at": "2026-11-29T07:00:00Z",
                                 "headline": "a news item on the social topic"})),  # wrong schema
        ("news", orjson.dumps({"id": "x5", "source": "r", "published_at": "2026-11-29T07:00:00Z",
                               "headline": "fine", "sentiment": "positive"})),  # unknown field
    ]
    # a JSON Lines message (a feed's bulk delivery): three items and, among them, one malformed line
    lines = [orjson.dumps({"id": f"jl-{i}", "source": "bulkwire", "published_at": "2026-11-29T07:00:00Z",
                           "headline": f"Apple shares {word} after the bulk delivery number {i}"})
             for i, word in enumerate(("rise", "fall", "drift"))]
    broken = b'{"id": "jl-x", "headline": '
    bulk = b"\n".join([lines[0], broken, lines[1], lines[2]])
    items = list(good)
    for i, b in enumerate(bad):
        items.insert(40 + 50 * i, b)
    items.insert(100, ("news", bulk))
    n_good = len(good) + len(lines)
    store = cluster.start_worker("store")
    pipeline = cluster.start_worker("pipeline")
    assert publish(cluster.settings, items) == len(items)
    # an envelope written to the documents topic by someone else: a malformed line (scoring rejects it)
    # and a line scoring can use but that is not a Document (the store rejects it before writing)
    not_json, not_a_document = b'{"doc_id": "zz1", "te', b'{"doc_id": "zz2", "text": "Apple falls", "kind": "blog"}'
    producer = BatchProducer(cluster.settings.kafka)
    assert not producer.produce([OutMessage(cluster.settings.topics.name("documents"), not_json + b"\n" + not_a_document)])
    producer.close()
    wait_until(lambda: store.metrics().get("produced.sink", 0) >= n_good and store.metrics().get("dead_letters.sink"),
               180, "all good documents stored", [store, pipeline])
    all_letters = [orjson.loads(m.value()) for m in read(cluster.settings.kafka, cluster.settings.topics.name("dead_letters"))]
    later = {d["stage"]: d for d in all_letters if d["stage"] != "ingest"}
    assert set(later) == {"scoring", "sink"} and len(all_letters) == len(bad) + 3
    assert "malformed JSON" in later["scoring"]["reason"] and later["scoring"]["index"] == 0
    assert base64.b64decode(later["scoring"]["original"]) == not_json
    assert "invalid scored document" in later["sink"]["reason"] and later["sink"]["topic"].endswith("scores")
    letters = [d for d in all_letters if d["stage"] == "ingest"]
    assert len(letters) == len(bad) + 1
    # keyed by the whole original's hash: a dead letter carries at most 256 KiB of it (the oversized one is cut)
    by_original = {bad_value: d for d in letters for bad_value in [v for _, v in bad] + [broken]
                   if d["original_sha256"] == hashlib.sha256(bad_value).hexdigest()}
    assert len(by_original) == len(letters) == len(bad) + 1
    for value, d in by_original.items():
        original = base64.b64decode(d["original"])
        assert original == (value[:MAX_ORIGINAL_BYTES] if d["truncated"] else value) and d["original_size"] == len(value)
    assert [d["truncated"] for d in by_original.values()].count(True) == 1  # the oversized one
    reasons = [by_original[value]["reason"] for _, value in bad]
    for reason, expected in zip(reasons, ("malformed JSON", "binary", "oversized message", "wrong schema for social",
                                          "unknown field 'sentiment'")):
        assert expected in reason
    for d in letters:
        assert d["stage"] == "ingest" and d["topic"].endswith(("raw-news", "raw-social")) and d["offset"] >= 0
    assert "malformed JSON" in by_original[broken]["reason"] and by_original[broken]["index"] == 1
    assert all(by_original[value]["index"] is None for _, value in bad)
    assert pipeline.metrics()["dead_letters.ingest"] == len(bad) + 1
    # the census of the worker's Python objects (for leak hunting): its own stage objects are among them
    census = pipeline.get("/debug/objects?limit=5000", timeout_s=60)
    assert census["faust.streams.Stream"] >= 2 and all(isinstance(v, int) and v > 0 for v in census.values())
    # the store worker keeps the dead letters in a table too (for the dashboards)
    wait_until(lambda: store.metrics().get("consumed.dead_letters", 0) >= len(all_letters), 60,
               "the dead letters stored", [store])
    # and every raw item in the archive (a JSON Lines message as its items), bad ones too
    n_raw = len(items) - 1 + 4
    wait_until(lambda: store.metrics().get("consumed.archive", 0) >= n_raw, 60, "the raw items archived", [store])
    counts = stored_counts(cluster)
    assert counts == {"documents": n_good, "scores": n_good, "aggregated_docs": n_good, "rows": n_good,
                      "aggregated_stories": counts["aggregated_stories"]}
    assert 0 < counts["aggregated_stories"] < n_good  # the synthetic feed republishes some stories
    with cluster.store() as s:
        assert s.query("SELECT count() FROM {db}.documents WHERE source = 'bulkwire'")[0][0] == 3
        archived = s.query("SELECT count(), countIf(event_time IS NULL), countIf(item_index > 0) FROM {db}.raw_items FINAL")
        assert archived == [(n_raw, 3, 3)], archived  # no time: malformed, binary, the bulk's broken line
        stages = dict(s.query("SELECT stage, count() FROM {db}.dead_letters FINAL GROUP BY stage"))
        assert stages == {"ingest": len(bad) + 1, "scoring": 1, "sink": 1}, stages
        reason, index = s.query("SELECT reason, item_index FROM {db}.dead_letters FINAL WHERE stage = 'scoring'")[0]
        assert reason == later["scoring"]["reason"] and index == 0


def test_workers_killed_mid_stream_lose_nothing_and_count_nothing_twice(cluster):
    n = 1200
    # a third arrives before each kill and a third after it, so each restarted worker has work whatever
    # the model's speed
    items = synthetic(n, seed=2)
    assert publish(cluster.settings, items[:400]) == 400
    store = cluster.start_worker("store")
    pipeline = cluster.start_worker("pipeline")
    stored = lambda w: w.metrics().get("produced.sink", 0)  # noqa: E731
    wait_until(lambda: stored(store) >= 250, 180, "a first part stored", [store, pipeline])
    before = stored(store)
    pipeline.kill()  # SIGKILL: no shutdown, no final commit
    killed = time.monotonic()
    assert publish(cluster.settings, items[400:800]) == 400
    pipeline = cluster.start_worker("pipeline")
    wait_until(lambda: stored(store) > before, 180, "storing again after the pipeline restart", [store, pipeline])
    pipeline_back_s = time.monotonic() - killed  # restart, group join, redelivery of the unacknowledged batch
    wait_until(lambda: stored(store) >= 600, 180, "more stored after the pipeline restart", [store, pipeline])
    store.kill()
    killed = time.monotonic()
    assert publish(cluster.settings, items[800:]) == 400
    store = cluster.start_worker("store")
    wait_until(lambda: store.metrics().get("produced.sink", 0) > 0, 180, "storing again after the store restart", [store])
    store_back_s = time.monotonic() - killed
    done = lambda: (store.get("/api/summary").get("counts", {}).get("scores") == n)  # noqa: E731
    wait_until(done, 240, "every document stored after both restarts", [store, pipeline])
    time.sleep(3)  # anything still in flight would land now
    counts = stored_counts(cluster)
    assert counts["documents"] == counts["scores"] == counts["rows"] == n
    assert counts["aggregated_docs"] == n  # the materialized views saw each document once
    record_figure("workers killed", injected="SIGKILL of the pipeline worker, later of the store worker, mid-stream",
                  documents=n, stored=counts["documents"], lost=n - counts["documents"],
                  counted_twice=counts["aggregated_docs"] - n, pipeline_storing_again_s=round(pipeline_back_s, 1),
                  store_storing_again_s=round(store_back_s, 1))


def test_two_pipeline_workers_split_the_partitions(cluster):
    n = 500
    store = cluster.start_worker("store")
    first = cluster.start_worker("pipeline")
    second = cluster.start_worker("pipeline")
    time.sleep(8)  # let the group settle on two members (tansu joins take session.timeout/2)
    # small flushes: keyless messages go to one partition per flush (librdkafka's sticky partitioner), so
    # many flushes reach every partition, and both workers have raw items to read
    assert publish(cluster.settings, synthetic(n, seed=3), batch=20) == n
    wait_until(lambda: store.metrics().get("produced.sink", 0) >= n, 240, "all documents stored", [store, first, second])
    a, b = first.metrics(), second.metrics()
    assert a.get("consumed.ingest", 0) > 0 and b.get("consumed.ingest", 0) > 0
    assert a.get("consumed.scoring", 0) > 0 and b.get("consumed.scoring", 0) > 0
    assert a["consumed.ingest"] + b["consumed.ingest"] >= n
    counts = stored_counts(cluster)
    assert counts["documents"] == counts["scores"] == counts["rows"] == counts["aggregated_docs"] == n


def test_triton_killed_mid_stream_loses_nothing_and_the_pipeline_resumes_by_itself(cluster):
    triton = cluster.start_triton()
    n, first = 900, 300
    items = list(synthetic(n, seed=4))
    assert publish(cluster.settings, items[:first]) == first
    store = cluster.start_worker("store")
    pipeline = cluster.start_worker("pipeline")  # ready only once the served model passed the start-up check
    stored = lambda: store.metrics().get("produced.sink", 0)  # noqa: E731
    wait_until(lambda: stored() >= 100, 240, "a first part stored through Triton", [store, pipeline])
    triton.kill()
    # the rest arrives while Triton is down (the first part may already be scored: the model is fast)
    assert publish(cluster.settings, items[first:]) == n - first
    wait_until(lambda: (pipeline.health() or {}).get("ready") is False, 60, "the pipeline worker reporting not ready",
               [store, pipeline])
    assert pipeline.health()["scorer_unavailable"]  # and why
    time.sleep(3)  # the stage holds its batch meanwhile
    assert pipeline.alive() and stored() < n
    held = stored()
    cluster.restart_triton()
    restarted = time.monotonic()
    wait_until(lambda: stored() > held, 300, "storing again after Triton came back", [store, pipeline])
    back_s = time.monotonic() - restarted  # Triton's own start (model load) included
    wait_until(lambda: stored() >= n, 300, "every document stored after Triton came back", [store, pipeline])
    assert pipeline.health()["ready"]  # ready again, by itself
    time.sleep(2)
    counts = stored_counts(cluster)
    assert counts["documents"] == counts["scores"] == counts["rows"] == counts["aggregated_docs"] == n
    with cluster.store() as s:
        assert s.query("SELECT DISTINCT model FROM {db}.scores")[0][0] == "sentimon-tiny"
    record_figure("Triton killed", injected="SIGKILL of tritonserver mid-stream, restarted after 3 s", documents=n,
                  stored=counts["documents"], lost=n - counts["documents"], counted_twice=counts["aggregated_docs"] - n,
                  storing_again_after_restart_s=round(back_s, 1))


def test_the_bench_faust_floor_reads_every_message(broker, tmp_path):
    """The pipeline benchmark's bare-Faust rows run (their settings reach faust.App once each) and count
    exactly the messages of their topic, with the workers' delivery and with Faust's own (a consumer
    group each)."""
    from bench.pipeline import _faust_floor
    from streams.kafka.admin import ensure_topics

    settings = Settings(kafka={"bootstrap_servers": broker.bootstrap}, topics={"prefix": "floor."})
    ensure_topics(settings)
    topic = settings.topics.name("raw_news")
    publish(settings, [("news", v) for _, v in synthetic(500)])
    assert _faust_floor(settings, topic, 500) > 0
    assert _faust_floor(settings, topic, 500, "plain") > 0
