"""How a Faust worker hands each consumed message to its streams: without four tasks per message.

faust-streaming's drain loop delivers every message inside ``wait_first(deliver(message),
suspend_flow.wait())``, and mode's ``wait_first`` races them against the service's stopped and crashed
events: four tasks created, an ``asyncio.wait`` and three cancellations per message, about a third of a
bare agent's CPU per message here (docs/decisions.md).

:class:`PromptDelivery` gives the first awaitable one turn of the event loop on its own. A delivery waits
only while the flow is suspended, Faust's producer buffer is full or a stream's buffer is full; when it
has finished within that turn, the other waits are dropped unstarted and the loop moves on. Otherwise the
running delivery joins the original race, so a waiting delivery is still abandoned when the flow is
suspended (a rebalance) or the worker stops, exactly as before.
"""

from __future__ import annotations

import asyncio
from typing import Any


class PromptDelivery:
    """Mixin for a mode ``Service`` (Faust's consumer): ``wait_first`` returns as soon as its first
    awaitable has finished within one loop turn, else races them all as mode does."""

    async def wait_first(self, *coros: Any, timeout: Any = None) -> Any:
        from mode.services import WaitResults

        if not coros or not asyncio.iscoroutine(coros[0]):
            return await super().wait_first(*coros, timeout=timeout)  # type: ignore[misc]
        first = asyncio.ensure_future(coros[0])
        await asyncio.sleep(0)
        if not first.done():
            return await super().wait_first(first, *coros[1:], timeout=timeout)  # type: ignore[misc]
        for other in coros[1:]:
            if asyncio.iscoroutine(other):
                other.close()  # never started: closing it spares the "never awaited" warning
        return WaitResults([coros[0]], [first.result()], False)  # result() raises the delivery's error


def install() -> None:
    """Make Faust's aiokafka transport (this process) build its consumers with :class:`PromptDelivery`."""
    from faust.transport.drivers import aiokafka as driver

    if issubclass(driver.Transport.Consumer, PromptDelivery):
        return

    class Consumer(PromptDelivery, driver.Transport.Consumer):  # type: ignore[misc, valid-type]
        pass

    driver.Transport.Consumer = Consumer
