"""Detectors: pure functions from per-minute aggregates of one entity to a finding.

A rule is evaluated at a window end ``end`` (a minute boundary of event time): the window is
``[end - window, end)``, the baseline the ``baseline / window`` windows right before it. Counts are
*stories* (a near-duplicate re-publication counts once).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from statistics import median
from typing import Any

from alerts.config.model import AllOf, NegativeShare, SentimentShift, TopicBurst, VolumeSpike

MAD_TO_SIGMA = 1.4826  # MAD of a normal distribution times this is its standard deviation
MINUTE = timedelta(minutes=1)


@dataclass(frozen=True)
class Minute:
    """One minute of one entity: distinct stories, their summed score (-1..1 each), negatives, and the
    stories of each topic the rules ask about."""

    stories: int = 0
    score_sum: float = 0.0
    negative: int = 0
    topics: Mapping[str, int] = field(default_factory=dict)


Series = Mapping[datetime, Minute]


@dataclass(frozen=True)
class Totals:
    stories: int = 0
    score_sum: float = 0.0
    negative: int = 0
    topics: dict[str, int] = field(default_factory=dict)

    @property
    def mean(self) -> float | None:
        return self.score_sum / self.stories if self.stories else None


@dataclass(frozen=True)
class Finding:
    """``active``: the condition holds; ``value``: the rule's headline number; ``numbers``: for templates."""

    active: bool
    value: float | None = None
    numbers: dict[str, Any] = field(default_factory=dict)


def totals(series: Series, start: datetime, end: datetime) -> Totals:
    """Sums over the minutes in ``[start, end)``."""
    stories, score_sum, negative, topics = 0, 0.0, 0, {}
    t = start
    while t < end:
        m = series.get(t)
        if m is not None:
            stories += m.stories
            score_sum += m.score_sum
            negative += m.negative
            for k, v in m.topics.items():
                topics[k] = topics.get(k, 0) + v
        t += MINUTE
    return Totals(stories, score_sum, negative, topics)


def _baseline(series: Series, spec, end: datetime) -> list[Totals]:
    n = spec.baseline // spec.window
    first = end - spec.window
    return [totals(series, first - (k + 1) * spec.window, first - k * spec.window) for k in range(n)]


def _robust(values: list[float], floor: float) -> tuple[float, float]:
    """Median and robust standard deviation (MAD-based, at least ``floor``)."""
    med = median(values)
    return med, max(MAD_TO_SIGMA * median(abs(v - med) for v in values), floor)


def sentiment_shift(spec: SentimentShift, series: Series, end: datetime) -> Finding:
    now = totals(series, end - spec.window, end)
    if now.stories < spec.min_docs:
        return Finding(False, numbers={"stories": now.stories})
    before = [t for t in _baseline(series, spec, end) if t.stories]
    if len(before) < 3:  # not enough history to know what normal is
        return Finding(False, numbers={"stories": now.stories, "mean": now.mean})
    med, spread = _robust([t.mean for t in before], 0.0)
    # the spread of a window's mean shrinks with its stories (1/sqrt(n)): the baseline windows' spread is
    # rescaled from their typical count to this window's, so a burst of many stories is judged against
    # the noise of a window that size; min_sigma keeps real day-to-day variation in
    typical = median(t.stories for t in before)
    sigma = max(spread * (typical / now.stories) ** 0.5, spec.min_sigma)
    z = (now.mean - med) / sigma
    active = {"negative": z <= -spec.threshold, "positive": z >= spec.threshold,
              "both": abs(z) >= spec.threshold}[spec.direction]
    return Finding(active, z, {"z": z, "mean": now.mean, "baseline": med, "sigma": sigma, "stories": now.stories})


def negative_share(spec: NegativeShare, series: Series, end: datetime) -> Finding:
    now = totals(series, end - spec.window, end)
    if now.stories < spec.min_docs:
        return Finding(False, numbers={"stories": now.stories})
    share = now.negative / now.stories
    return Finding(share >= spec.threshold, share, {"share": share, "stories": now.stories, "mean": now.mean})


def volume_spike(spec: VolumeSpike, series: Series, end: datetime) -> Finding:
    now = totals(series, end - spec.window, end)
    counts = [float(t.stories) for t in _baseline(series, spec, end)]
    med = median(counts)
    # a count's natural spread is at least Poisson's sqrt(mean)
    _, sigma = _robust(counts, max(med, 1.0) ** 0.5)
    z = (now.stories - med) / sigma
    ratio = now.stories / max(med, 1.0)
    active = now.stories >= spec.min_docs and z >= spec.threshold and ratio >= spec.min_ratio
    return Finding(active, z, {"z": z, "stories": now.stories, "baseline_stories": med, "ratio": ratio,
                               "mean": now.mean})


def topic_burst(spec: TopicBurst, series: Series, end: datetime) -> Finding:
    now = totals(series, end - spec.window, end)
    hits = now.topics.get(spec.topic, 0)
    if now.stories < spec.min_docs:
        return Finding(False, numbers={"stories": now.stories, "topic": spec.topic})
    before = _baseline(series, spec, end)
    b_stories = sum(t.stories for t in before)
    base = sum(t.topics.get(spec.topic, 0) for t in before) / b_stories if b_stories else 0.0
    share = hits / now.stories
    rise = share - base
    return Finding(rise >= spec.min_increase, rise, {"topic": spec.topic, "share": share, "baseline_share": base,
                                                      "stories": now.stories, "mean": now.mean})


_DETECTORS = {SentimentShift: sentiment_shift, NegativeShare: negative_share, VolumeSpike: volume_spike,
              TopicBurst: topic_burst}


def detect(spec, series: Series, end: datetime) -> Finding:
    """The finding of any detector. An :class:`AllOf` fires when all of its detectors fire; its numbers
    are the first detector's, then the others' not named yet, and each detector's under its type
    (``sentiment_shift.z``, ``volume_spike.z``)."""
    if isinstance(spec, AllOf):
        findings = [detect(d, series, end) for d in spec.detectors]
        numbers: dict[str, Any] = {}
        for d, f in zip(spec.detectors, findings):
            for k, v in f.numbers.items():
                numbers.setdefault(k, v)
            numbers[d.type] = f.numbers
        return Finding(all(f.active for f in findings), findings[0].value, numbers)
    return _DETECTORS[type(spec)](spec, series, end)
