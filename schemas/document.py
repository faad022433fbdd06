"""The normalized document every later stage works on (topic ``documents``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from schemas.base import Event, UtcTime
from schemas.ticker import Ticker


class Document(Event):
    """A cleaned news item or social post. ``text`` is what gets scored; personal data is already scrubbed.

    ``duplicate_of`` names the first document of the same story (exact or near duplicate) or is empty:
    duplicates are kept and stored, but count once for alerting.
    """

    schema_version: Literal[1] = 1
    doc_id: str = Field(description="stable id: hash of kind, source and the source's id")
    kind: Literal["news", "social"]
    source: str = Field(description="publisher (news) or platform (social)")
    source_id: str
    event_time: UtcTime = Field(description="published_at / created_at, UTC, milliseconds")
    ingested_at: UtcTime
    title: str = Field("", description="headline (news); empty for social posts")
    text: str = Field(description="normalized text that is scored")
    url: str = ""
    language: str = "en"
    author_hash: str = Field("", description="keyed hash of the author handle (social)")
    tickers: list[Ticker] = Field(default_factory=list, description="tickers found or tagged, upper case, no '$'")
    sectors: list[str] = Field(default_factory=list, description="sectors of the known tickers")
    engagement: int = Field(0, ge=0, le=2**32 - 1, description="likes + reposts + replies (social)")
    duplicate_of: str = ""
