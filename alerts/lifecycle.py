"""The life of one alert in event time: pending -> firing -> resolved (a pure state machine).

``step`` takes the previous state (None: no alert) and whether the condition holds at ``at`` (a window
end), and returns the new state and the change to publish, if any. Time is event time only, so the
same stream gives the same changes at any replay speed.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from schemas.alert import Alert


@dataclass(frozen=True)
class AlertState:
    fingerprint: str
    labels: dict[str, str]
    status: str  # "pending" | "firing"
    active_since: datetime
    last_active: datetime
    value: float | None = None
    annotations: dict[str, str] | None = None

    def change(self, status: str, at: datetime, ends_at: datetime | None = None) -> Alert:
        return Alert(fingerprint=self.fingerprint, status=status, labels=self.labels,  # type: ignore[arg-type]
                     annotations=self.annotations or {}, starts_at=self.active_since, ends_at=ends_at, at=at,
                     value=self.value)


def step(state: AlertState | None, active: bool, at: datetime, *, fingerprint: str, labels: dict[str, str],
         for_: timedelta = timedelta(0), keep_firing_for: timedelta = timedelta(0), value: float | None = None,
         annotations: dict[str, str] | None = None) -> tuple[AlertState | None, Alert | None]:
    """The next state and the published change (None when nothing changed that others need to know)."""
    if state is None:
        if not active:
            return None, None
        new = AlertState(fingerprint, labels, "pending", at, at, value, annotations)
        if for_ <= timedelta(0):
            new = replace(new, status="firing")
        return new, new.change(new.status, at)
    if active:
        new = replace(state, last_active=at, value=value, annotations=annotations or state.annotations)
        if state.status == "pending" and at - state.active_since >= for_:
            new = replace(new, status="firing")
            return new, new.change("firing", at)
        return new, None
    if state.status == "pending":
        return None, state.change("inactive", at, ends_at=at)
    if at - state.last_active >= keep_firing_for:
        return None, state.change("resolved", at, ends_at=at)
    return state, None
