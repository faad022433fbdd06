"""An alert state change (topic ``alerts``), identified by the fingerprint of its labels."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from schemas.base import Event, UtcTime


class Alert(Event):
    schema_version: Literal[1] = 1
    fingerprint: str = Field(description="hash of the sorted labels")
    status: Literal["pending", "firing", "resolved"]
    labels: dict[str, str]
    annotations: dict[str, str] = Field(default_factory=dict)
    starts_at: UtcTime
    ends_at: UtcTime | None = None
    value: float | None = Field(None, description="the number that fired the rule")
