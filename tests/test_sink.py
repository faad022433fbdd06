"""The batching sink's retry policy, with a fake store that fails on purpose (unit test only)."""

import threading

import pytest

from conftest import scored
from streams.sink import BatchingSink, SinkClosed, validate_scored


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
    assert sink.write([1, 2, 3]) == 3
    assert sink.attempts == 4 and sink.stored == [1, 2, 3]


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
