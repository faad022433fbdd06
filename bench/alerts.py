"""Alerts benchmark (``make bench``, alerts part).

1. **Detection quality** on a planted-spike synthetic set (pure: the shipped rules over generated
   per-minute series): many entities with their own volume and mood, negative bursts of several
   strengths planted at random times, and decoys that must not fire the burst rule (a volume spike of
   good news, a dip in mood without extra volume). Precision, recall and delay per strength.
2. **Latency on real parts**: tansu, the workers with the model, chDB and a verifying receiver on
   loopback. A live feed (event time = the clock) after a backlog of history; negative bursts about
   several tickers; for each, the time from the burst's last document being produced to the firing
   webhook received, and the part of it after the window closed, against the configured window.
"""

from __future__ import annotations

import base64
import os
import random
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import orjson
from rich.console import Console
from rich.table import Table

from alerts.config import load
from alerts.detect import MINUTE, Minute
from alerts.evaluate import run_rule

STRENGTHS = (2.0, 3.0, 5.0, 8.0)  # burst volume as a multiple of the entity's usual (plus a floor of 4/min)


@dataclass(frozen=True)
class Planted:
    entity: str
    start: datetime
    minutes: int
    kind: str  # "burst" (should fire), "good_news" or "dip" (decoys: should not fire the burst rule)
    strength: float


def planted_set(entities: int = 80, hours: float = 12.0, seed: int = 11) -> tuple[dict, list[Planted]]:
    """Per-minute series of ``entities`` and the events planted in them."""
    rng = random.Random(seed)
    t0 = datetime(2026, 11, 2, 8, 0, tzinfo=timezone.utc)
    minutes = int(hours * 60)
    series: dict[str, dict[datetime, Minute]] = {}
    planted: list[Planted] = []
    for e in range(entities):
        name = f"E{e:03d}"
        rate = rng.choice((0.3, 0.7, 1.5, 3.0, 6.0, 12.0))
        mood = rng.uniform(-0.05, 0.3)
        events = []
        for _ in range(rng.randint(1, 3)):
            start = rng.randrange(90, minutes - 30)
            kind = rng.choices(("burst", "good_news", "dip"), (0.6, 0.2, 0.2))[0]
            events.append(Planted(name, t0 + start * MINUTE, rng.randint(3, 10), kind, rng.choice(STRENGTHS)))
        events.sort(key=lambda p: p.start)
        kept = [p for i, p in enumerate(events) if i == 0 or p.start >= events[i - 1].start + 60 * MINUTE]
        planted += kept
        minute_data = {}
        for k in range(minutes):
            t = t0 + k * MINUTE
            active = next((p for p in kept if p.start <= t < p.start + p.minutes * MINUTE), None)
            lam, mean = rate, mood
            if active and active.kind in ("burst", "good_news"):
                lam = rate * active.strength + 4
                mean = -0.6 if active.kind == "burst" else 0.6
            elif active and active.kind == "dip":
                mean = -0.6
            n = _poisson(rng, lam)
            scores = [max(-1.0, min(1.0, rng.gauss(mean, 0.55))) for _ in range(n)]
            if n:
                minute_data[t] = Minute(n, sum(scores), sum(s < -0.33 for s in scores))
        series[name] = minute_data
    return series, planted


def _poisson(rng: random.Random, lam: float) -> int:
    if lam > 30:
        return max(0, round(rng.gauss(lam, lam ** 0.5)))
    n, p, limit = 0, 1.0, pow(2.718281828459045, -lam)
    while True:
        p *= rng.random()
        if p <= limit:
            return n
        n += 1


