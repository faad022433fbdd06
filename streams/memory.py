"""The C heap of this process as glibc's allocator sees it, and giving its free pages back.

A long-running worker's resident memory can grow although nothing is alive to hold it: freed chunks
scattered between live ones (variable-size fetch buffers, batches of different sizes) keep their pages
resident, and glibc returns memory to the system only from the top of each arena. :func:`heap` tells the
two apart (bytes allocated vs bytes free inside the heap); :func:`trim` (``malloc_trim(0)``) releases the
free pages of every arena with ``madvise``, without moving anything. Both are no-ops off glibc.
"""

from __future__ import annotations

import ctypes
import ctypes.util
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
