"""The batching sink's error classes, with fake stores that fail on purpose (unit tests only): transient failures
retried until they pass, data failures isolated to the refused items, a store that is down never turning a
batch into dead letters."""

import threading

import pytest

from conftest import scored
from streams.sink import BatchingSink, SinkClosed, Written, validate_scored


class FakeFlakyStore(BatchingSink[int]):
    """Fails the first ``failures`` writes, then stores; records every attempt."""

    def __init__(self, failures: int):
        super().__init__(backoff_s=0.01, max_backoff_s=0.02)
        self.failures, self.attempts, self.stored = failures, 0, []

    def _write(self, items):
        self.attempts += 1
        if self.attempts <= self.failures:
            raise ConnectionError("store down")
        self.stored.extend(items)
        return len(items)


def test_failed_writes_are_retried_until_they_succeed():
    sink = FakeFlakyStore(failures=3)
    assert sink.write([1, 2, 3]) == Written(3)
    assert sink.attempts == 4 and sink.stored == [1, 2, 3] and sink.failing == ""


class FakePoisonedStore(BatchingSink[int]):
    """Refuses any batch holding a negative item (as ClickHouse refuses a value out of a column's range);
    ``down`` makes every write and the probe fail as a store that is down would."""

    def __init__(self, error: Exception = ValueError("Value -1 too large to fit in C integer type")):
        super().__init__(backoff_s=0.01, max_backoff_s=0.02)
        self.error, self.down, self.stored, self.attempts = error, False, [], 0

    def _write(self, items):
        self.attempts += 1
        if self.down:
            raise OSError("Connection refused")
        if any(i < 0 for i in items):
            raise self.error
        self.stored.extend(items)
        return len(items)

    def _probe(self):
        if self.down:
            raise OSError("Connection refused")


@pytest.mark.parametrize("poison", [[5], [0, 9], [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], []])
def test_refused_items_are_isolated_and_every_other_item_is_stored(poison):
    items = [-1 if i in poison else i for i in range(10)]
    sink = FakePoisonedStore()
    written = sink.write(items)
    assert [i for i, _ in written.rejected] == poison
    assert all(why.startswith("ValueError: Value -1") for _, why in written.rejected)
    assert sorted(sink.stored) == [i for i in range(10) if i not in poison] and written.new == 10 - len(poison)


def test_a_clickhouse_refusal_is_isolated_but_a_missing_table_is_waited_out():
    from clickhouse_connect.driver.exceptions import DatabaseError

    sink = FakePoisonedStore(DatabaseError("Code: 252. DB::Exception: Too many partitions for single INSERT block"))
    assert [i for i, _ in sink.write([1, -1, 2]).rejected] == [1]
    sink = FakePoisonedStore(DatabaseError("Code: 60. DB::Exception: Unknown table expression identifier 'x.scores'"))
    threading.Timer(0.2, sink.close).start()
    with pytest.raises(SinkClosed):
        sink.write([1, -1, 2])
    assert sink.stored == [] and "Unknown table" in sink.failing


def test_a_store_that_is_down_turns_nothing_into_dead_letters():
    sink = FakePoisonedStore(ValueError("something odd"))
    sink.down = True
    threading.Timer(0.2, lambda: setattr(sink, "down", False)).start()
    written = sink.write([1, 2, -1, 3])
    assert [i for i, _ in written.rejected] == [2] and sorted(sink.stored) == [1, 2, 3]
    assert sink.attempts > 3 and sink.failing == ""


def test_errors_are_classified_by_what_they_say_about_the_store():
    from clickhouse_connect.driver.exceptions import DatabaseError, OperationalError

    from streams.errors import classify

    assert classify(OperationalError("Error HTTPConnectionPool: connection refused")) == "transient"
    assert classify(ConnectionError()) == classify(TimeoutError()) == "transient"
    assert classify(DatabaseError("Code: 241. DB::Exception: Memory limit (total) exceeded")) == "transient"
    assert classify(DatabaseError("Code: 252. DB::Exception: Too many parts (3001). Merges are slower")) == "transient"
    assert classify(DatabaseError("Code: 252. DB::Exception: Too many partitions for single INSERT block")) == "data"
    assert classify(DatabaseError("Code: 53. DB::Exception: Type mismatch")) == "data"
    assert classify(OverflowError("int too big to convert")) == "data"


def test_closing_during_failures_raises_so_nothing_is_acknowledged():
    sink = FakeFlakyStore(failures=10**9)
    threading.Timer(0.1, sink.close).start()
    with pytest.raises(SinkClosed):
        sink.write([1])
    assert sink.stored == []


def test_scored_lines_are_validated_together_and_bad_ones_named_alone():
    good = [scored(f"d{i}").model_dump_json().encode() for i in range(3)]
    assert [v.document.doc_id for v in validate_scored(good)] == ["d0", "d1", "d2"]
    two_in_one = good[0] + b"," + good[1]  # one line that would pass as two items of the joined array
    wrong = good[2].replace(b'"kind":"news"', b'"kind":"blog"')
    out = validate_scored([good[0], b'{"broken', two_in_one, wrong, good[1]])
    assert out[0].document.doc_id == "d0" and out[4].document.doc_id == "d1"
    assert all(isinstance(o, str) and o.startswith("invalid scored document") for o in out[1:4])
    assert "document.kind" in out[3]
    assert validate_scored([]) == []
