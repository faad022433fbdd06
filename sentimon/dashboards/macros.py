"""What Grafana sends to ClickHouse for a panel query: template variables interpolated (Grafana's
side), then the ClickHouse plugin's macros expanded (the plugin's side), the way both do it.

Pure functions, so a test can run every panel's query against a real store (chDB) for a time range.
Macros (grafana-clickhouse-datasource v4): ``$__timeFilter(col)``, ``$__timeFilter_ms(col)``,
``$__dateFilter(col)``, ``$__fromTime``, ``$__toTime``, ``$__fromTime_ms``, ``$__toTime_ms``,
``$__timeInterval(col)``, ``$__timeInterval_ms(col)``, ``$__interval_s``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone

_VARIABLE = re.compile(r"\$\{(\w+)(?::(\w+))?\}|\$(?!__)(\w+)")
_MACRO = re.compile(r"\$__(\w+)(?:\(([^()]*)\))?")


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def interpolate(sql: str, variables: Mapping[str, str | Sequence[str]]) -> str:
    """Grafana's variable interpolation for the formats the dashboards use: ``$var`` / ``${var}`` (values
    joined by commas), ``${var:singlequote}`` ('a','b'), ``${var:sqlstring}`` (the same, SQL-escaped).
    KeyError for a variable not given (a panel refers to a variable the dashboard lacks)."""

    def one(m: re.Match) -> str:
        name, fmt = (m.group(1), m.group(2)) if m.group(1) else (m.group(3), None)
        value = variables[name]
        values = [value] if isinstance(value, str) else list(value)
        if fmt in ("singlequote", "sqlstring"):
            return ",".join(_quote(v) for v in values)
        if fmt not in (None, "raw", "csv"):
            raise ValueError(f"variable format {fmt!r} is not supported here")
        return ",".join(values)

    return _VARIABLE.sub(one, sql)


def _seconds(t: datetime) -> int:
    return int(t.timestamp())


def _millis(t: datetime) -> int:
    return int(t.timestamp() * 1000)


def expand(sql: str, time_from: datetime, time_to: datetime, interval_s: float) -> str:
    """The plugin's macros for the dashboard's time range and the panel's interval (seconds)."""
    f, t = time_from.astimezone(timezone.utc), time_to.astimezone(timezone.utc)
    step = max(int(interval_s), 1)

    def arg(args: str | None, name: str) -> str:
        if not args or "," in args:
            raise ValueError(f"$__{name} takes one column, got ({args or ''})")
        return args.strip()

    def one(m: re.Match) -> str:
        name, args = m.group(1), m.group(2)
        if name == "timeFilter":
            c = arg(args, name)
            return f"{c} >= toDateTime({_seconds(f)}) AND {c} <= toDateTime({_seconds(t)})"
        if name == "timeFilter_ms":
            c = arg(args, name)
            return f"{c} >= fromUnixTimestamp64Milli({_millis(f)}) AND {c} <= fromUnixTimestamp64Milli({_millis(t)})"
        if name == "dateFilter":
            c = arg(args, name)
            return f"{c} >= toDate('{f:%Y-%m-%d}') AND {c} <= toDate('{t:%Y-%m-%d}')"
        if name == "fromTime":
            return f"toDateTime({_seconds(f)})"
        if name == "toTime":
            return f"toDateTime({_seconds(t)})"
        if name == "fromTime_ms":
            return f"fromUnixTimestamp64Milli({_millis(f)})"
        if name == "toTime_ms":
            return f"fromUnixTimestamp64Milli({_millis(t)})"
        if name == "timeInterval":
            return f"toStartOfInterval(toDateTime({arg(args, name)}), INTERVAL {step} second)"
        if name == "timeInterval_ms":
            return f"toStartOfInterval(toDateTime64({arg(args, name)}, 3), INTERVAL {max(int(interval_s * 1000), 1)} millisecond)"
        if name == "interval_s":
            return str(step)
        raise ValueError(f"unknown macro $__{name}")

    return _MACRO.sub(one, sql)


def render(sql: str, variables: Mapping[str, str | Sequence[str]], time_from: datetime, time_to: datetime,
           interval_s: float) -> str:
    """A panel's SQL as ClickHouse receives it from Grafana."""
    return expand(interpolate(sql, variables), time_from, time_to, interval_s)
