"""A raw social post as a feed publishes it to the raw social topic."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.base import Event, UtcTime
from schemas.ticker import MAX_TICKERS, Ticker


MAX_COUNT = 10**9  # three of them sum below the store's UInt32 engagement


class Engagement(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    likes: int = Field(0, ge=0, le=MAX_COUNT)
    reposts: int = Field(0, ge=0, le=MAX_COUNT)
    replies: int = Field(0, ge=0, le=MAX_COUNT)


class SocialPost(Event):
    """Version 1 of the raw social contract (topic ``raw-social``). ``author`` is personal data: it is
    replaced by a keyed hash before anything is stored."""

    schema_version: Literal[1] = 1
    id: str = Field(min_length=1, max_length=256)
    platform: str = Field(min_length=1, max_length=64, description="e.g. 'x', 'stocktwits', 'reddit'")
    author: str = Field(min_length=1, max_length=256)
    created_at: UtcTime
    text: str = Field(min_length=1)
    cashtags: list[Ticker] = Field(default_factory=list, max_length=MAX_TICKERS)
    engagement: Engagement = Engagement()
