"""An alert state change (topic ``alerts``, table ``alerts``), identified by the fingerprint of its labels.

``status``: ``pending`` (the condition holds, not yet for the rule's ``for``), ``firing``, ``resolved``
(was firing, the condition cleared), ``inactive`` (was pending, cleared before firing: never notified).
``at`` is the event time of the change (the end of the window evaluated), so a replay of the same
stream gives the same changes at any speed.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from schemas.base import Event, UtcTime


class Alert(Event):
    schema_version: Literal[1] = 1
    fingerprint: str = Field(description="hash of the sorted labels")
    status: Literal["pending", "firing", "resolved", "inactive"]
    labels: dict[str, str]
    annotations: dict[str, str] = Field(default_factory=dict)
    starts_at: UtcTime = Field(description="when the condition began to hold (event time)")
    ends_at: UtcTime | None = Field(None, description="when it was resolved (event time)")
    at: UtcTime = Field(description="event time of this change")
    value: float | None = Field(None, description="the number that fired the rule")

    @property
    def name(self) -> str:
        return self.labels.get("alertname", "")