def detection_quality(rule_name: str = "negative_burst", config=None, seed: int = 11, hours: float = 12.0) -> dict:
    """Precision, recall and delay of one shipped rule on the planted set."""
    config = config or load()
    rule = next(r for r in config.rules if r.name == rule_name)
    series, planted = planted_set(seed=seed, hours=hours)
    t0 = min(min(m) for m in series.values() if m)
    ends = [t0 + k * MINUTE for k in range(1, int(hours * 60) + 1)]
    firings = [c for c in run_rule(rule, series, ends, {}) if c.status == "firing"]
    window = max(d.window for d in rule.detectors) + rule.for_

    def explains(p: Planted, at: datetime) -> bool:
        return p.start < at <= p.start + p.minutes * MINUTE + window

    true_pos, delays = 0, {s: [] for s in STRENGTHS}
    found = set()
    for f in firings:
        match = next((p for p in planted if p.entity == f.labels["entity"] and explains(p, f.at)), None)
        if match is not None and match.kind == "burst":
            true_pos += 1
            if match not in found:
                found.add(match)
                delays[match.strength].append((f.at - match.start) / MINUTE)
    bursts = [p for p in planted if p.kind == "burst"]
    by_strength = {}
    for s in STRENGTHS:
        of = [p for p in bursts if p.strength == s]
        by_strength[f"{s:g}x"] = {"planted": len(of), "detected": sum(p in found for p in of),
                                  "recall": (sum(p in found for p in of) / len(of)) if of else None,
                                  "delay_min_median": statistics.median(delays[s]) if delays[s] else None}
    decoys = [p for p in planted if p.kind != "burst"]
    fired_on_decoys = sum(1 for f in firings if any(p.entity == f.labels["entity"] and explains(p, f.at) for p in decoys))
    return {
        "rule": rule_name, "entities": len(series), "hours": hours, "bursts": len(bursts), "decoys": len(decoys),
        "firings": len(firings), "precision": true_pos / len(firings) if firings else None,
        "recall": len(found) / len(bursts) if bursts else None, "firings_on_decoys": fired_on_decoys,
        "false_firings_per_entity_day": (len(firings) - true_pos) / len(series) / (hours / 24),
        "by_strength": by_strength,
    }


# --- latency on real parts -------------------------------------------------------------------------

LATENCY_RULES = """
rules:
  - name: negative_burst
    scope: {kind: ticker}
    detector:
      type: all
      detectors:
        - {type: sentiment_shift, window: 1m, baseline: 10m, threshold: 3, direction: negative, min_docs: 6}
        - {type: volume_spike, window: 1m, baseline: 10m, threshold: 4, min_ratio: 3, min_docs: 6}
    severity: critical
route:
  receiver: desk
  group_by: [alertname, entity]
  group_wait: 0s
  group_interval: 1s
receivers:
  - name: desk
    webhooks: [{url: "${SENTIMON_DESK_WEBHOOK_URL}", secrets: [{env: SENTIMON_DESK_WEBHOOK_SECRET}]}]
"""


