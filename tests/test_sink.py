"""The batching sink's retry policy, with a fake store that fails on purpose (unit test only)."""

import threading

import pytest

from streams.sink import BatchingSink, SinkClosed


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
