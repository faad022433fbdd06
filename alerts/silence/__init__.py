"""Silences: matchers over labels with a start, an expiry, an author and a comment (as in Alertmanager).

A silenced alert is not notified while the silence is active; it is still evaluated and recorded.
Silences are kept in the store's ``silences`` table (``sentimon alerts silence`` adds and expires them).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict, Field, field_validator

from alerts.matcher import Matcher, as_matchers, matches_all
from schemas.base import UtcTime, assume_utc, now_utc


MAX_DURATION = timedelta(days=366)


class Silence(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(default_factory=lambda: uuid.uuid4().hex[:12])
    matchers: list[Matcher] = Field(min_length=1, max_length=32)
    starts_at: UtcTime
    ends_at: UtcTime
    created_by: str = Field(min_length=1, max_length=200)
    comment: str = Field(min_length=1, max_length=2000)

    @field_validator("matchers", mode="before")
    @classmethod
    def _parse(cls, v):
        return as_matchers(v)

    def checked(self) -> "Silence":
        """Itself when it may be created (it ends after it starts, within ``MAX_DURATION``); ValueError if not.
        (Stored silences are not re-checked: an expired one may end before its planned start.)"""
        if self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        if self.ends_at - self.starts_at > MAX_DURATION:
            raise ValueError(f"a silence lasts at most {MAX_DURATION.days} days")
        return self

    @classmethod
    def from_request(cls, body) -> "Silence":
        """A new silence as a client asks for it: the server assigns the id (a client cannot replace another's
        silence by naming its id). ValueError on anything wrong."""
        if not isinstance(body, dict):
            raise ValueError("expected a JSON object")
        if "id" in body:
            raise ValueError("silence ids are assigned by the server: leave 'id' out")
        return cls.model_validate(body).checked()

    @classmethod
    def new(cls, matchers: Iterable[str], duration: timedelta, created_by: str, comment: str,
            start: datetime | None = None) -> "Silence":
        start = start or now_utc()
        return cls(matchers=list(matchers), starts_at=start, ends_at=start + duration, created_by=created_by,
                   comment=comment).checked()

    def active(self, now: datetime) -> bool:
        return self.starts_at <= now < self.ends_at

    def mutes(self, labels: Mapping[str, str], now: datetime) -> bool:
        return self.active(now) and matches_all(self.matchers, labels)


def silenced(silences: Iterable[Silence], labels: Mapping[str, str], now: datetime) -> Silence | None:
    """The first active silence that mutes ``labels``."""
    return next((s for s in silences if s.mutes(labels, now)), None)


# --- storage in the store (one table; the newest row of an id wins) ------------------------------

def save(store, silence: Silence) -> None:
    store.insert_rows("silences", [[silence.id, json.dumps([m.model_dump() for m in silence.matchers]),
                                    silence.starts_at, silence.ends_at, silence.created_by, silence.comment,
                                    now_utc()]],
                      ["id", "matchers", "starts_at", "ends_at", "created_by", "comment", "updated_at"])


def load(store, include_expired: bool = False, now: datetime | None = None) -> list[Silence]:
    now = now or now_utc()
    rows = store.query(
        "SELECT id, argMax(matchers, updated_at), argMax(starts_at, updated_at), argMax(ends_at, updated_at), "
        "argMax(created_by, updated_at), argMax(comment, updated_at) FROM {db}.silences GROUP BY id ORDER BY id"
    )
    out = [Silence(id=i, matchers=json.loads(m), starts_at=assume_utc(s), ends_at=assume_utc(e), created_by=c, comment=t)
           for i, m, s, e, c, t in rows]
    return out if include_expired else [s for s in out if s.ends_at > now]


def expire(store, silence_id: str, now: datetime | None = None) -> Silence:
    """End a silence now; KeyError if there is none with that id."""
    found = {s.id: s for s in load(store, include_expired=True)}
    if silence_id not in found:
        raise KeyError(silence_id)
    ended = found[silence_id].model_copy(update={"ends_at": now or now_utc()})
    save(store, ended)
    return ended
