"""Small pieces of the stream layer that need no servers: metrics, settings hand-over, scorer contract."""

import asyncio
import json

import orjson
import pytest

from prometheus_client import Histogram

from conftest import scored
from schemas import ScoredDocument
from sentimon.settings import Settings
from streams import metrics
from sentimon.cluster import settings_env
from streams.scorer import NoopScorer, scorable, scored_messages


def test_histogram_quantiles():
    h = Histogram("sentimon_test_seconds", "test", buckets=(0.1, 0.2, 0.5, 1.0))
    assert metrics.quantile(h, 0.5) is None
    for v in [0.05] * 50 + [0.15] * 40 + [0.7] * 10:
        h.observe(v)
    assert 0.0 < metrics.quantile(h, 0.5) <= 0.1
    assert 0.5 < metrics.quantile(h, 0.99) <= 1.0


def test_settings_reach_a_child_process_unchanged(monkeypatch):
    s = Settings(kafka={"bootstrap_servers": "h:1", "sasl_password": "pw"}, topics={"prefix": "x."},
                 privacy={"key": "secret"}, model="/m/1")
    env = settings_env(s)
    assert json.loads(env["SENTIMON_PRIVACY"]) == {"key": "secret"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    again = Settings()
    assert again.kafka.bootstrap_servers == "h:1" and again.kafka.sasl_password.get_secret_value() == "pw"
    assert again.topics.prefix == "x." and again.model == "/m/1" and again.privacy.key.get_secret_value() == "secret"


def test_scored_messages_follow_the_schema_in_order():
    docs = [scored(f"d{i}").document for i in range(5)]
    objects = [orjson.loads(d.model_dump_json()) for d in docs]
    out = scored_messages(objects, asyncio.run(NoopScorer().score([d["text"] for d in objects])))
    parsed = [ScoredDocument.model_validate_json(b) for b in out]
    assert [p.document for p in parsed] == docs
    assert all(p.score.sentiment == "neutral" and p.score.model == "noop" and p.score.doc_id == p.document.doc_id
               for p in parsed)


def test_kafka_security_settings_reach_both_clients(tmp_path):
    import ssl

    import faust

    from sentimon.settings import KafkaSettings
    from streams.kafka.config import confluent_config, faust_broker

    kafka = KafkaSettings(bootstrap_servers="k1:9093,k2:9093", security_protocol="SASL_SSL",
                          sasl_mechanism="SCRAM-SHA-512", sasl_username="sentimon", sasl_password="s3cret")
    conf = confluent_config(kafka, **{"group.id": "g"})
    assert conf == {"bootstrap.servers": "k1:9093,k2:9093", "security.protocol": "SASL_SSL",
                    "sasl.mechanism": "SCRAM-SHA-512", "sasl.username": "sentimon", "sasl.password": "s3cret",
                    "group.id": "g"}
    app_kwargs = faust_broker(kafka)
    assert app_kwargs["broker"] == "kafka://k1:9093;kafka://k2:9093"
    credentials = app_kwargs["broker_credentials"]
    assert isinstance(credentials, faust.SASLCredentials)
    assert credentials.username == "sentimon" and credentials.password == "s3cret"
    assert isinstance(credentials.ssl_context, ssl.SSLContext)
    assert "broker_credentials" not in faust_broker(KafkaSettings())  # plaintext by default


def test_scorable_takes_what_scoring_needs_and_names_what_is_missing():
    good = {"doc_id": "d1", "text": "Apple beats", "kind": "news"}
    assert scorable(orjson.dumps(good)) == good
    assert "malformed JSON" in scorable(b'{"doc_id": ')
    assert "expected a JSON object, got list" in scorable(b"[1]")
    assert scorable(orjson.dumps({"doc_id": "d1"})) == "invalid document: 'text' must be a non-empty string"
    assert scorable(orjson.dumps({"doc_id": 7, "text": "x"})) == "invalid document: 'doc_id' must be a non-empty string"


def test_ports_chosen_together_are_distinct_and_free():
    # a server given the same port for two listeners refuses to start (tritonserver did, once)
    import socket

    from streams.process import free_ports

    ports = free_ports(64)
    assert len(set(ports)) == 64
    for port in ports[:8]:
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))


