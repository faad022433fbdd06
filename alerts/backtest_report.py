"""``sentimon backtest``: replay runs' alerts against outcomes, side by side (one column per run, e.g.
per rule set), as a JSON file and an HTML page with plots (PNG inlined: the file stands alone)."""

from __future__ import annotations

import base64
import csv
import html
import io
import json
from dataclasses import asdict
from datetime import timedelta
from pathlib import Path
from typing import Any

from alerts.backtest import Prices, Signal, event_study, match_events
from schemas.base import assume_utc, parse_utc


def read_events(path: Path) -> list[Signal]:
    """A labelled event list: CSV with columns ticker, time, kind."""
    with open(path, newline="") as f:
        return [Signal(r["ticker"].strip(), parse_utc(r["time"]), r.get("kind", "").strip()) for r in csv.DictReader(f)]


def read_prices(path: Path) -> Prices:
    """Prices: CSV with columns ticker, time, price."""
    with open(path, newline="") as f:
        return Prices([(r["ticker"].strip(), parse_utc(r["time"]), float(r["price"])) for r in csv.DictReader(f)])


def run_alerts(store, alertname: str | None = None) -> list[Signal]:
    """A run's alerts on tickers: one signal per alert, at the time it started firing."""
    rows = store.query(
        "SELECT entity, starts_at, alertname FROM {db}.alerts FINAL WHERE status = 'firing' AND entity_kind = 'ticker' "
        "AND (empty({name:String}) OR alertname = {name:String}) ORDER BY starts_at, entity",
        {"name": alertname or ""})
    return [Signal(e, assume_utc(t), name) for e, t, name in rows]


def evaluate(runs: dict[str, list[Signal]], events: list[Signal] | None, prices: Prices | None,
             horizon: timedelta, seed: int = 0) -> dict[str, Any]:
    """Per run: matching against the events, the event study against the prices (either may be absent)."""
    out: dict[str, Any] = {"horizon_minutes": horizon / timedelta(minutes=1), "runs": {}}
    for run_id, alerts in runs.items():
        result: dict[str, Any] = {"alerts": len(alerts)}
        if events is not None:
            result["matching"] = asdict(match_events(alerts, events, horizon))
        if prices is not None:
            study = event_study(alerts, prices, horizon, seed=seed)
            result["event_study"] = [dict(asdict(e), significant=e.significant) for e in study.effects]
            result["_study"] = study
        out["runs"][run_id] = result
    return out


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return base64.b64encode(buf.getvalue()).decode()


def write(result: dict[str, Any], out: Path) -> list[Path]:
    """backtest.json and backtest.html under ``out``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    plain = {"horizon_minutes": result["horizon_minutes"],
             "runs": {k: {kk: vv for kk, vv in v.items() if kk != "_study"} for k, v in result["runs"].items()}}
    (out / "backtest.json").write_text(json.dumps(plain, indent=2, default=str))
    rows, images = [], []
    for run_id, r in result["runs"].items():
        m = r.get("matching") or {}
        effects = {e["measure"]: e for e in r.get("event_study", [])}
        ret, vol = effects.get("abnormal_return"), effects.get("volatility")

        def effect(e):
            if not e:
                return "–"
            star = " ✱" if e["significant"] else ""
            return (f"{e['difference']:+.4f} [{e['ci_low']:+.4f}, {e['ci_high']:+.4f}], p {e['p_value']:.3f}{star}")

        rows.append(f"<tr><td>{html.escape(run_id)}</td><td>{r['alerts']}</td>"
                    f"<td>{_num(m.get('precision'))}</td><td>{_num(m.get('recall'))}</td>"
                    f"<td>{_num(m.get('lead_minutes_median'), 1)}</td><td>{effect(ret)}</td><td>{effect(vol)}</td></tr>")
        study = r.get("_study")
        if study is not None and study.reactions:
            fig, ax = plt.subplots(figsize=(6, 3))
            ax.hist([x.abnormal_return for x in study.baseline], bins=40, alpha=0.6, density=True, label="random times")
            ax.hist([x.abnormal_return for x in study.reactions], bins=20, alpha=0.7, density=True, label="after alerts")
            ax.set_title(f"{run_id}: abnormal log return over {result['horizon_minutes']:.0f} min", fontsize=10)
            ax.legend(fontsize=8)
            fig.tight_layout()
            images.append(f'<figure><img src="data:image/png;base64,{_png(fig)}"></figure>')
            plt.close(fig)
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>Sentimon backtest</title>
<style>body{{font:14px system-ui,sans-serif;margin:2em}}table{{border-collapse:collapse}}td,th{{border-bottom:1px solid #ddd;
padding:4px 10px;text-align:left}}figure{{display:inline-block;margin:1em 1em 0 0}}</style></head><body>
<h1>Backtest</h1><p>Horizon {result['horizon_minutes']:.0f} minutes after each alert. Precision: alerts followed by a
labelled event of their ticker within the horizon; recall: events preceded by an alert; lead: event time minus the
alert's. Abnormal return and volatility: after alerts minus at random times of the same tickers, with a 95% bootstrap
interval and a permutation p-value (✱: significant at 5%).</p>
<table><tr><th>run</th><th>alerts</th><th>precision</th><th>recall</th><th>lead (min, median)</th>
<th>abnormal return</th><th>volatility</th></tr>{''.join(rows)}</table>{''.join(images)}</body></html>"""
    (out / "backtest.html").write_text(page)
    return [out / "backtest.json", out / "backtest.html"]


def _num(v, digits: int = 2) -> str:
    return "–" if v is None else f"{v:.{digits}f}"
