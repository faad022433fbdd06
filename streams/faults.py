"""Faults injected at a client boundary, for fault tests and drills; off unless ``SENTIMON_FAULTS`` is set.

``SENTIMON_FAULTS="store.insert=fail:20s,store.scores=fail:2x"``: every call at the point ``store.insert``
fails for 20 seconds from the first one; the first 2 calls at ``store.scores`` fail. Points:

- ``store.insert``: any insert into the store (scored documents, the archive, dead letters, alert state);
- ``store.scores``: between a batch's documents insert and its scores insert (a partial write).

A failing call raises :class:`InjectedFault` (a ``ConnectionError``, as a store outage would).
"""

from __future__ import annotations

import os
import re
import threading
import time
from dataclasses import dataclass, field

_SPEC = re.compile(r"^\s*([a-z_.]+)\s*=\s*fail:(\d+(?:\.\d+)?)(s|x)\s*$")


class InjectedFault(ConnectionError):
    """A failure injected at a fault point (see the module docstring)."""


@dataclass
class Fault:
    point: str
    amount: float
    unit: str  # 's': seconds from the first call; 'x': that many calls
    calls: int = 0
    started: float | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def fires(self) -> bool:
        with self._lock:
            self.calls += 1
            if self.started is None:
                self.started = time.monotonic()
            if self.unit == "x":
                return self.calls <= self.amount
            return time.monotonic() - self.started < self.amount


def parse(spec: str) -> dict[str, Fault]:
    """The faults of a ``SENTIMON_FAULTS`` value; ValueError naming a part it cannot read."""
    faults = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        m = _SPEC.match(part)
        if not m:
            raise ValueError(f"SENTIMON_FAULTS: cannot read {part!r}: write POINT=fail:20s or POINT=fail:3x")
        faults[m.group(1)] = Fault(m.group(1), float(m.group(2)), m.group(3))
    return faults


_FAULTS = parse(os.environ.get("SENTIMON_FAULTS", ""))


def check(point: str) -> None:
    """Raise :class:`InjectedFault` when a fault at ``point`` is configured and firing now."""
    fault = _FAULTS.get(point)
    if fault is not None and fault.fires():
        raise InjectedFault(f"injected fault at {point} (SENTIMON_FAULTS)")
