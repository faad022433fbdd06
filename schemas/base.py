"""Shared pieces of every event model: strict config, UTC millisecond timestamps."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, PlainSerializer


# every time column of the store holds this range: DateTime('UTC') (the per-minute aggregates) is 32-bit
EARLIEST = datetime(1970, 1, 1, tzinfo=timezone.utc)
LATEST = datetime(2106, 1, 1, tzinfo=timezone.utc)


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("timestamp needs a timezone (e.g. 2026-11-29T07:00:00Z)")
    if value.tzinfo is not timezone.utc:
        try:
            value = value.astimezone(timezone.utc)
        except OverflowError:
            raise ValueError("timestamp out of range") from None
    if not EARLIEST <= value < LATEST:
        raise ValueError(f"timestamp out of the storable range [{EARLIEST.year}, {LATEST.year})")
    extra = value.microsecond % 1000
    # datetime.replace is slow when called per event (tens of microseconds here); timedelta is not
    return value - timedelta(microseconds=extra) if extra else value


def iso_ms(value: datetime) -> str:
    """The wire form of a UTC instant: ISO-8601 with milliseconds and ``Z``."""
    return value.isoformat(timespec="milliseconds").replace("+00:00", "Z")


UtcTime = Annotated[
    datetime,
    AfterValidator(_utc),
    PlainSerializer(iso_ms, return_type=str, when_used="json"),
]
"""A timezone-aware instant, converted to UTC and cut to milliseconds (ClickHouse DateTime64(3, 'UTC')), within
[``EARLIEST``, ``LATEST``): a value every time column of the store can hold."""


class Event(BaseModel):
    """Base of all events: unknown fields are errors, models are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=False)


def now_utc() -> datetime:
    return _utc(datetime.now(timezone.utc))


def naive_utc(value: datetime) -> datetime:
    """An instant as ClickHouse parameters take it: UTC without a zone (naive values are taken as UTC)."""
    return value.astimezone(timezone.utc).replace(tzinfo=None) if value.tzinfo else value


def parse_utc(text: str) -> datetime:
    """An ISO 8601 time as an aware UTC instant (``Z`` or an offset; UTC when it names no zone).
    ValueError when it is not one."""
    return assume_utc(datetime.fromisoformat(text.strip().replace("Z", "+00:00")))


def assume_utc(value: datetime) -> datetime:
    """A ClickHouse result (naive, UTC) as an aware UTC instant; aware values pass through."""
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value
