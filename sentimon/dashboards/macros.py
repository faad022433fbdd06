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


# how the plugin writes an instant: seconds, milliseconds, or a day
_LITERALS = {
    "s": lambda t: f"toDateTime({int(t.timestamp())})",
    "ms": lambda t: f"fromUnixTimestamp64Milli({int(t.timestamp() * 1000)})",
    "date": lambda t: f"toDate('{t:%Y-%m-%d}')",
}
_FILTERS = {"timeFilter": "s", "timeFilter_ms": "ms", "dateFilter": "date"}  # $__x(col): col within the range
_BOUNDS = {"fromTime": ("s", 0), "toTime": ("s", 1), "fromTime_ms": ("ms", 0), "toTime_ms": ("ms", 1)}


def expand(sql: str, time_from: datetime, time_to: datetime, interval_s: float) -> str:
    """The plugin's macros for the dashboard's time range and the panel's interval (seconds)."""
    bounds = (time_from.astimezone(timezone.utc), time_to.astimezone(timezone.utc))
    step = max(int(interval_s), 1)

    def arg(args: str | None, name: str) -> str:
        if not args or "," in args:
            raise ValueError(f"$__{name} takes one column, got ({args or ''})")
        return args.strip()

    def one(m: re.Match) -> str:
        name, args = m.group(1), m.group(2)
        if name in _FILTERS:
            c, literal = arg(args, name), _LITERALS[_FILTERS[name]]
            return f"{c} >= {literal(bounds[0])} AND {c} <= {literal(bounds[1])}"
        if name in _BOUNDS:
            kind, i = _BOUNDS[name]
            return _LITERALS[kind](bounds[i])
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
