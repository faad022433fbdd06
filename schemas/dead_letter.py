"""A message that could not be processed, with why and where it came from (topic ``dead-letters``)."""

from __future__ import annotations

import base64
from typing import Literal

from pydantic import Field

from schemas.base import Event, UtcTime


class DeadLetter(Event):
    """``original`` is the message value exactly as received, base64-encoded (it may not be text)."""

    schema_version: Literal[1] = 1
    stage: Literal["ingest", "scoring", "sink", "notify"]
    reason: str = Field(description="what was wrong and, where it helps, what to do")
    topic: str
    partition: int
    offset: int
    index: int | None = Field(
        None, description="position of the item within a JSON Lines message (from 0); null: the message held one item"
    )
    original: str = Field(description="base64 of the original value bytes")
    failed_at: UtcTime

    def original_bytes(self) -> bytes:
        return base64.b64decode(self.original)
