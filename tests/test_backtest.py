"""Backtest statistics on synthetic prices with a planted relation: alerts that precede a drop show a
significant abnormal return; the same alerts with shuffled tickers show none."""

from __future__ import annotations

import math
import random
from datetime import datetime, timedelta, timezone

from alerts.backtest import Prices, Signal, event_study, match_events

T0 = datetime(2026, 11, 2, 0, 0, tzinfo=timezone.utc)
TICKERS = [f"T{i:02d}" for i in range(20)]


def market(seed: int = 1, days: int = 2, planted: int = 40, drop: float = 0.03):
    """1-minute log random walks (0.1% a minute); at ``planted`` (ticker, time) events the price then falls
    by ``drop`` over 30 minutes. Returns (price rows, the planted events)."""
    rng = random.Random(seed)
    minutes = days * 1440
    events = [Signal(rng.choice(TICKERS), T0 + timedelta(minutes=rng.randrange(60, minutes - 120))) for _ in range(planted)]
    falls: dict[str, dict[int, float]] = {}
    for e in events:
        start = int((e.at - T0) / timedelta(minutes=1))
        for k in range(30):
            falls.setdefault(e.ticker, {})[start + k] = -drop / 30
    rows = []
    for ticker in TICKERS:
        log_p = math.log(100.0)
        for m in range(minutes):
            rows.append((ticker, T0 + timedelta(minutes=m), math.exp(log_p)))
            log_p += rng.gauss(0.0, 0.001) + falls.get(ticker, {}).get(m, 0.0)
    return rows, events


def test_alerts_before_planted_drops_show_a_significant_effect_and_shuffled_labels_none():
    rows, events = market()
    prices = Prices(rows)
    horizon = timedelta(minutes=30)
    # the rule fired 2 minutes before each planted drop
    alerts = [Signal(e.ticker, e.at - timedelta(minutes=2)) for e in events]
    study = event_study(alerts, prices, horizon, n_random=1000, n_boot=1000, seed=3)
    ret = next(e for e in study.effects if e.measure == "abnormal_return")
    assert ret.significant and ret.difference < -0.02 and ret.ci_high < 0, ret
    assert ret.n_alerts == len(alerts)
    rng = random.Random(7)
    shuffled = [Signal(rng.choice(TICKERS), a.at) for a in alerts]  # the same times, other tickers
    shuffled = [s for s, e in zip(shuffled, events) if s.ticker != e.ticker]
    null = next(e for e in event_study(shuffled, prices, horizon, n_random=1000, n_boot=1000, seed=3).effects
                if e.measure == "abnormal_return")
    assert not null.significant and abs(null.difference) < 0.01, null


def test_matching_counts_precision_recall_and_lead_time():
    events = [Signal("A", T0 + timedelta(minutes=30)), Signal("B", T0 + timedelta(minutes=90)),
              Signal("C", T0 + timedelta(minutes=10))]
    alerts = [Signal("A", T0 + timedelta(minutes=20)),  # 10 minutes ahead of A's event
              Signal("B", T0 + timedelta(minutes=85)),  # 5 minutes ahead of B's
              Signal("B", T0 + timedelta(minutes=200)),  # nothing follows
              Signal("C", T0 + timedelta(minutes=11))]  # after C's event: not a lead
    m = match_events(alerts, events, timedelta(minutes=15))
    assert (m.true_alerts, m.caught_events) == (2, 2)
    assert m.precision == 0.5 and m.recall == 2 / 3 and m.lead_minutes_median == 7.5


def test_the_backtest_report_compares_runs_side_by_side(tmp_path):
    from alerts.backtest_report import evaluate, write

    rows, events = market(days=1, planted=25)
    alerts = [Signal(e.ticker, e.at - timedelta(minutes=2)) for e in events]
    rng = random.Random(1)
    result = evaluate({"good_rules": alerts, "noise_rules": [Signal(rng.choice(TICKERS), a.at) for a in alerts]},
                      events, Prices(rows), timedelta(minutes=30))
    paths = write(result, tmp_path)
    page = (tmp_path / "backtest.html").read_text()
    assert [p.name for p in paths] == ["backtest.json", "backtest.html"] and page.count("data:image/png;base64") == 2
    import json

    runs = json.loads((tmp_path / "backtest.json").read_text())["runs"]
    assert runs["good_rules"]["matching"]["precision"] == 1.0 and runs["good_rules"]["matching"]["lead_minutes_median"] == 2.0
    assert runs["noise_rules"]["matching"]["precision"] < 0.3
    effects = {e["measure"]: e for e in runs["good_rules"]["event_study"]}
    assert effects["abnormal_return"]["significant"]
