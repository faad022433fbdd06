"""The C heap of this process as glibc's allocator sees it, giving its free pages back, and Python's own
objects (which live mostly in pymalloc's arenas, mmapped apart from the C heap).

A long-running worker's resident memory can grow although nothing is alive to hold it: freed chunks
scattered between live ones (variable-size fetch buffers, batches of different sizes) keep their pages
resident, and glibc returns memory to the system only from the top of each arena. :func:`heap` tells the
two apart (bytes allocated vs bytes free inside the heap); :func:`trim` (``malloc_trim(0)``) releases the
free pages of every arena with ``madvise``, without moving anything. Both are no-ops off glibc.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import sys
from collections import Counter
from dataclasses import dataclass


class _Mallinfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]


def _libc():
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.mallinfo2.restype = _Mallinfo2
        libc.malloc_trim.argtypes = [ctypes.c_size_t]
        return libc
    except (OSError, AttributeError):  # not glibc, or glibc < 2.33
        return None


_LIBC = _libc()


@dataclass(frozen=True)
class Heap:
    """Bytes of the C heap (all arenas): ``in_use`` allocated, ``free`` held by the allocator but not in use
    (fragmentation when it grows), ``mmapped`` in large blocks of their own (returned on free)."""

    in_use: int
    free: int
    mmapped: int


def heap() -> Heap | None:
    """The allocator's view of this process's heap now (None off glibc). Walks the free lists: about a
    millisecond for a few hundred MB; call it every few seconds, not per batch."""
    if _LIBC is None:
        return None
    info = _LIBC.mallinfo2()
    return Heap(in_use=info.uordblks, free=info.fordblks, mmapped=info.hblkhd)


def trim() -> bool:
    """Give the heap's free pages back to the system (``malloc_trim(0)``); True when any were released."""
    return bool(_LIBC is not None and _LIBC.malloc_trim(0))


@dataclass(frozen=True)
class PythonObjects:
    """Python's allocations: ``blocks`` held from pymalloc (objects of up to 512 bytes, in 1 MiB arenas that
    glibc's counts do not see) and ``tracked`` container objects the garbage collector knows of."""

    blocks: int
    tracked: int


def python_objects() -> PythonObjects:
    """Python's allocations now: a few milliseconds per hundred thousand tracked objects."""
    return PythonObjects(blocks=sys.getallocatedblocks(), tracked=len(gc.get_objects()))


def census(limit: int = 40) -> dict[str, int]:
    """The ``limit`` most numerous types among the garbage collector's objects, ``module.qualname`` -> count.
    Two censuses some minutes apart name what a growing process keeps; a tenth of a second or so per
    hundred thousand objects, so on demand only (the worker's ``/debug/objects`` page). Collects first, so cyclic
    garbage not yet collected (closed connections' transports, say) is not counted as kept."""
    gc.collect()
    counts = Counter(f"{type(o).__module__}.{type(o).__qualname__}" for o in gc.get_objects())
    return dict(counts.most_common(limit))


def grown(before: dict[str, int], after: dict[str, int], limit: int = 15) -> dict[str, int]:
    """The types whose count grew most from census ``before`` to ``after`` (types absent from one count as
    0 there), largest growth first; only those that grew."""
    growth = {name: after.get(name, 0) - before.get(name, 0) for name in {*before, *after}}
    return dict(sorted(((k, v) for k, v in growth.items() if v > 0), key=lambda kv: (-kv[1], kv[0]))[:limit])
