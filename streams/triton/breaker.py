"""A circuit breaker (pure state machine; the caller passes the clock).

Closed: calls pass. After ``threshold`` failures in a row it opens: calls fail fast for ``cooldown_s``
seconds, so a down server is not hammered and the stream backs off. Then it is half-open: one trial
call passes; its success closes the breaker, its failure opens it again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

State = Literal["closed", "open", "half-open"]


@dataclass
class CircuitBreaker:
    threshold: int = 5
    cooldown_s: float = 5.0
    failures: int = 0
    opened_at: float | None = None
    _trial: bool = False

    def state(self, now: float) -> State:
        if self.opened_at is None:
            return "closed"
        return "open" if now - self.opened_at < self.cooldown_s else "half-open"

    def allow(self, now: float) -> bool:
        """Whether a call may go out now (in half-open state, only one trial at a time)."""
        state = self.state(now)
        if state == "closed":
            return True
        if state == "half-open" and not self._trial:
            self._trial = True
            return True
        return False

    def success(self) -> None:
        self.failures, self.opened_at, self._trial = 0, None, False

    def failure(self, now: float) -> None:
        self.failures += 1
        self._trial = False
        if self.opened_at is not None or self.failures >= self.threshold:
            self.opened_at = now

    def retry_in(self, now: float) -> float:
        """Seconds until a call may go out again (0 when closed or half-open)."""
        if self.opened_at is None:
            return 0.0
        return max(0.0, self.cooldown_s - (now - self.opened_at))
