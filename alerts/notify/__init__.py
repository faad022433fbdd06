"""Notifiers behind one small interface, and the retry policy of all of them in one place.

A :class:`Notifier` sends one notification once and raises :class:`DeliveryError` saying whether to
retry (and after how long, e.g. from ``Retry-After``), give up, or disable the endpoint (HTTP 410).
:func:`deliver` retries with capped exponential backoff and full jitter until the notification is
delivered or ``give_up_after`` has passed; then the caller parks it in the dead letters.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from alerts.config.model import Delivery
from alerts.dispatch import Notification

logger = logging.getLogger("sentimon.alerts.notify")  # not `log`: the submodule alerts.notify.log would replace it


class DeliveryError(Exception):
    """One failed attempt. ``retry_after``: seconds the receiver asked for; ``permanent``: retrying cannot
    help (e.g. 400); ``disable``: the endpoint is gone for good (410): stop sending to it."""

    def __init__(self, message: str, retry_after: float | None = None, permanent: bool = False, disable: bool = False):
        super().__init__(message)
        self.retry_after, self.permanent, self.disable = retry_after, permanent or disable, disable


class Notifier(ABC):
    """Sends notifications to one endpoint. Implementations say *what* failed; :func:`deliver` decides."""

    kind: str = "notifier"
    disabled: str = ""  # why the endpoint was disabled (410), empty while it is enabled

    @property
    @abstractmethod
    def target(self) -> str:
        """Where it sends to, for logs (never a secret)."""

    @property
    def key(self) -> str:
        """A stable name of the endpoint for the notification log (never a secret)."""
        return f"{self.kind}:{self.target}"

    @abstractmethod
    async def send(self, notification: Notification) -> None:
        """Deliver once; raise :class:`DeliveryError` on failure."""

    async def close(self) -> None:
        pass


@dataclass(frozen=True)
class Outcome:
    notifier: str
    delivered: bool
    attempts: int
    reason: str = ""  # why it was parked


async def deliver(notifier: Notifier, notification: Notification, policy: Delivery,
                  sleep: Callable[[float], Awaitable[None]] = asyncio.sleep, clock: Callable[[], float] = time.monotonic,
                  jitter: Callable[[], float] = random.random) -> Outcome:
    """Send until delivered, or until retrying is pointless or ``policy.give_up_after`` has passed."""
    name = f"{notifier.kind} {notifier.target}"
    if notifier.disabled:
        return Outcome(name, False, 0, f"endpoint disabled: {notifier.disabled}")
    started, attempt = clock(), 0
    backoff, cap = policy.initial_backoff.total_seconds(), policy.max_backoff.total_seconds()
    limit = policy.give_up_after.total_seconds()
    while True:
        attempt += 1
        try:
            await notifier.send(notification)
            if attempt > 1:
                logger.info("delivered %s to %s after %d attempts", notification.id, name, attempt)
            return Outcome(name, True, attempt)
        except DeliveryError as exc:
            if exc.disable:
                notifier.disabled = str(exc)
                logger.error("disabling %s: %s", name, exc)
            if exc.permanent:
                return Outcome(name, False, attempt, str(exc))
            # full jitter: a random wait up to the capped exponential step (receivers coming back are not
            # hit by every sender at once); a receiver's Retry-After is honoured as the least wait
            wait = min(cap, backoff * 2 ** (attempt - 1)) * jitter()
            if exc.retry_after is not None:
                wait = max(wait, exc.retry_after)
            if clock() - started + wait > limit:
                return Outcome(name, False, attempt, f"gave up after {attempt} attempts: {exc}")
            logger.warning("delivery of %s to %s failed (attempt %d, retry in %.1f s): %s", notification.id, name,
                        attempt, wait, exc)
            await sleep(wait)
