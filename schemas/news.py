"""A raw news item as a feed publishes it to the raw news topic."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from schemas.base import Event, UtcTime
from schemas.ticker import MAX_TICKERS, Ticker


class NewsItem(Event):
    """Version 1 of the raw news contract (topic ``raw-news``)."""

    schema_version: Literal[1] = 1
    id: str = Field(min_length=1, max_length=256, description="the publisher's id of the story")
    source: str = Field(min_length=1, max_length=128, description="publisher or wire, e.g. 'reuters'")
    published_at: UtcTime
    headline: str = Field(min_length=1)
    body: str = ""
    url: str = Field("", max_length=4096)
    tickers: list[Ticker] = Field(default_factory=list, max_length=MAX_TICKERS, description="tickers the publisher tagged")
    language: str = Field("en", min_length=2, max_length=16)
