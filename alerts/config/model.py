"""The rules file as typed models: rules (with their detectors), the route tree, receivers, inhibition."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Literal, Union

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from alerts.matcher import Matcher, as_matchers

_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")


MAX_DURATION_S = 366 * 86400.0


def parse_duration(value: object) -> timedelta:
    """``'90s'``, ``'5m'``, ``'1h30m'``, ISO 8601 (``'PT5M'``), or seconds as a number."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, str) and value.startswith("P"):
        from pydantic import TypeAdapter, ValidationError

        try:
            return TypeAdapter(timedelta).validate_python(value)
        except ValidationError:
            pass
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    else:
        m = _DURATION.match(str(value).strip()) if value not in ("", None) else None
        if not m or not any(m.groups()):
            raise ValueError(f"not a duration: {value!r} (write e.g. 30s, 5m, 1h, 1h30m)")
        h, mi, s = (int(g or 0) for g in m.groups())
        seconds = h * 3600.0 + mi * 60.0 + s
    if not abs(seconds) <= MAX_DURATION_S:  # also NaN
        raise ValueError(f"duration out of range: {value!r} (at most 366 days)")
    return timedelta(seconds=seconds)


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]


def _whole_minutes(value: timedelta) -> timedelta:
    if value <= timedelta(0) or value % timedelta(minutes=1):
        raise ValueError("must be a positive whole number of minutes (the aggregates are per minute)")
    return value


Matchers = Annotated[list[Matcher], BeforeValidator(lambda v: as_matchers(v or []))]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Windowed(_Strict):
    window: Duration = Field(timedelta(minutes=5), description="recent window (whole minutes of event time)")
    min_docs: int = Field(5, ge=1, description="fewest distinct stories in the window for the rule to judge")

    @field_validator("window")
    @classmethod
    def _window_minutes(cls, v: timedelta) -> timedelta:
        return _whole_minutes(v)


class _Baselined(_Windowed):
    baseline: Duration = Field(timedelta(minutes=60), description="history before the window, a multiple of it")

    @model_validator(mode="after")
    def _baseline_windows(self):
        _whole_minutes(self.baseline)
        if self.baseline % self.window or self.baseline // self.window < 3:
            raise ValueError(f"baseline must be at least 3 windows and a multiple of the window "
                             f"({int(self.window.total_seconds() // 60)}m)")
        return self


class SentimentShift(_Baselined):
    """Robust z-score of the window's mean score against the means of the baseline's windows (median/MAD)."""

    type: Literal["sentiment_shift"]
    threshold: float = Field(3.0, gt=0, description="|z| that fires")
    direction: Literal["negative", "positive", "both"] = "negative"
    min_sigma: float = Field(0.1, gt=0, description="floor of the robust deviation (scores run -1..1)")


class NegativeShare(_Windowed):
    """Share of negative stories in the window above a threshold, with a minimum volume."""

    type: Literal["negative_share"]
    threshold: float = Field(0.6, gt=0, le=1)


class VolumeSpike(_Baselined):
    """Stories in the window against the baseline's windows: robust z-score and a ratio to the median."""

    type: Literal["volume_spike"]
    threshold: float = Field(3.0, gt=0, description="z that fires")
    min_ratio: float = Field(2.0, ge=1, description="the window must also hold this many times the median")


class TopicBurst(_Baselined):
    """A topic's share of the scope's stories jumping against its share over the baseline."""

    type: Literal["topic_burst"]
    topic: str
    min_increase: float = Field(0.25, gt=0, le=1, description="share rise (absolute) that fires")


class AllOf(_Strict):
    """Fires when every detector fires (e.g. volume spike AND negative shift); the value is the first's."""

    type: Literal["all"]
    detectors: list[Annotated[Union[SentimentShift, NegativeShare, VolumeSpike, TopicBurst], Field(discriminator="type")]] = Field(min_length=2)


Detector = Annotated[Union[SentimentShift, NegativeShare, VolumeSpike, TopicBurst, AllOf], Field(discriminator="type")]


class Scope(_Strict):
    """What a rule watches: every ticker, every sector or the market (``kind``), optionally only some."""

    kind: Literal["ticker", "sector", "market"] = "ticker"
    entities: list[str] = Field(default_factory=list, description="only these (empty: all of the kind)")


