"""Event-time watermarks: how far event time has surely progressed.

The watermark is the smallest, over the input partitions, of the latest event time seen in each, minus
the allowed lateness: no partition is expected to bring events older than it any more. A window is
evaluated once the watermark has passed its end, so the same stream gives the same alerts however fast
it is replayed and however the partitions interleave.
"""

from __future__ import annotations

from collections.abc import Hashable
from datetime import datetime, timedelta


class Watermark:
    def __init__(self, lateness: timedelta):
        self.lateness = lateness
        self.latest: dict[Hashable, datetime] = {}

    def observe(self, partition: Hashable, event_time: datetime) -> None:
        if partition not in self.latest or event_time > self.latest[partition]:
            self.latest[partition] = event_time

    def value(self) -> datetime | None:
        """None until an event was seen."""
        return min(self.latest.values()) - self.lateness if self.latest else None
