"""Grouping alert changes into notifications, as Alertmanager does (a pure state machine over a clock).

An alert is routed (first matching child route, recursively; ``continue`` goes on to the next) to a
receiver and an aggregation group: the route plus the values of its ``group_by`` labels. A new group
waits ``group_wait`` before its first notification (to gather alerts that come together), then is
looked at every ``group_interval``: it notifies when an alert began firing or resolved since the last
notification, or when ``repeat_interval`` has passed with alerts still firing. Silenced or inhibited
alerts are left out. Each notification carries the *tokens* (e.g. Kafka events) of the changes it
covers: the caller acknowledges them once the notification is delivered or parked.

``now`` is a clock in seconds supplied by the caller: the service runs it in event time (see
:meth:`alerts.service.Alerting.clock`), so a replay is grouped as it was live. Silences are judged
at ``wall()`` (people silence in real time).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from alerts.config.model import AlertsConfig, Route
from alerts.inhibit import inhibited
from alerts.matcher import matches_all
from alerts.nflog import Told
from alerts.silence import Silence, silenced
from schemas.alert import Alert
from schemas.base import iso_ms

GROUP_BY = ["alertname", "entity"]
GROUP_WAIT, GROUP_INTERVAL, REPEAT_INTERVAL = timedelta(seconds=30), timedelta(minutes=5), timedelta(hours=4)
PAYLOAD_VERSION = "1"


@dataclass(frozen=True)
class Routed:
    """A leaf of the route tree as it applies to one alert, with inherited settings."""

    path: str
    receiver: str
    group_by: tuple[str, ...]
    group_wait: float
    group_interval: float
    repeat_interval: float


def routes(root: Route, labels: Mapping[str, str]) -> list[Routed]:
    """The routes an alert takes: the deepest matching ones (the root when no child matches)."""

    def walk(route: Route, parent: Routed, path: str) -> list[Routed]:
        here = Routed(
            path, route.receiver or parent.receiver,
            tuple(route.group_by) if route.group_by is not None else parent.group_by,
            route.group_wait.total_seconds() if route.group_wait is not None else parent.group_wait,
            route.group_interval.total_seconds() if route.group_interval is not None else parent.group_interval,
            route.repeat_interval.total_seconds() if route.repeat_interval is not None else parent.repeat_interval,
        )
        found: list[Routed] = []
        for i, child in enumerate(route.routes):
            if matches_all(child.matchers, labels):
                found += walk(child, here, f"{path}.{i}")
                if not child.continue_:
                    break
        return found or [here]

    top = Routed("route", root.receiver or "", tuple(GROUP_BY), GROUP_WAIT.total_seconds(),
                 GROUP_INTERVAL.total_seconds(), REPEAT_INTERVAL.total_seconds())
    return walk(root, top, "route")


@dataclass
class Notification:
    """One message to one receiver about one group. ``id`` is deterministic (receiver, group, the alerts'
    fingerprints, states and starts, and how often this same content was sent), so a redelivery after a
    crash has the same id and receivers deduplicate on it."""

    id: str
    receiver: str
    group_key: str
    group_labels: dict[str, str]
    alerts: list[Alert]
    repeat: int = 0

    @property
    def status(self) -> str:
        return "firing" if any(a.status == "firing" for a in self.alerts) else "resolved"

    def payload(self, dashboard_url: str = "") -> dict[str, Any]:
        """The versioned JSON body sent to trading desks."""
        common = dict(self.alerts[0].labels) if self.alerts else {}
        for a in self.alerts[1:]:
            common = {k: v for k, v in common.items() if a.labels.get(k) == v}
        return {
            "version": PAYLOAD_VERSION,
            "id": self.id,
            "receiver": self.receiver,
            "status": self.status,
            "groupKey": self.group_key,
            "groupLabels": self.group_labels,
            "commonLabels": common,
            "repeat": self.repeat,
            "alerts": [
                {"status": a.status, "labels": a.labels, "annotations": a.annotations,
                 "startsAt": iso_ms(a.starts_at), "endsAt": iso_ms(a.ends_at) if a.ends_at else None,
                 "fingerprint": a.fingerprint, "value": a.value,
                 "dashboardURL": _link(dashboard_url, a) if dashboard_url else None}
                for a in self.alerts
            ],
        }


def _link(base: str, alert: Alert) -> str:
    from urllib.parse import urlencode

    entity = alert.labels.get("entity", "")
    start = int(alert.starts_at.timestamp() * 1000) - 3_600_000
    end = int((alert.ends_at or alert.at).timestamp() * 1000) + 600_000
    return f"{base}{'&' if '?' in base else '?'}{urlencode({'var-entity': entity, 'from': start, 'to': end})}"


@dataclass
class _Held:
    """A change's token, held until every group it went to has flushed (then it may be acknowledged)."""

    token: Any
    groups: int

    def release(self) -> bool:
        self.groups -= 1
        return self.groups == 0


