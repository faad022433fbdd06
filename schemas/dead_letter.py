"""A message that could not be processed, with why and where it came from (topic ``dead-letters``)."""

from __future__ import annotations

import base64
from typing import Literal

from pydantic import Field

from schemas.base import Event, UtcTime


class DeadLetter(Event):
    """``original`` is the message value exactly as received, base64-encoded (it may not be text); cut to its
    first bytes when too large to fit a Kafka message (``truncated``; size and hash of the whole kept)."""

    schema_version: Literal[1] = 1
    stage: Literal["ingest", "scoring", "sink", "archive", "notify"]
    reason: str = Field(description="what was wrong and, where it helps, what to do")
    topic: str
    partition: int
    offset: int
    index: int | None = Field(
        None, description="position of the item within a JSON Lines message (from 0); null: the message held one item"
    )
    original: str = Field(description="base64 of the original value bytes (the first of them when ``truncated``)")
    original_size: int | None = Field(None, ge=0, description="length of the whole original in bytes")
    original_sha256: str | None = Field(None, description="hex SHA-256 of the whole original")
    truncated: bool = Field(False, description="the original was too large to carry whole: ``original`` holds its "
                            "first bytes (the whole item stays in its topic and the raw archive)")
    failed_at: UtcTime

    def original_bytes(self) -> bytes:
        return base64.b64decode(self.original)
