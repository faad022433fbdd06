"""Faust's consumer hands messages to its streams through ``wait_first`` (streams.kafka.delivery): a delivery
that finishes at once returns at once, one that waits on a full buffer still gives way to a suspended flow
or a stopping worker, and a failing delivery raises. On mode's real Service and Faust's real transport."""

from __future__ import annotations

import asyncio
import gc
import warnings

import pytest
from mode import Service

from streams.kafka import delivery
from streams.kafka.delivery import PromptDelivery


class Consumer(PromptDelivery, Service):
    """A mode service with the mixin, as Faust's consumer gets it."""


def run(coro):
    return asyncio.run(coro)


def test_a_delivery_that_finishes_at_once_wins_and_the_flow_wait_never_starts():
    async def main():
        consumer, flow = Consumer(), asyncio.Event()
        delivered = []

        async def deliver():
            delivered.append("m1")
            return "queued"

        waiting = flow.wait()
        result = await consumer.wait_first(deliver(), waiting)
        return result, delivered, waiting

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a coroutine left unawaited would warn when collected
        (winners, results, stopped), delivered, waiting = run(main())
        gc.collect()
    assert delivered == ["m1"] and results == ["queued"] and not stopped and len(winners) == 1
    assert waiting.cr_frame is None  # closed, not left pending


def test_a_delivery_blocked_on_a_full_buffer_gives_way_to_a_suspended_flow():
    async def main():
        consumer, flow, buffer = Consumer(), asyncio.Event(), asyncio.Queue(maxsize=1)
        buffer.put_nowait("m0")  # full: the next put waits (backpressure)
        asyncio.get_running_loop().call_later(0.05, flow.set)  # a rebalance suspends the flow meanwhile
        result = await asyncio.wait_for(consumer.wait_first(buffer.put("m1"), flow.wait()), 5)
        return result, buffer

    (winners, results, stopped), buffer = run(main())
    assert results == [True] and not stopped  # the flow's wait won
    assert list(buffer._queue) == ["m0"]  # the blocked delivery was abandoned, not completed later


def test_a_delivery_that_waits_then_finishes_is_awaited_in_full():
    async def main():
        consumer, flow, buffer = Consumer(), asyncio.Event(), asyncio.Queue(maxsize=1)
        buffer.put_nowait("m0")
        asyncio.get_running_loop().call_later(0.05, buffer.get_nowait)  # the stream takes one: room again
        await consumer.wait_first(buffer.put("m1"), flow.wait())
        return buffer

    assert list(run(main())._queue) == ["m1"]


def test_a_failing_delivery_raises_its_error():
    async def main():
        async def deliver():
            raise ValueError("bad message")

        await Consumer().wait_first(deliver(), asyncio.Event().wait())

    with pytest.raises(ValueError, match="bad message"):
        run(main())


def test_install_gives_fausts_transport_a_consumer_with_prompt_delivery():
    from faust.transport.drivers import aiokafka as driver

    delivery.install()
    consumer = driver.Transport.Consumer
    delivery.install()  # twice: not wrapped again
    assert driver.Transport.Consumer is consumer and issubclass(consumer, PromptDelivery)
    assert consumer.wait_first is PromptDelivery.wait_first
