"""Event-time watermarks: how far event time has surely progressed.

The watermark is the smallest, over the input partitions, of the latest event time seen in each, minus
the allowed lateness: no partition is expected to bring events older than it any more. A window is
evaluated once the watermark has passed its end, so the same stream gives the same alerts however fast
it is replayed and however the partitions interleave.

Every *assigned* partition counts, including one not seen yet (a backlog is read unevenly: a
partition read late must not find its windows already evaluated). When the whole input has been quiet
for a while (``release``: the stream is drained, e.g. a backlog was read to its end), the watermark is
the latest event time of the data itself (:meth:`seen`), so the last windows are evaluated too.

Who stops holding the watermark back, after ``idle`` seconds of wall time:

- On a topic written by the project's own stages, each producing process is *named* and sends its
  watermark to every partition (an empty envelope where it has no data: ``sentimon.apps.common.Outbox``). Such a
  producer holds back every assigned partition, read or not yet, for as long as it is heard anywhere:
  a partition read late because the consumer is busy with the others (a backlog: read unevenly, one
  partition can wait minutes) still holds; a producer that stopped or was rebalanced away does not.
- On a topic of unnamed producers (the raw feeds), a partition that brought nothing for ``idle``
  seconds stops holding (a quiet partition would otherwise stop evaluation), until it brings data again.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable, Iterable
from datetime import datetime, timedelta

from schemas.base import assume_utc, naive_utc, now_utc


class Watermark:
    def __init__(self, lateness: timedelta, idle_s: float = 60.0, clock: Callable[[], float] = time.monotonic):
        self.lateness, self.idle_s, self.clock = lateness, idle_s, clock
        self.latest: dict[tuple[Hashable, Hashable], datetime] = {}  # per (partition, source)
        self._seen: dict[tuple[Hashable, Hashable], float] = {}  # wall time a key last brought data
        self._assigned: dict[Hashable, float] = {}  # wall time a partition was assigned
        self.partitions: set[Hashable] = set()
        self._drained = False
        self.newest: datetime | None = None  # the latest event time of the data (not of a watermark)

    def assign(self, partitions: Iterable[Hashable]) -> None:
        """The partitions this worker reads now (from the consumer's assignment)."""
        now = self.clock()
        self.partitions = set(partitions)
        for p in self.partitions:
            self._assigned.setdefault(p, now)

    def seen(self, event_time: datetime) -> None:
        """An event's own time (the watermarks observed may lag behind the data). New data ends a
        release: what arrives after it may be part of a backlog read unevenly, so the data's newest time
        says nothing about the partitions behind it until the input is drained again."""
        self._drained = False
        if self.newest is None or event_time > self.newest:
            self.newest = event_time

    def release(self) -> None:
        """The input is drained: everything sent so far has been seen (until the next observation)."""
        self._drained = True

    def observe(self, partition: Hashable, event_time: datetime, source: Hashable = None) -> None:
        """``event_time``: the latest event time ``partition`` brought, or the watermark its message
        carries. ``source``: who produced it, when several processes write to one partition (each one's
        watermark is monotone, their interleaving is not): the minimum is taken over (partition, source).
        A named ``source`` promises to send its watermark to every partition (see the module docstring)."""
        self._drained = False
        key = (partition, source)
        if key not in self.latest or event_time > self.latest[key]:
            self.latest[key] = event_time
        self._seen[key] = self.clock()

    def value(self) -> datetime | None:
        """None while an assigned partition has not brought the watermark of every producer heard lately
        (an unnamed producer's: for ``idle`` seconds after its assignment), or nothing was seen."""
        if self._drained and (self.latest or self.newest):
            return max([*self.latest.values(), *([self.newest] if self.newest else [])]) - self.lateness
        now = self.clock()
        named = {s for (_, s), t in self._seen.items() if s and now - t < self.idle_s}  # heard lately, anywhere
        keys = [k for k in self.latest if not self.partitions or k[0] in self.partitions]  # not the revoked
        heard = {p for p, _ in keys}
        for p in self.partitions:
            if p not in heard and now - self._assigned[p] < self.idle_s:
                return None
            if any((p, s) not in self.latest for s in named):  # its watermark is on p, not read yet
                return None
        holding = [self.latest[k] for k in keys if (k[1] in named if k[1] else now - self._seen[k] < self.idle_s)]
        holding = holding or [self.latest[k] for k in keys]
        return min(holding) - self.lateness if holding else None


class InputEnd:
    """Where a finite input ends (a replay's raw topics: the offset after the last message published to each
    partition, and the latest event time in it) and how far this worker has handled it.

    A partition handled to its end will bring nothing more: it stops holding the watermark and counts as
    having reached ``until``. This says "all of it was read" from offsets, not from counts of what came out
    (a redelivered message counts twice; an offset does not), so the last windows are evaluated exactly
    when their data is complete. A partition not named in ``offsets`` had nothing published to it."""

    def __init__(self) -> None:
        self.offsets: dict[Hashable, int] | None = None
        self.until: datetime | None = None
        self.handled: dict[Hashable, int] = {}  # partition -> the offset after the last message handled

    def set(self, offsets: dict[Hashable, int], until: datetime) -> None:
        """The end of the input (offsets: the next offset of each partition once everything was published)."""
        if any(o < 0 for o in offsets.values()):
            raise ValueError("offsets are never negative")
        self.offsets, self.until = dict(offsets), until

    def handle(self, partition: Hashable, offset: int) -> None:
        """The message at ``offset`` of ``partition`` was handled (its output durably sent on)."""
        if offset + 1 > self.handled.get(partition, 0):
            self.handled[partition] = offset + 1

    def finished(self, partitions: Iterable[Hashable]) -> list[Hashable]:
        """Those of ``partitions`` handled to their end (none before the end is known)."""
        if self.offsets is None:
            return []
        return [p for p in partitions if self.handled.get(p, 0) >= self.offsets.get(p, 0)]


class StoredWatermark:
    """The sink's watermark as recorded in the store's ``watermarks`` table: how an evaluator running as
    its own service (``sentimon alerts run``) learns how far the stored data goes. The sink records it
    only after the data it covers is written, so reading it never runs ahead of the store."""

    def __init__(self, store, name: str = "sink"):
        self.store, self.name = store, name
        self.recorded: datetime | None = None

    def record(self, value: datetime | None, drained: bool = False) -> bool:
        """Write the watermark when it reached a new minute (the evaluator's granularity), or moved at all
        once the input drained (so the last windows are evaluated); whether a row was written."""
        if value is None or (self.recorded is not None and value <= self.recorded):
            return False
        if self.recorded is not None and not drained and _minute(value) <= _minute(self.recorded):
            return False
        self.store.insert_rows("watermarks", [[self.name, naive_utc(value), int(drained), naive_utc(now_utc())]],
                               ["name", "watermark", "drained", "updated_at"])
        self.recorded = value
        return True

    def value(self) -> datetime | None:
        """The latest recorded watermark (UTC), or None before the sink recorded any."""
        rows = self.store.query("SELECT argMax(watermark, updated_at), count() FROM {db}.watermarks "
                                "WHERE name = {name:String}", {"name": self.name})
        if not rows or not rows[0][1]:
            return None
        return assume_utc(rows[0][0])


def _minute(t: datetime) -> datetime:
    return t.replace(second=0, microsecond=0)
