"""Backtests: a run's alerts against what happened after them. Pure functions over plain data, so the
statistics are tested on synthetic series; ``sentimon backtest`` feeds them a run's alerts and the
user's CSVs.

* :func:`match_events`: alerts against a labelled event list (ticker, time, kind): precision (alerts
  followed by an event of their ticker within the horizon), recall (events preceded by an alert within
  the horizon) and lead time (event time minus the first alert's time).
* :func:`event_study`: alerts against prices (ticker, time, price): the abnormal return over the
  horizon after each alert (its return minus the ticker's average return over any window of that
  length) and the realized volatility after it, against the same measures at random times of the same
  tickers; a difference with a bootstrap confidence interval and a permutation p-value.
"""

from __future__ import annotations

import bisect
import math
import random
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from statistics import fmean, median


@dataclass(frozen=True)
class Signal:
    """An alert (or a labelled event): which ticker, when."""

    ticker: str
    at: datetime
    kind: str = ""


@dataclass(frozen=True)
class Matching:
    alerts: int
    events: int
    true_alerts: int
    caught_events: int
    precision: float | None
    recall: float | None
    lead_minutes_median: float | None


def match_events(alerts: Sequence[Signal], events: Sequence[Signal], horizon: timedelta) -> Matching:
    """Precision, recall and lead time of ``alerts`` for ``events`` within ``horizon`` after an alert."""
    by_ticker: dict[str, list[datetime]] = defaultdict(list)
    for a in alerts:
        by_ticker[a.ticker].append(a.at)
    for times in by_ticker.values():
        times.sort()
    event_times: dict[str, list[datetime]] = defaultdict(list)
    for e in events:
        event_times[e.ticker].append(e.at)
    for times in event_times.values():
        times.sort()

    def any_within(times: list[datetime], start: datetime, end: datetime) -> datetime | None:
        i = bisect.bisect_left(times, start)
        return times[i] if i < len(times) and times[i] <= end else None

    true_alerts = sum(any_within(event_times[a.ticker], a.at, a.at + horizon) is not None for a in alerts)
    leads = []
    for e in events:
        first = any_within(by_ticker[e.ticker], e.at - horizon, e.at)
        if first is not None:
            leads.append((e.at - first) / timedelta(minutes=1))
    return Matching(len(alerts), len(events), true_alerts, len(leads),
                    true_alerts / len(alerts) if alerts else None, len(leads) / len(events) if events else None,
                    median(leads) if leads else None)


class Prices:
    """Each ticker's price path (times ascending); the price at a time is the last one at or before it."""

    def __init__(self, rows: Sequence[tuple[str, datetime, float]]):
        paths: dict[str, list[tuple[datetime, float]]] = defaultdict(list)
        for ticker, t, p in rows:
            paths[ticker].append((t, float(p)))
        self.paths = {k: sorted(v) for k, v in paths.items()}
        self.times = {k: [t for t, _ in v] for k, v in self.paths.items()}

    def at(self, ticker: str, t: datetime) -> float | None:
        times = self.times.get(ticker)
        if not times:
            return None
        i = bisect.bisect_right(times, t) - 1
        return self.paths[ticker][i][1] if i >= 0 else None

    def window(self, ticker: str, start: datetime, end: datetime) -> list[float]:
        times = self.times.get(ticker, [])
        i, j = bisect.bisect_left(times, start), bisect.bisect_right(times, end)
        return [p for _, p in self.paths[ticker][i:j]] if ticker in self.paths else []

    def span(self, ticker: str) -> tuple[datetime, datetime] | None:
        times = self.times.get(ticker)
        return (times[0], times[-1]) if times else None


@dataclass(frozen=True)
class Reaction:
    """What followed one time: the log return over the horizon, minus the ticker's average, and the
    realized volatility (the standard deviation of the log returns between the prices in the horizon)."""

    ticker: str
    at: datetime
    abnormal_return: float
    volatility: float