def _q(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    return values[min(len(values) - 1, round(q * (len(values) - 1)))]


def latency_run(settings, workdir: Path, bursts: int = 4, rate: float = 12.0, lateness_s: float = 2.0,
                log: Callable[[str], None] = print) -> dict:
    from sentimon.local.receiver import WebhookReceiver
    from sentimon.local.broker import Broker
    from sentimon.cluster import LocalCluster
    from streams.feed import publish
    from streams.synthetic import Injected, SyntheticFeed, default_index

    secret = "whsec_" + base64.b64encode(os.urandom(24)).decode()
    received: dict[str, float] = {}

    def on_receive(r) -> None:
        for a in r.payload["alerts"]:
            if a["status"] == "firing":
                received.setdefault(a["labels"]["entity"], r.at)

    rules = workdir / "latency-rules.yaml"
    workdir.mkdir(parents=True, exist_ok=True)
    rules.write_text(LATENCY_RULES)
    tickers = [c.ticker for c in list(default_index().companies.values())[5:5 + bursts]]
    gap_s, burst_s, lead_s = 75.0, 20.0, 30.0
    with WebhookReceiver(secret, on_receive=on_receive) as receiver, Broker(log=workdir / "broker.log") as broker:
        os.environ["SENTIMON_DESK_WEBHOOK_URL"], os.environ["SENTIMON_DESK_WEBHOOK_SECRET"] = receiver.url, secret
        s = settings.model_copy(update={
            "kafka": settings.kafka.model_copy(update={"bootstrap_servers": broker.bootstrap}),
            "topics": settings.topics.model_copy(update={"prefix": "alerts-bench."}),
            "store": settings.store.model_copy(update={"dsn": f"chdb://{(workdir / 'store').resolve()}"}),
            "scoring": settings.scoring.model_copy(update={"backend": "local"}),
            "alerts": settings.alerts.model_copy(update={"rules_file": str(rules), "lateness_s": lateness_s}),
        })
        with LocalCluster(s, workdir / "run", start_broker=False) as cluster:
            cluster.start_worker("store")
            cluster.start_worker("pipeline")
            now = datetime.now(timezone.utc)
            history = SyntheticFeed(seed=5, start=now - timedelta(minutes=12), rhythm=False)
            n_hist = int(12 * 60 * rate)
            log(f"  history: {n_hist} items over the last 12 minutes of event time")
            publish(cluster.settings, [(k, orjson.dumps(i)) for _, k, i in history.items(n_hist, rate)])
            events = tuple(Injected("negative", t, at_s=lead_s + i * gap_s, duration_s=burst_s, share=0.5)
                           for i, t in enumerate(tickers))
            live = SyntheticFeed(seed=6, events=events, rhythm=False, live=True)
            total_s = lead_s + bursts * gap_s + 20
            last_burst_doc: dict[str, float] = {}

            def stream():
                for elapsed, kind, item in live.items(int(total_s * rate), rate):
                    about = (item.get("tickers") or item.get("cashtags") or [""])[0]
                    for e in events:
                        if e.target == about and e.at_s <= elapsed < e.at_s + e.duration_s:
                            last_burst_doc[about] = time.time()
                    yield kind, orjson.dumps(item)

            log(f"  live: {bursts} negative bursts of {burst_s:.0f} s, {gap_s:.0f} s apart, {rate:g} items/s")
            publish(cluster.settings, stream(), rate)
            deadline = time.monotonic() + 150
            while len(received) < bursts and time.monotonic() < deadline:
                time.sleep(1)
    os.environ.pop("SENTIMON_DESK_WEBHOOK_URL", None)
    os.environ.pop("SENTIMON_DESK_WEBHOOK_SECRET", None)
    total, after_window = [], []
    for t in tickers:
        if t in received and t in last_burst_doc:
            total.append(received[t] - last_burst_doc[t])
            window_end = (int(last_burst_doc[t] // 60) + 1) * 60  # the 1-minute window holding the last document
            after_window.append(received[t] - window_end)
    return {"bursts": bursts, "detected": sum(t in received for t in tickers), "window_s": 60, "lateness_s": lateness_s,
            "rate_items_per_s": rate, "last_doc_to_webhook_s": total,
            "p50_s": _q(total, 0.5), "p99_s": _q(total, 0.99),
            "after_window_end_p50_s": _q(after_window, 0.5), "after_window_end_p99_s": _q(after_window, 0.99)}


def run_alerts_bench(settings, out_dir: Path, *, quick: bool = False, log: Callable[[str], None] = print) -> dict:
    from bench.results import save_result

    console = Console()
    log("1/2 detection quality of the shipped rules on a planted-spike synthetic set")
    quality = {name: detection_quality(name, hours=6.0 if quick else 12.0) for name in ("negative_burst", "negative_shift")}
    table = Table(title="planted negative bursts, 80 entities (decoys: good-news volume, mood dips); "
                        "per strength: recall (median delay, min)")
    for col in ("rule", "fired", "prec.", "recall", "false/ent-day", "decoys", *(f"{s:g}x" for s in STRENGTHS)):
        table.add_column(col, justify="right", no_wrap=True)
    for name, q in quality.items():
        cells = []
        for s in STRENGTHS:
            b = q["by_strength"][f"{s:g}x"]
            delay = b["delay_min_median"]
            cells.append("-" if b["recall"] is None else f"{b['recall']:.2f} ({'-' if delay is None else f'{delay:g}'})")
        table.add_row(name, str(q["firings"]), f"{q['precision']:.2f}" if q["precision"] is not None else "-",
                      f"{q['recall']:.2f}", f"{q['false_firings_per_entity_day']:.2f}", str(q["firings_on_decoys"]), *cells)
    console.print(table)
    log("2/2 latency: burst's last document produced -> signed webhook received (real parts)")
    latency = latency_run(settings, out_dir / "alerts-run", bursts=2 if quick else 5, log=log)
    lt = Table(title=f"alert latency (window {latency['window_s']} s, lateness {latency['lateness_s']:g} s, "
                     f"{latency['detected']}/{latency['bursts']} bursts detected)")
    for col in ("", "p50 s", "p99 s"):
        lt.add_column(col, justify="right")
    fmt = lambda v: "-" if v is None else f"{v:.1f}"  # noqa: E731
    lt.add_row("last burst document -> webhook", fmt(latency["p50_s"]), fmt(latency["p99_s"]))
    lt.add_row("window end -> webhook", fmt(latency["after_window_end_p50_s"]), fmt(latency["after_window_end_p99_s"]))
    console.print(lt)
    result = {"quick": quick, "quality": quality, "latency": latency}
    save_result(out_dir, "alerts", result, log)
    return result
