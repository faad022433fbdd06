"""How far a stage has read its partitions, and which quiet ones it has read to the end of: what lets a
watermark tell a partition that is idle (nothing to read) from one whose backlog is not fetched yet."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from typing import Any


class Positions:
    """``key`` maps a Kafka TP to the watermark's partition key (e.g. the partition number)."""

    def __init__(self, app, topics: Iterable[str], key: Callable[[Any], Hashable]):
        self.app, self.topics, self.key = app, set(topics), key
        self.last: dict[Any, int] = {}  # TP -> the last offset this stage read

    def read(self, events) -> None:
        for e in events:
            tp = e.message.tp
            if e.message.offset > self.last.get(tp, -1):
                self.last[tp] = e.message.offset

    async def confirm(self, watermark) -> None:
        """Set ``watermark.caught_up`` to its quiet partitions that have nothing more to read: the log end
        (the high watermark of the consumer's last fetch) is right after what this stage read, or, for a
        partition it read nothing from, the consumer's position is at the log end. Unknown: not caught up."""
        quiet = watermark.quiet()
        caught_up = set()
        consumer = self.app.consumer
        for tp in consumer.assignment():
            if tp.topic not in self.topics or self.key(tp) not in quiet:
                continue
            end = consumer.highwater(tp)
            if end is None:
                continue
            if tp in self.last:
                done = self.last[tp] + 1 >= end
            else:
                position = await consumer.position(tp)
                done = position is not None and position >= end
            if done:
                caught_up.add(self.key(tp))
        watermark.caught_up = caught_up
