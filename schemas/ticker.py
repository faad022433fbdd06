"""What a ticker may look like: the exchange symbols feeds tag (``AAPL``, ``BRK.B``, ``RDS-A``, ``7203``), with
an optional ``$`` as in cashtags. Anything else in a feed's ticker list (markup, SQL, a paragraph, thousands of
tags) is a wrong item, dead-lettered with the field named, not stored."""

from __future__ import annotations

from typing import Annotated

from pydantic import StringConstraints

TICKER_PATTERN = r"^\$?[A-Za-z0-9][A-Za-z0-9.\-]{0,11}$"
MAX_TICKERS = 32

Ticker = Annotated[str, StringConstraints(pattern=TICKER_PATTERN)]
