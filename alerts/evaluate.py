"""The evaluator: rules over the aggregate tables, window by window in event time.

``advance(watermark)`` evaluates every minute boundary ``end`` with ``evaluated_until < end <=
watermark`` in order, for every rule and every entity in scope (those with stories in the window and
those with an open alert), steps each alert's lifecycle, writes the changes to the ``alerts`` table and
its own progress to ``alert_state``, and returns the changes (for the alerts topic). All SQL is
parameterized; no rule text reaches a statement.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from alerts.config import AlertsConfig, rules_hash
from alerts.config.model import Rule, SentimentShift, TopicBurst
from alerts.detect import MINUTE, Finding, Minute, Series, detect
from alerts.fingerprint import fingerprint
from alerts.lifecycle import AlertState, step
from alerts.template import render
from schemas.alert import Alert
from schemas.base import assume_utc, naive_utc, now_utc

log = logging.getLogger("sentimon.alerts")

_SERIES = (
    "SELECT entity, minute, sum(stories), sum(score_sum), sum(negative) FROM {db}.entity_minute "
    "WHERE entity_kind = {kind:String} AND minute >= {start:DateTime} AND minute < {end:DateTime} "
    "AND (empty({entities:Array(String)}) OR has({entities:Array(String)}, entity)) "
    "GROUP BY entity, minute"
)
_TOPICS = (
    "SELECT entity, minute, topic, sum(stories) FROM {db}.entity_topic_minute "
    "WHERE entity_kind = {kind:String} AND minute >= {start:DateTime} AND minute < {end:DateTime} "
    "AND has({topics:Array(String)}, topic) "
    "AND (empty({entities:Array(String)}) OR has({entities:Array(String)}, entity)) "
    "GROUP BY entity, minute, topic"
)
_HEADLINES = (
    "SELECT if(d.title != '', d.title, substring(d.text, 1, 160)) AS headline "
    "FROM {db}.scores AS s INNER JOIN {db}.documents AS d ON d.doc_id = s.doc_id "
    "WHERE s.event_time >= {start:DateTime64(3)} AND s.event_time < {end:DateTime64(3)} AND s.is_duplicate = 0 "
    "AND multiIf({kind:String} = 'ticker', has(s.tickers, {entity:String}), "
    "            {kind:String} = 'sector', has(s.sectors, {entity:String}), 1) "
    "ORDER BY s.score * {sign:Int8}, s.doc_id LIMIT 1 BY s.doc_id LIMIT {n:UInt32}"
)


def floor_minute(t: datetime) -> datetime:
    return t.replace(second=0, microsecond=0)


def labels_of(rule: Rule, entity: str) -> dict[str, str]:
    return {**rule.labels, "alertname": rule.name, "entity_kind": rule.scope.kind, "entity": entity,
            "severity": rule.severity}


class Evaluator:
    def __init__(self, config: AlertsConfig, store, name: str = "default"):
        self.config, self.store, self.name = config, store, name
        self.rules_hash = rules_hash(config)
        self.stale = False
        self._load()

    # --- progress kept in the store ----------------------------------------------------------------

    def reload(self) -> None:
        """Forget what was evaluated but not committed: the next :meth:`advance` starts again from the
        progress recorded in the store (after a failed commit or publish: the same windows, the same changes)."""
        self.stale = True

    def _load(self) -> None:
        """Start from the progress recorded in the store (nothing evaluated when none is)."""
        self.evaluated_until: datetime | None = None
        self.states: dict[str, AlertState] = {}
        self._dirty = False
        rows = self.store.query(
            "SELECT argMax(evaluated_until, updated_at), argMax(states, updated_at) FROM {db}.alert_state "
            "WHERE evaluator = {name:String} GROUP BY evaluator", {"name": self.name})
        if not rows:
            return
        until, states = rows[0]
        rules = {r.name for r in self.config.rules}
        self.evaluated_until = assume_utc(until)
        for s in json.loads(states):
            if s["labels"].get("alertname") in rules:  # alerts of removed rules are dropped
                self.states[s["fingerprint"]] = AlertState(
                    s["fingerprint"], s["labels"], s["status"], datetime.fromisoformat(s["active_since"]),
                    datetime.fromisoformat(s["last_active"]), s.get("value"), s.get("annotations"))

    def commit(self, changes: list[Alert]) -> None:
        """Record the changes in the alerts table and the progress in alert_state (when it moved)."""
        if not self._dirty:
            return
        if changes:
            self.store.insert_rows("alerts", [
                [a.fingerprint, a.status, a.labels.get("alertname", ""), a.labels.get("severity", ""),
                 a.labels.get("entity_kind", ""), a.labels.get("entity", ""), a.labels, a.annotations,
                 naive_utc(a.starts_at), naive_utc(a.ends_at) if a.ends_at else None, naive_utc(a.at), a.value]
                for a in changes
            ], ["fingerprint", "status", "alertname", "severity", "entity_kind", "entity", "labels", "annotations",
                "starts_at", "ends_at", "at", "value"])
        states = [{"fingerprint": s.fingerprint, "labels": s.labels, "status": s.status,
                   "active_since": s.active_since.isoformat(), "last_active": s.last_active.isoformat(),
                   "value": s.value, "annotations": s.annotations} for s in self.states.values()]
        assert self.evaluated_until is not None
        self.store.insert_rows("alert_state", [[self.name, naive_utc(self.evaluated_until), self.rules_hash,
                                                json.dumps(states), naive_utc(now_utc())]],
                               ["evaluator", "evaluated_until", "rules_hash", "states", "updated_at"])
        self._dirty = False

    # --- evaluation -----------------------------------------------------------------------------------

    def _first_end(self) -> datetime | None:
        rows = self.store.query("SELECT min(minute), count() FROM {db}.entity_minute WHERE entity_kind = 'market'")
        return floor_minute(assume_utc(rows[0][0])) + MINUTE if rows and rows[0][1] else None

    def advance(self, watermark: datetime | None) -> list[Alert]:
        """Evaluate every window end up to ``watermark``; the alert changes, in order. Call :meth:`commit`
        once the changes are published: until then a restart evaluates these windows again (giving the same
        changes)."""
        if self.stale:  # raises while the store cannot be read: the evaluation is retried
            self._load()
            self.stale = False
        if watermark is None or not self.config.rules:
            return []
        last = floor_minute(watermark)
        if self.evaluated_until is None:
            first = self._first_end()
            if first is None:
                return []
            self.evaluated_until = first - MINUTE
        if last <= self.evaluated_until:
            return []
        ends = []
        t = self.evaluated_until + MINUTE
        while t <= last:
            ends.append(t)
            t += MINUTE
        changes: list[Alert] = []
        for rule in self.config.rules:
            changes += self._evaluate(rule, ends)
        changes.sort(key=lambda a: a.at)  # stable: rules in file order within one window end
        self.evaluated_until = last
        self._dirty = True
        return changes

    def _series(self, rule: Rule, start: datetime, end: datetime) -> dict[str, dict[datetime, Minute]]:
        params = {"kind": rule.scope.kind, "start": naive_utc(start), "end": naive_utc(end), "entities": rule.scope.entities}
        series: dict[str, dict[datetime, Minute]] = defaultdict(dict)
        for entity, minute, stories, score_sum, negative in self.store.query(_SERIES, params):
            series[entity][assume_utc(minute)] = Minute(int(stories), float(score_sum), int(negative))
        topics = sorted({d.topic for d in rule.detectors if isinstance(d, TopicBurst)})
        if topics:
            counts: dict[tuple[str, datetime], dict[str, int]] = defaultdict(dict)
            for entity, minute, topic, stories in self.store.query(_TOPICS, {**params, "topics": topics}):
                counts[(entity, assume_utc(minute))][topic] = int(stories)
            for (entity, minute), by_topic in counts.items():
                m = series[entity].get(minute, Minute())
                series[entity][minute] = Minute(m.stories, m.score_sum, m.negative, by_topic)
        return series

    def _evaluate(self, rule: Rule, ends: list[datetime]) -> list[Alert]:
        series = self._series(rule, ends[0] - rule.span, ends[-1])
        return run_rule(rule, series, ends, self.states, annotate=self._annotations)

    def _annotations(self, rule: Rule, entity: str, finding: Finding, end: datetime, labels: dict[str, str]) -> dict[str, str]:
        window = max(d.window for d in rule.detectors)
        first = rule.detectors[0]
        sign = -1 if isinstance(first, SentimentShift) and first.direction == "positive" else 1
        headlines = [r[0] for r in self.store.query(_HEADLINES, {
            "start": naive_utc(end - window), "end": naive_utc(end), "kind": rule.scope.kind, "entity": entity,
            "sign": sign, "n": rule.examples})] if rule.examples else []
        context: dict[str, Any] = {
            **finding.numbers, "rule": rule.name, "entity": entity, "entity_kind": rule.scope.kind,
            "severity": rule.severity, "value": finding.value, "window": int(window / MINUTE),
            "headlines": headlines, "labels": labels,
        }
        out = {key: render(text, context) for key, text in rule.annotations.items()}
        if headlines:
            out.setdefault("headlines", "\n".join(headlines))
        return out




def run_rule(rule: Rule, series: Mapping[str, Series], ends: list[datetime], states: dict[str, AlertState],
             annotate: Callable[[Rule, str, Finding, datetime, dict[str, str]], dict[str, str]] | None = None) -> list[Alert]:
    """Evaluate one rule at each window end in order (pure: ``states`` is updated in place); the changes.

    Entities judged at an end: those with stories in its window, and those with an open alert (so an
    alert resolves when its entity goes quiet). ``annotate`` renders annotations when an alert starts."""
    window = max(d.window for d in rule.detectors)
    open_ = {s.labels["entity"]: fp for fp, s in states.items() if s.labels.get("alertname") == rule.name}
    changes = []
    for end in ends:
        recent = [end - k * MINUTE for k in range(1, int(window / MINUTE) + 1)]
        entities = {e for e, minutes in series.items() if any(t in minutes for t in recent)} | set(open_)
        for entity in sorted(entities):
            finding = detect(rule.detector, series.get(entity, {}), end)
            labels = labels_of(rule, entity)
            fp = open_.get(entity) or fingerprint(labels)
            previous = states.get(fp)
            annotations = None
            if annotate is not None and finding.active and (previous is None or previous.status == "pending"):
                annotations = annotate(rule, entity, finding, end, labels)
            state, change = step(previous, finding.active, end, fingerprint=fp, labels=labels, for_=rule.for_,
                                 keep_firing_for=rule.keep_firing_for, value=finding.value, annotations=annotations)
            if state is None:
                states.pop(fp, None)
                open_.pop(entity, None)
            else:
                states[fp] = state
                open_[entity] = fp
            if change is not None:
                changes.append(change)
    return changes