def reaction(prices: Prices, ticker: str, at: datetime, horizon: timedelta, drift: dict[str, float]) -> Reaction | None:
    start, end = prices.at(ticker, at), prices.at(ticker, at + horizon)
    path = prices.window(ticker, at, at + horizon)
    span = prices.span(ticker)
    if start is None or end is None or span is None or at + horizon > span[1] or len(path) < 3:
        return None
    steps = [math.log(b / a) for a, b in zip(path, path[1:])]
    mean = fmean(steps)
    vol = math.sqrt(sum((s - mean) ** 2 for s in steps) / (len(steps) - 1))
    return Reaction(ticker, at, math.log(end / start) - drift.get(ticker, 0.0), vol)


def _drift(prices: Prices, horizon: timedelta) -> dict[str, float]:
    """Each ticker's average log return over a window of ``horizon`` (its whole move, scaled)."""
    out = {}
    for ticker, (first, last) in ((k, prices.span(k)) for k in prices.paths):
        total = math.log(prices.at(ticker, last) / prices.at(ticker, first))
        out[ticker] = total * (horizon / (last - first)) if last > first else 0.0
    return out


@dataclass(frozen=True)
class Effect:
    measure: str
    after_alerts: float
    at_random: float
    difference: float
    ci_low: float
    ci_high: float
    p_value: float
    n_alerts: int
    n_random: int

    @property
    def significant(self) -> bool:
        return self.p_value < 0.05 and not (self.ci_low <= 0.0 <= self.ci_high)


@dataclass(frozen=True)
class Study:
    horizon_minutes: float
    effects: tuple[Effect, ...]
    reactions: tuple[Reaction, ...]
    baseline: tuple[Reaction, ...]


def event_study(alerts: Sequence[Signal], prices: Prices, horizon: timedelta, n_random: int = 2000,
                n_boot: int = 2000, seed: int = 0) -> Study:
    """Abnormal return and volatility after alerts against random times of the same tickers."""
    rng = random.Random(seed)
    drift = _drift(prices, horizon)
    after = [r for a in alerts if (r := reaction(prices, a.ticker, a.at, horizon, drift))]
    tickers = [a.ticker for a in alerts if a.ticker in prices.paths] or list(prices.paths)
    baseline: list[Reaction] = []
    tries = 0
    while len(baseline) < n_random and tries < n_random * 5:
        tries += 1
        ticker = rng.choice(tickers)
        first, last = prices.span(ticker)
        room = (last - horizon - first).total_seconds()
        if room <= 0:
            continue
        r = reaction(prices, ticker, first + timedelta(seconds=rng.uniform(0, room)), horizon, drift)
        if r:
            baseline.append(r)
    effects = tuple(_effect(name, [getattr(r, name) for r in after], [getattr(r, name) for r in baseline], n_boot, rng)
                    for name in ("abnormal_return", "volatility"))
    return Study(horizon / timedelta(minutes=1), effects, tuple(after), tuple(baseline))


def _effect(measure: str, a: list[float], b: list[float], n_boot: int, rng: random.Random) -> Effect:
    if len(a) < 2 or len(b) < 2:
        nan = float("nan")
        return Effect(measure, nan, nan, nan, nan, nan, 1.0, len(a), len(b))
    diff = fmean(a) - fmean(b)
    # bootstrap CI of the difference of means (95%, percentile)
    boots = sorted(fmean(rng.choices(a, k=len(a))) - fmean(rng.choices(b, k=len(b))) for _ in range(n_boot))
    low, high = boots[int(0.025 * n_boot)], boots[int(0.975 * n_boot) - 1]
    # permutation p-value (two-sided): how often a random split of the pooled values differs as much
    pooled, k, extreme = a + b, len(a), 0
    for _ in range(n_boot):
        rng.shuffle(pooled)
        if abs(fmean(pooled[:k]) - fmean(pooled[k:])) >= abs(diff):
            extreme += 1
    return Effect(measure, fmean(a), fmean(b), diff, low, high, (extreme + 1) / (n_boot + 1), len(a), len(b))
