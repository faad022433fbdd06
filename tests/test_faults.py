"""Faults on real parts (tansu, Faust workers, chDB): the store failing inserts for a while, and a partial
write (documents stored, scores not), injected at the store's client boundary (``SENTIMON_FAULTS``).
Nothing lost, nothing counted twice, the worker stays up, and the time to recover is measured.
(Workers killed with SIGKILL, Triton killed: tests/test_pipeline.py; webhook receivers failing:
tests/test_alerts_webhook.py and tests/test_alerts_pipeline.py.)"""

from __future__ import annotations

import time
from datetime import timedelta

import pytest

from conftest import record_figure, wait_until
from test_pipeline import synthetic
from sentimon.settings import Settings
from streams import faults
from sentimon.cluster import LocalCluster
from streams.feed import publish
from streams.store import Store


def test_fault_specs_are_read_and_refused_clearly():
    f = faults.parse("store.insert=fail:0.3s, store.scores=fail:2x")
    assert [f["store.scores"].fires() for _ in range(3)] == [True, True, False]
    assert f["store.insert"].fires() and (time.sleep(0.35) or not f["store.insert"].fires())
    with pytest.raises(ValueError, match="POINT=fail:20s"):
        faults.parse("store.insert=explode")


def test_a_failed_commit_evaluates_the_same_windows_again(tmp_path, monkeypatch):
    """The evaluator after a store failure: reload from the recorded progress, the same changes again."""
    from alerts.evaluate import Evaluator
    from test_alerts_store import RULES, T0, history

    store = Store(f"chdb://{tmp_path / 'store'}", "sentimon_faults")
    store.migrate()
    store.write(history())
    first = Evaluator(RULES, store)
    changes = first.advance(T0 + timedelta(minutes=70))
    assert any(c.status == "firing" for c in changes)
    monkeypatch.setattr(faults, "_FAULTS", faults.parse("store.insert=fail:1x"))
    with pytest.raises(faults.InjectedFault):
        first.commit(changes)
    first.reload()
    assert first.advance(T0 + timedelta(minutes=70)) == changes  # the same changes, from the recorded start
    first.commit(changes)
    again = Evaluator(RULES, store)
    assert again.evaluated_until == first.evaluated_until and again.advance(T0 + timedelta(minutes=70)) == []
    store.close()


@pytest.mark.slow
def test_the_store_failing_for_a_while_loses_nothing_and_counts_nothing_twice(broker, tmp_path, monkeypatch):
    outage_s = 15.0
    monkeypatch.setenv("SENTIMON_FAULTS", f"store.insert=fail:{outage_s:g}s,store.scores=fail:3x")
    settings = Settings(kafka={"bootstrap_servers": broker.bootstrap}, topics={"prefix": "faults."},
                        store={"dsn": f"chdb://{tmp_path / 'store'}"}, scoring={"backend": "noop"},
                        alerts={"idle_partition_s": 5})
    n = 1500
    with LocalCluster(settings, tmp_path / "run", start_broker=False) as cluster:
        store = cluster.start_worker("store")
        pipeline = cluster.start_worker("pipeline")
        began = time.monotonic()
        assert publish(cluster.settings, synthetic(n, seed=7)) == n
        retried = lambda: store.metrics().get("store_retries.StoreSink", 0)  # noqa: E731
        wait_until(lambda: retried() >= 1, 60, "the first failed insert", [store, pipeline])
        failing_since = time.monotonic()
        health = store.health()  # not ready while the store fails, saying why
        assert health["ready"] is False and "InjectedFault" in str(health["store_failing"]), health
        stored = lambda: store.metrics().get("produced.sink", 0)  # noqa: E731
        wait_until(lambda: stored() >= n, 240, "every document stored after the outage", [store, pipeline])
        recovered = time.monotonic()
        assert store.alive() and pipeline.alive() and store.health()["ready"]  # ready again, by itself
        m = store.metrics()
        time.sleep(3)
        with cluster.store() as s:
            counts = s.counts()
            archived = s.query("SELECT count() FROM {db}.raw_items FINAL")[0][0]
    assert counts["documents"] == counts["scores"] == counts["aggregated_docs"] == n, counts
    assert archived == n  # the archive's inserts failed too, and were retried
    assert m["store_retries.StoreSink"] >= 3
    # the outage ends outage_s after the first failed insert; what it took from there to catch up
    after_s = max(0.0, recovered - failing_since - outage_s)
    record_figure("store outage", injected=f"every insert fails for {outage_s:g} s, then 3 partial writes",
                  documents=n, stored=counts["documents"], lost=n - counts["documents"],
                  counted_twice=counts["aggregated_docs"] - n, retries=int(m["store_retries.StoreSink"]),
                  caught_up_after_outage_s=round(after_s, 1), total_s=round(recovered - began, 1))


