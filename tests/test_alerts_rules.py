"""Alert rules, detectors and the alert lifecycle on synthetic series (pure: no servers)."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

import pytest

from alerts.config import ConfigError, load, parse
from conftest import BURST_RULES
from alerts.config.model import NegativeShare, SentimentShift, TopicBurst, VolumeSpike
from alerts.detect import MINUTE, Minute, detect
from alerts.evaluate import run_rule
from alerts.fingerprint import fingerprint
from alerts.lifecycle import step

T0 = datetime(2026, 11, 2, 14, 0, tzinfo=timezone.utc)


def series(minutes: int = 180, seed: int = 1, spike: tuple[int, int] | None = None, rate: int = 6,
           mean: float = 0.15, spike_rate: int = 30, spike_mean: float = -0.8, topic: str | None = None) -> dict:
    """One entity's per-minute stories: noisy normal traffic, and a burst of negative stories in
    ``spike`` = (first minute, last minute + 1)."""
    rng = random.Random(seed)
    out = {}
    for k in range(minutes):
        burst = spike is not None and spike[0] <= k < spike[1]
        n = max(0, int(rng.gauss(spike_rate if burst else rate, 2)))
        scores = [max(-1.0, min(1.0, rng.gauss(spike_mean if burst else mean, 0.5))) for _ in range(n)]
        out[T0 + k * MINUTE] = Minute(n, sum(scores), sum(s < -0.3 for s in scores),
                                      {topic: n if burst else n // 10} if topic else {})
    return out


def ends(minutes: int = 180) -> list[datetime]:
    return [T0 + k * MINUTE for k in range(1, minutes + 1)]


RULES = BURST_RULES


def test_shipped_rules_load():
    config = load()
    assert {r.name for r in config.rules} >= {"negative_burst", "negative_shift", "market_shift"}
    assert config.route.routes[0].receiver == "desk"


def test_a_known_spike_fires_once_and_resolves_once():
    rule = parse(RULES).rules[0]
    states: dict = {}
    changes = run_rule(rule, {"TSLA": series(spike=(100, 110))}, ends(), states)
    statuses = [(c.status, int((c.at - T0) / MINUTE)) for c in changes]
    assert [s for s, _ in statuses] == ["pending", "firing", "resolved"], statuses
    pending, firing, resolved = (m for _, m in statuses)
    assert 100 < pending <= 103 and firing == pending + 1  # 'for: 1m'
    assert 110 < resolved <= 114  # the burst left the 3-minute window
    assert changes[1].labels == {"alertname": "negative_burst", "entity_kind": "ticker", "entity": "TSLA",
                                 "severity": "warning"}
    assert changes[1].fingerprint == fingerprint(changes[1].labels) and not states


@pytest.mark.parametrize("seed", range(8))
def test_noise_does_not_fire(seed):
    rule = parse(RULES).rules[0]
    assert run_rule(rule, {"TSLA": series(seed=seed)}, ends(), {}) == []


def test_a_negative_shift_alone_is_not_a_burst():
    """The combination needs both: a shift without more volume fires the shift detector only."""
    rule = parse(RULES).rules[0]
    quiet_but_negative = series(spike=(100, 110), spike_rate=6)
    assert run_rule(rule, {"X": quiet_but_negative}, ends(), {}) == []
    shift = next(d for d in rule.detector.detectors if d.type == "sentiment_shift")
    assert any(detect(shift, quiet_but_negative, e).active for e in ends()[100:112])


def test_detectors_on_their_own():
    s = series(spike=(100, 110), topic="M&A | Investments")
    at = T0 + 105 * MINUTE
    shift = detect(SentimentShift(type="sentiment_shift", window=timedelta(minutes=5)), s, at)
    assert shift.active and shift.numbers["z"] < -3 and shift.numbers["mean"] < 0 < shift.numbers["baseline"]
    share = detect(NegativeShare(type="negative_share", threshold=0.6), s, at)
    assert share.active and share.value > 0.6
    volume = detect(VolumeSpike(type="volume_spike"), s, at)
    assert volume.active and volume.numbers["ratio"] > 3
    burst = detect(TopicBurst(type="topic_burst", topic="M&A | Investments"), s, at)
    assert burst.active and burst.numbers["share"] > 0.9 and burst.numbers["baseline_share"] < 0.2
    before = T0 + 90 * MINUTE
    assert not any(d.active for d in (detect(SentimentShift(type="sentiment_shift"), s, before),
                                      detect(VolumeSpike(type="volume_spike"), s, before)))


def test_too_few_stories_or_no_history_never_fire():
    s = series(spike=(100, 110))
    rule = SentimentShift(type="sentiment_shift", min_docs=1000)
    assert not detect(rule, s, T0 + 105 * MINUTE).active
    young = {t: m for t, m in s.items() if t >= T0 + 95 * MINUTE}  # a burst with no baseline before it
    assert not detect(SentimentShift(type="sentiment_shift"), young, T0 + 105 * MINUTE).active


def test_lifecycle_for_and_keep_firing_for():
    labels = {"alertname": "a"}
    kw = dict(fingerprint="f", labels=labels, for_=2 * MINUTE, keep_firing_for=2 * MINUTE)
    t = [T0 + k * MINUTE for k in range(10)]
    s, c = step(None, True, t[0], **kw)
    assert s.status == "pending" and c.status == "pending"
    s, c = step(s, True, t[1], **kw)
    assert s.status == "pending" and c is None
    s, c = step(s, True, t[2], **kw)
    assert s.status == "firing" and c.status == "firing" and c.starts_at == t[0]
    s, c = step(s, False, t[3], **kw)
    assert s.status == "firing" and c is None  # kept firing for 2 minutes
    s, c = step(s, False, t[4], **kw)
    assert s is None and c.status == "resolved" and c.ends_at == t[4]
    # pending that clears never fired: 'inactive', never notified
    s, c = step(None, True, t[5], **kw)
    s, c = step(s, False, t[6], **kw)
    assert s is None and c.status == "inactive"


def test_fingerprint_is_order_independent_and_label_sensitive():
    assert fingerprint({"a": "1", "b": "2"}) == fingerprint({"b": "2", "a": "1"})
    assert fingerprint({"a": "1"}) != fingerprint({"a": "2"}) != fingerprint({"a1": ""})


@pytest.mark.parametrize("text, expected", [
    ("rules:\n  - name: a\n    detector: {type: sentiment_shift, window: 90s}\n", "r.yaml:3: rules.0.detector.window: must be a positive whole number of minutes"),
    ("rules:\n  - name: a\n    detector: {type: volume_spike}\n    for: 5 minutes\n", "r.yaml:4: rules.0.for: not a duration"),
    ("rules:\n  - name: a\n    detector: {type: nope}\n", "r.yaml:3: rules.0.detector: Input tag 'nope' found using 'type' does not match"),
    ("rules:\n  - name: a\n    detector: {type: negative_share}\n    severity: urgent\n", "r.yaml:4: rules.0.severity"),
    ("rules:\n  - name: a\n    detector: {type: negative_share}\n    annotations: {s: '{{ nope }}'}\n", "r.yaml:4: rules.0.annotations.s: template error: 'nope' is undefined"),
    ("rules:\n  - name: a\n    detector: {type: negative_share}\n    colour: red\n", "r.yaml:4: rules.0.colour: Extra inputs are not permitted"),
    ("rules:\n  - name: a\n    detector: {type: negative_share, baseline: 10m}\n", "rules.0.detector.baseline: Extra inputs"),
    ("rules:\n  - name: a\n    detector: {type: sentiment_shift, window: 5m, baseline: 12m}\n", "baseline must be at least 3 windows and a multiple"),
    ("rules:\n  - name: a\n    detector: {type: negative_share}\n  - name: a\n    detector: {type: negative_share}\n", "rule names must be unique: a"),
    ("route: {receiver: nobody}\n", "route.receiver: no receiver named 'nobody'"),
    ("rules: [\n", "r.yaml:2: not valid YAML"),
    ("receivers:\n  - name: d\n    webhooks: [{url: '${NOT_SET_ANYWHERE}', secrets: [{env: X}]}]\n", "r.yaml:3: environment variable NOT_SET_ANYWHERE is not set"),
    ("receivers:\n  - name: d\n    webhooks: [{url: 'http://x', secrets: [{env: X, file: y}]}]\n", "give exactly one of env or file"),
])
def test_bad_rule_files_fail_with_file_line_and_field(text, expected):
    with pytest.raises(ConfigError) as err:
        parse(text, "r.yaml")
    assert expected in str(err.value), str(err.value)


def test_environment_expansion(monkeypatch):
    monkeypatch.setenv("DESK_URL", "https://desk.example.com/hook")
    text = ("receivers:\n  - {name: log, log: true}\n  - name: d\n    webhooks: [{url: '${DESK_URL}', secrets: [{env: S}]},"
            " {url: '${OTHER:-}', secrets: [{env: S}]}]\n")
    hooks = parse(text).receivers[1].webhooks
    assert [h.url for h in hooks] == ["https://desk.example.com/hook", ""]