class Rule(_Strict):
    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", description="the alertname label")
    scope: Scope = Scope()
    detector: Detector
    for_: Duration = Field(timedelta(0), alias="for", description="active this long (event time) before firing")
    keep_firing_for: Duration = Field(timedelta(0), description="stay firing this long after the condition clears")
    severity: Literal["info", "warning", "critical"] = "warning"
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict, description="Jinja templates over the numbers")
    examples: int = Field(3, ge=0, le=20, description="example headlines offered to the annotations")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @property
    def detectors(self) -> list:
        return list(self.detector.detectors) if isinstance(self.detector, AllOf) else [self.detector]

    @property
    def span(self) -> timedelta:
        """Event time a single evaluation looks back over (window plus baseline)."""
        return max(d.window + getattr(d, "baseline", timedelta(0)) for d in self.detectors)


class Secret(_Strict):
    """A webhook signing secret (``whsec_...`` base64) from an environment variable or a file, never inline."""

    env: str | None = None
    file: str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> "Secret":
        if (self.env is None) == (self.file is None):
            raise ValueError("give exactly one of env or file")
        return self


class WebhookConfig(_Strict):
    url: str = Field(pattern=r"^(https?://.*)?$", description="empty: not configured here (skipped, e.g. ${DESK_URL:-})")
    secrets: list[Secret] = Field(min_length=1, description="several during key rotation: each signs every message")
    timeout: Duration = timedelta(seconds=5)
    dashboard_url: str = Field("", description="link put into each alert (e.g. the Grafana dashboard)")


class GrafanaConfig(_Strict):
    url: str = Field(pattern=r"^https?://")
    token_env: str = Field("GRAFANA_TOKEN", description="environment variable holding the API token")
    tags: list[str] = Field(default_factory=lambda: ["sentimon"])


class Receiver(_Strict):
    name: str
    webhooks: list[WebhookConfig] = Field(default_factory=list)
    grafana: list[GrafanaConfig] = Field(default_factory=list)
    log: bool = Field(False, description="print notifications to the log (the demo)")


class Route(_Strict):
    receiver: str | None = None
    matchers: Matchers = Field(default_factory=list)
    group_by: list[str] | None = None
    group_wait: Duration | None = None
    group_interval: Duration | None = None
    repeat_interval: Duration | None = None
    continue_: bool = Field(False, alias="continue")
    routes: list["Route"] = Field(default_factory=list)

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class InhibitRule(_Strict):
    """A firing alert matching ``source_matchers`` mutes alerts matching ``target_matchers`` that have the
    same values of the ``equal`` labels (e.g. a market-wide alert mutes per-ticker ones)."""

    source_matchers: Matchers
    target_matchers: Matchers
    equal: list[str] = Field(default_factory=list)


class Delivery(_Strict):
    """The retry policy of every notifier (one place)."""

    initial_backoff: Duration = timedelta(seconds=0.5)
    max_backoff: Duration = timedelta(seconds=30)
    give_up_after: Duration = Field(timedelta(hours=1), description="then the notification is parked in the dead letters")


class AlertsConfig(_Strict):
    rules: list[Rule] = Field(default_factory=list)
    route: Route = Route(receiver="log")
    receivers: list[Receiver] = Field(default_factory=lambda: [Receiver(name="log", log=True)])
    inhibit_rules: list[InhibitRule] = Field(default_factory=list)
    delivery: Delivery = Delivery()

    @model_validator(mode="after")
    def _consistent(self) -> "AlertsConfig":
        names = [r.name for r in self.rules]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"rule names must be unique: {', '.join(dupes)}")
        receivers = {r.name for r in self.receivers}
        if self.route.receiver is None:
            raise ValueError("route.receiver: the top-level route needs a receiver")

        def check(route: Route, where: str) -> None:
            if route.receiver is not None and route.receiver not in receivers:
                raise ValueError(f"{where}.receiver: no receiver named {route.receiver!r} (have {sorted(receivers)})")
            for i, child in enumerate(route.routes):
                check(child, f"{where}.routes.{i}")

        check(self.route, "route")
        return self