@dataclass
class Group:
    key: str
    route: Routed
    labels: dict[str, str]
    next_flush: float
    alerts: dict[str, Alert] = field(default_factory=dict)
    tokens: list[_Held] = field(default_factory=list)
    notified: dict[str, str] = field(default_factory=dict)  # fingerprint -> status last notified
    last_sent: float | None = None
    repeats: int = 0


@dataclass
class Flush:
    """What one group's flush produced: a notification (None when there was nothing new to say) and the
    tokens of the changes no group holds any more (acknowledge them once the notification is delivered
    or parked, at once when there is none); ``told``: what the group has told once the notification is out
    (for the notification log)."""

    notification: Notification | None
    tokens: list[Any]
    muted: list[str] = field(default_factory=list)
    group_key: str = ""
    told: Told | None = None


class Dispatcher:
    def __init__(self, config: AlertsConfig, told: Mapping[str, Told] | None = None):
        """``told``: what each group told before a restart (:class:`alerts.nflog.NotificationLog`)."""
        self.config = config
        self.groups: dict[str, Group] = {}
        self.told = dict(told or {})

    def add(self, alert: Alert, now: float, token: Any = None) -> list[Any]:
        """Take one alert change; returns the tokens that need no notification (acknowledge them now)."""
        if alert.status in ("pending", "inactive"):
            return [token]  # recorded, never notified (Prometheus does not send pending alerts either)
        groups = []
        for routed in routes(self.config.route, alert.labels):
            values = {k: alert.labels.get(k, "") for k in routed.group_by}
            key = f"{routed.path}:{routed.receiver}:" + ",".join(f"{k}={v}" for k, v in sorted(values.items()))
            group = self.groups.get(key)
            if group is None:
                group = self.groups[key] = Group(key, routed, values, now + routed.group_wait)
                before = self.told.pop(key, None)
                if before is not None:
                    group.notified, group.last_sent, group.repeats = dict(before.notified), before.last_sent, before.repeats
            groups.append(group)
        held = _Held(token, len(groups))
        for group in groups:
            group.alerts[alert.fingerprint] = alert
            group.tokens.append(held)
        return []

    def firing(self) -> list[Mapping[str, str]]:
        return [a.labels for g in self.groups.values() for a in g.alerts.values() if a.status == "firing"]

    def next_due(self) -> float | None:
        return min((g.next_flush for g in self.groups.values()), default=None)

    def flush(self, now: float, silences: Iterable[Silence] = (), wall: Callable | None = None) -> list[Flush]:
        """Notifications of every group that is due at ``now``; silences are judged at ``wall()`` (default:
        ``now`` as Unix time)."""
        from datetime import datetime, timezone

        when = wall() if wall else datetime.fromtimestamp(now, timezone.utc)
        silences = list(silences)
        firing = self.firing()
        out = []
        for key in [k for k, g in self.groups.items() if g.next_flush <= now]:
            group = self.groups[key]
            muted, visible = [], []
            for a in group.alerts.values():
                mute = a.status == "firing" and (
                    silenced(silences, a.labels, when) is not None or inhibited(self.config.inhibit_rules, a.labels, firing))
                # a resolved alert is told only to receivers that were told it fired
                if mute or (a.status == "resolved" and group.notified.get(a.fingerprint) != "firing"):
                    muted.append(a.fingerprint)
                else:
                    visible.append(a)
            news = any(group.notified.get(a.fingerprint) != a.status for a in visible)
            still_firing = [a for a in visible if a.status == "firing"]
            repeat = (not news and still_firing and group.last_sent is not None
                      and now - group.last_sent >= group.route.repeat_interval)
            notification = None
            if news or repeat:
                group.repeats = group.repeats + 1 if repeat else 0
                notification = Notification(_id(group, visible), group.route.receiver, group.key, dict(group.labels),
                                            sorted(visible, key=lambda a: (a.status != "firing", a.fingerprint)),
                                            group.repeats)
                group.last_sent = now
                group.notified = {a.fingerprint: a.status for a in still_firing}
            # muted firing alerts stay in the group (they notify when the silence ends); resolved ones leave
            group.alerts = {fp: a for fp, a in group.alerts.items() if a.status == "firing"}
            told = Told(dict(group.notified), now, group.repeats) if notification is not None else None
            out.append(Flush(notification, [h.token for h in group.tokens if h.release()], muted, key, told))
            group.tokens = []
            group.next_flush = now + group.route.group_interval
            if not group.alerts:
                del self.groups[key]
        return out


def _id(group: Group, alerts: list[Alert]) -> str:
    h = hashlib.sha256(f"{group.route.receiver}|{group.key}|{group.repeats}".encode())
    for a in sorted(alerts, key=lambda a: a.fingerprint):
        h.update(f"|{a.fingerprint}:{a.status}:{iso_ms(a.starts_at)}".encode())
    return "msg_" + h.hexdigest()[:24]
