import ctypes
import ctypes.util

import pytest

from streams import memory, metrics
from bench.soak import heap_mb

libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]


@pytest.mark.skipif(memory.heap() is None, reason="glibc >= 2.33 only")
def test_the_heap_tells_allocated_from_free_and_trim_gives_free_pages_back():
    """20 MB malloc'ed and written in 16 KiB chunks (below the mmap threshold: on the heap) count as in use; freeing
    every other chunk leaves holes the allocator keeps (free grows, in use falls), and trim releases them."""
    before = memory.heap()
    blocks = [libc.malloc(16 * 1024) for _ in range(1280)]
    for b in blocks:
        ctypes.memset(b, 1, 16 * 1024)  # resident, as a buffer that was used
    try:
        held = memory.heap()
        assert held.in_use - before.in_use >= 18 * 2**20
        for b in blocks[::2]:
            libc.free(b)
        holes = memory.heap()
        assert held.in_use - holes.in_use >= 9 * 2**20
        assert holes.free - held.free >= 9 * 2**20
        rss_pages = _rss_kb()
        assert memory.trim() is True
        assert _rss_kb() < rss_pages - 4 * 1024  # at least 4 of the ~10 MB of holes no longer resident
    finally:
        for b in blocks[1::2]:
            libc.free(b)


def _rss_kb() -> int:
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_heap_gauges_reach_the_snapshot_and_the_soak_reads_them_in_mib():
    assert heap_mb({}, "pipeline") == {}
    metrics.heap_bytes.labels("in_use").set(300 * 2**20)
    metrics.heap_bytes.labels("free").set(25.5 * 2**20)
    metrics.heap_bytes.labels("mmapped").set(0)
    snap = metrics.snapshot()
    assert snap["heap_bytes.in_use"] == 300 * 2**20
    assert heap_mb(snap, "pipeline") == {"pipeline heap in use": 300.0, "pipeline heap free": 25.5,
                                         "pipeline heap mmapped": 0.0}


def test_anonymous_rss_is_part_of_rss_and_grows_with_what_the_process_writes():
    import os

    from bench.soak import rss_mb

    before_anon, total = rss_mb(os.getpid(), False, "RssAnon"), rss_mb(os.getpid(), False)
    assert 0 < before_anon < total  # the shared libraries' pages are resident but not anonymous
    block = bytearray(64 * 2**20)  # zero pages: resident once written
    block[:: 4096] = b"\1" * len(block[:: 4096])
    assert rss_mb(os.getpid(), False, "RssAnon") - before_anon > 60
    del block


def test_python_objects_count_what_is_kept_and_the_census_names_its_type():
    class Kept:
        pass

    census_before = memory.census(limit=10_000)  # collects first: garbage does not blur the counts below
    before = memory.python_objects()
    kept = [Kept() for _ in range(20_000)]
    after, census_after = memory.python_objects(), memory.census(limit=10_000)
    assert after.blocks - before.blocks >= 20_000
    assert after.tracked - before.tracked >= 20_000
    name = f"{Kept.__module__}.{Kept.__qualname__}"
    assert census_after[name] == 20_000 and name not in census_before
    grown = memory.grown(census_before, census_after, limit=3)
    assert next(iter(grown)) == name and grown[name] == 20_000
    assert all(v > 0 for v in memory.grown(census_after, census_before).values())  # only what grew
    del kept


def test_python_gauges_reach_the_snapshot_and_the_soak_reads_them_in_thousands():
    from bench.soak import PYTHON, python_k

    assert python_k({}, "pipeline") == {}
    metrics.python_objects.labels("blocks").set(1_234_500)
    metrics.python_objects.labels("tracked").set(98_000)
    assert python_k(metrics.snapshot(), "pipeline") == dict(zip(PYTHON, (1234.5, 98.0)))


def test_window_growth_is_the_slope_over_the_last_half():
    from bench.window import growth_per_100k

    samples = [{"documents": d, "mb": 100 + (d / 1000 if d < 200_000 else 200)} for d in range(0, 400_001, 25_000)]
    assert growth_per_100k(samples, "mb") == 0.0  # flat once past 200,000 documents
    assert round(growth_per_100k([{"documents": d, "mb": d / 10_000} for d in (0, 100_000, 200_000)], "mb"), 6) == 10.0
    assert growth_per_100k(samples[:1], "mb") is None
