"""The store against real chDB (clickhouse-connect's chdb:// backend)."""

import subprocess
import sys

import pytest

from conftest import scored
from schemas.migrate import migrations
from streams.store import Store, StoreUnavailable


@pytest.fixture()
def store(tmp_path):
    s = Store(f"chdb://{tmp_path / 'store'}", "sentimon_test")
    s.migrate()
    yield s
    s.close()


def test_migrations_are_ordered_and_idempotent(store):
    versions = [m.version for m in migrations()]
    assert versions == sorted(versions) and versions[0] == 1
    assert store.migrate() == []
    tables = {r[0] for r in store.query("SELECT name FROM system.tables WHERE database = {db:String}", {"db": "sentimon_test"})}
    assert {"documents", "scores", "entity_minute", "topic_minute", "entity_topic_minute", "schema_migrations"} <= tables


def test_writes_are_idempotent_by_doc_id(store):
    batch = [scored(f"d{i}", score=0.5) for i in range(10)]
    assert store.write(batch) == 10
    assert store.write(batch) == 0  # a redelivered batch adds nothing
    assert store.write(batch[5:] + [scored(f"n{i}") for i in range(5)] + [scored("n0")]) == 5
    assert store.counts() == {"documents": 15, "scores": 15, "aggregated_docs": 15, "aggregated_stories": 15}
    rows = store.query("SELECT count() FROM {db}.scores")
    assert rows[0][0] == 15  # physically once, not only after merges


def test_aggregates_per_entity_sector_market_and_duplicates_count_once(store):
    store.write([
        scored("a", minute=1, score=-0.8, tickers=("TSLA",), sectors=("Consumer Discretionary",)),
        scored("b", minute=1, score=-0.6, tickers=("TSLA",), sectors=("Consumer Discretionary",), duplicate_of="a"),
        scored("c", minute=1, score=0.4, tickers=("TSLA", "F"), sectors=("Consumer Discretionary",)),
        scored("d", minute=2, score=0.2, tickers=(), sectors=(), topic="Macro"),
    ])
    rows = store.query(
        "SELECT entity_kind, entity, sum(docs), sum(stories), round(sum(score_sum), 3), sum(negative) "
        "FROM {db}.entity_minute GROUP BY entity_kind, entity ORDER BY entity_kind, entity"
    )
    assert rows == [
        ("market", "all", 4, 3, -0.2, 1),
        ("sector", "Consumer Discretionary", 3, 2, -0.4, 1),
        ("ticker", "F", 1, 1, 0.4, 0),
        ("ticker", "TSLA", 3, 2, -0.4, 1),
    ]
    topics = dict(store.query("SELECT topic, sum(stories) FROM {db}.topic_minute GROUP BY topic"))
    assert topics == {"Earnings": 2, "Macro": 1}
    mix = store.query("SELECT topic, sum(docs) FROM {db}.entity_topic_minute WHERE entity = 'TSLA' GROUP BY topic")
    assert mix == [("Earnings", 3)]


def test_series_and_movers(store):
    # TSLA calm for 20 minutes, then negative; AAPL steady
    store.write([scored(f"t{m}", minute=m, score=0.3, tickers=("TSLA",)) for m in range(20)])
    store.write([scored(f"t{m}-{k}", minute=m, score=-0.9, tickers=("TSLA",), second=k) for m in range(20, 25) for k in range(2)])
    store.write([scored(f"a{m}", minute=m, score=0.2, tickers=("AAPL",)) for m in range(25)])
    movers = store.movers(window_minutes=5, baseline_minutes=30, min_stories=3)
    assert movers[0]["entity"] == "TSLA"
    assert movers[0]["change"] == pytest.approx(-1.2, abs=1e-6)
    assert [m["entity"] for m in movers] == ["TSLA", "AAPL"]
    assert movers[0]["negative_share"] == 1.0
    series = store.entity_series("TSLA", minutes=30, bucket_minutes=5)
    assert [round(r["mean_score"], 2) for r in series] == [0.3, 0.3, 0.3, 0.3, -0.9]
    assert sum(r["docs"] for r in series) == 30


def test_a_burst_does_not_become_its_own_baseline(store):
    # 20 calm minutes with one story each, then a burst: 30 stories a minute for 7 minutes
    store.write([scored(f"c{m}", minute=m, score=0.2, tickers=("TSLA",)) for m in range(20)])
    store.write([scored(f"b{m}-{k}", minute=m, score=-0.8, tickers=("TSLA",), second=k)
                 for m in range(20, 27) for k in range(30)])
    [tsla] = store.movers(window_minutes=5, baseline_minutes=30)
    assert tsla["baseline_stories"] == 20 + 60  # the burst's first two minutes are in the baseline...
    assert tsla["change"] < -0.8  # ...but weigh as two minutes, not as 60 stories


def test_a_second_process_is_told_the_store_is_owned(store, tmp_path):
    code = (
        "from streams.store import Store, StoreUnavailable\n"
        f"try:\n    Store('chdb://{tmp_path / 'store'}')\nexcept StoreUnavailable as e:\n    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert "owned by another process" in out.stdout, out.stdout + out.stderr


def test_one_store_per_process_is_explained(store, tmp_path):
    with pytest.raises(StoreUnavailable, match="one path per process"):
        Store(f"chdb://{tmp_path / 'other'}")