@pytest.mark.slow
def test_a_broker_restart_with_durable_storage_loses_nothing(tmp_path):
    """tansu on S3 (a local S3 server): killed with SIGKILL mid-stream and started again on the same port.
    Topics, offsets and groups come back from the bucket; the workers reconnect by themselves."""
    from sentimon.local.broker import Broker
    from sentimon.local.s3 import S3Server

    n = 1200
    with S3Server(tmp_path / "s3.log") as s3:
        broker = Broker(log=tmp_path / "broker.log", storage=f"s3://{s3.bucket}/", env=s3.env).start()
        try:
            settings = Settings(kafka={"bootstrap_servers": broker.bootstrap}, topics={"prefix": "durable."},
                                store={"dsn": f"chdb://{tmp_path / 'store'}"}, scoring={"backend": "noop"})
            with LocalCluster(settings, tmp_path / "run", start_broker=False) as cluster:
                store, pipeline = cluster.start_worker("store"), cluster.start_worker("pipeline")
                items = synthetic(n, seed=9)
                assert publish(cluster.settings, items[: n // 2]) == n // 2
                stored = lambda: store.metrics().get("produced.sink", 0)  # noqa: E731
                wait_until(lambda: stored() >= 200, 120, "a first part stored", [store, pipeline])
                broker.kill()
                time.sleep(2)
                broker.start()
                restarted = time.monotonic()
                assert publish(cluster.settings, items[n // 2:]) == n - n // 2  # produced after the restart
                try:
                    wait_until(lambda: stored() >= n, 300, "every document stored after the broker restart", [store, pipeline])
                except AssertionError as exc:
                    # a retry answered DuplicateSequenceNumber for a batch tansu did not keep: see README, "Hardening"
                    lines = (tmp_path / "broker.log").read_text(errors="replace").splitlines()
                    warnings = [line for line in lines if "WARN" in line or "ERROR" in line]
                    raise AssertionError(f"{exc}\n--- broker warnings\n" + "\n".join(warnings[-20:])) from None
                back_s = time.monotonic() - restarted
                assert store.alive() and pipeline.alive()
                time.sleep(3)
                with cluster.store() as s:
                    counts = s.counts()
        finally:
            broker.stop()
    assert counts["documents"] == counts["scores"] == counts["aggregated_docs"] == n, counts
    record_figure("broker restart (durable tansu on S3)", injected="SIGKILL of the broker mid-stream, started again after 2 s",
                  documents=n, stored=counts["documents"], lost=n - counts["documents"],
                  counted_twice=counts["aggregated_docs"] - n, all_stored_after_restart_s=round(back_s, 1))


@pytest.mark.slow
def test_the_default_producer_keeps_every_acknowledged_message_through_broker_kills(tmp_path):
    """A durable tansu killed twice while BatchProducer sends and awaits batches: with the default
    (``kafka.idempotence`` off) every acknowledged message is in the log afterwards. With idempotence on,
    tansu loses some (``python -m bench broker``: 111 of 39,500 over 4 kills)."""
    from sentimon.settings import KafkaSettings
    from bench.broker import loss_under_kills

    result = loss_under_kills(KafkaSettings().idempotence, kills=2, work=tmp_path)
    assert result["acknowledged"] >= 1000, result
    assert result["lost"] == 0, result
    record_figure("durable tansu killed twice mid-produce (default producer)", injected="2 SIGKILLs of the broker, 1 s down each",
                  acknowledged=result["acknowledged"], lost=result["lost"], written_twice=result["written_twice"])