def test_a_child_process_log_may_lie_in_a_folder_not_made_yet(tmp_path):
    """A fresh machine has no var/bench: starting a child there made the first `python -m bench pipeline` fail."""
    import sys

    from streams.process import ChildProcess

    log = tmp_path / "not" / "yet" / "child.log"
    child = ChildProcess(log)
    child.spawn([sys.executable, "-c", "print('hello from the child')"], env={})
    child.process.wait(30)
    assert "hello from the child" in child.tail()


def test_a_child_pinned_to_cores_runs_there_and_so_does_what_it_starts(tmp_path):
    """triton.cpus: a local tritonserver kept on cores of its own, its python-backend stubs included."""
    import os
    import sys

    from streams.process import ChildProcess

    before = os.sched_getaffinity(0)
    core = max(before)
    child = ChildProcess(tmp_path / "child.log")
    child.spawn([sys.executable, "-c", "import os, subprocess, sys; print('child', sorted(os.sched_getaffinity(0))); "
                 "subprocess.run([sys.executable, '-c', 'import os; print(\\'grandchild\\', sorted(os.sched_getaffinity(0)))'])"],
                env=dict(os.environ), cpus=[core])
    child.process.wait(30)
    assert f"child [{core}]" in child.tail() and f"grandchild [{core}]" in child.tail()
    assert os.sched_getaffinity(0) == before  # the parent keeps its own


def test_a_triton_server_on_cores_this_machine_lacks_says_which(tmp_path):
    import os

    from sentimon.local.triton import TritonServer, TritonUnavailable

    (tmp_path / "repo" / "m").mkdir(parents=True)
    (tmp_path / "repo" / "m" / "config.pbtxt").write_text("")
    missing = (os.cpu_count() or 1) + 1000
    with pytest.raises(TritonUnavailable, match=f"cores \\[{missing}\\]"):
        TritonServer(tmp_path / "repo", tmp_path / "work", cpus=[missing]).start()


def test_a_killed_child_takes_what_it_started_with_it(tmp_path):
    """tritonserver's python-backend stubs outlived their killed server (~500 MB each): kill() ends them too."""
    import os
    import sys
    import time

    from streams.process import ChildProcess, descendants

    child = ChildProcess(tmp_path / "child.log")
    # a grandchild in a session of its own: nothing ties its life to the child's
    child.spawn([sys.executable, "-c", "import subprocess, time; subprocess.Popen(['sleep', '60'], start_new_session=True); "
                 "print('started', flush=True); time.sleep(60)"], env=dict(os.environ))
    deadline = time.monotonic() + 20
    while not descendants(child.process.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    (grandchild,) = descendants(child.process.pid)
    child.kill()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _running(grandchild):
        time.sleep(0.05)
    assert not _running(grandchild)


def _running(pid: int) -> bool:
    try:
        return "zombie" not in open(f"/proc/{pid}/status").read()
    except FileNotFoundError:
        return False


def test_the_snapshot_counts_micro_batches_per_stage():
    from streams import metrics

    before = metrics.snapshot().get("batches.test-stage", 0)
    for size in (10, 20, 30):
        metrics.batch_done("test-stage", size, 0.01)
    snap = metrics.snapshot()
    assert snap["batches.test-stage"] - before == 3
    assert snap["first_batch.test-stage"] <= snap["first_done.test-stage"] <= snap["last_batch.test-stage"]


def test_paired_runs_give_the_ratio_with_and_without_the_fill():
    """Pure arithmetic of the pipeline benchmark's pairs: 1,000 documents in 10 s (100/s) of which the first
    2 s were filling, against 120/s alone on either side: 83%, and 1,000 / 8 s = 125/s once filled: 104%."""
    from bench.pipeline import _paired

    alone = iter([110.0, 130.0, 110.0])  # each pair against the mean of its neighbours: 120 both times
    counters = {"first_batch.ingest": 50.0, "first_done.ingest": 50.5, "first_batch.scoring": 52.0, "produced.scoring": 1000.0,
                "consumed.scoring": 1000.0, "batches.scoring": 4.0}
    out = _paired(2, lambda: next(alone), lambda rep: (100.0, counters), lambda line: None)
    assert [round(x, 3) for x in out["ratios"]] == [round(100 / 120, 3)] * 2
    assert [round(x, 3) for x in out["steady_ratios"]] == [round(125 / 120, 3)] * 2
    assert out["fill_s"] == [2.0, 2.0] and out["scoring_batch_docs"] == [250.0, 250.0]
    assert out["fill_first_ingest_s"] == [0.5, 0.5] and out["fill_handoff_s"] == [1.5, 1.5]
