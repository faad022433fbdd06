"""``sentimon report``: a snapshot of a time range as one self-contained HTML file (the live page with
its data and plotly.js inlined: it opens offline, and can be mailed) and PNG charts (matplotlib) for
slides and tickets."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from schemas.base import parse_utc
from sentimon.web import page


def _times(rows: list[dict]) -> list[datetime]:
    return [parse_utc(r["time"]) for r in rows]


def charts(snapshot: dict[str, Any], out: Path) -> list[Path]:
    """PNG charts of a snapshot: the market, the sectors heatmap, the ticker's drill-down."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    paths = []

    def sentiment_chart(rows: list[dict], alerts: list[dict], title: str, name: str) -> None:
        fig, ax = plt.subplots(figsize=(10, 3.2), dpi=110)
        t = _times(rows)
        ax2 = ax.twinx()
        ax2.bar(t, [r["stories"] for r in rows], width=snapshot["bucket_minutes"] / 1440 * 0.8, color="#c5ccd6",
                label="stories")
        ax2.set_ylabel("stories")
        ax.set_zorder(ax2.get_zorder() + 1)
        ax.patch.set_visible(False)
        ax.plot(t, [r["mean_score"] if r["mean_score"] is not None else float("nan") for r in rows], color="#1971c2",
                lw=1.8, label="mean score")
        for a in alerts:
            when = parse_utc(a["at"])
            ax.axvline(when, color="#e03131" if a["status"] == "firing" else "#2f9e44", lw=1, ls="--")
        ax.set_ylim(-1, 1)
        ax.set_ylabel("mean score")
        ax.set_title(title, loc="left", fontsize=10)
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M"))
        fig.tight_layout()
        path = out / f"{name}.png"
        fig.savefig(path)
        plt.close(fig)
        paths.append(path)

    sentiment_chart(snapshot["market"], [], f"market: mean sentiment and stories ({snapshot['from']} – {snapshot['to']}, UTC)",
                    "market")
    sec = snapshot["sectors"]
    if sec["sectors"]:
        fig, ax = plt.subplots(figsize=(10, 0.4 * len(sec["sectors"]) + 1.2), dpi=110)
        grid = [[v if v is not None else float("nan") for v in row] for row in sec["mean_score"]]
        im = ax.imshow(grid, aspect="auto", cmap="RdYlGn", vmin=-1, vmax=1, interpolation="nearest")
        ax.set_yticks(range(len(sec["sectors"])), sec["sectors"], fontsize=8)
        step = max(1, len(sec["times"]) // 8)
        ax.set_xticks(range(0, len(sec["times"]), step), [t[11:16] for t in sec["times"][::step]], fontsize=8)
        fig.colorbar(im, ax=ax, fraction=0.03, label="mean score")
        ax.set_title("sentiment by sector", loc="left", fontsize=10)
        fig.tight_layout()
        path = out / "sectors.png"
        fig.savefig(path)
        plt.close(fig)
        paths.append(path)
    e = snapshot["entity"]
    if e["name"]:
        sentiment_chart(e["sentiment"], e["alerts"], f"{e['name']}: mean sentiment, stories, alerts (red: firing, green: resolved)",
                        "entity")
    return paths


def write(snapshot: dict[str, Any], out: Path, png: bool = True) -> list[Path]:
    """report.html (self-contained) and, with ``png``, the charts, under ``out``; the paths written."""
    out.mkdir(parents=True, exist_ok=True)
    html = out / "report.html"
    html.write_text(page(live=False, snapshot=snapshot, title=f"report {snapshot['from']} – {snapshot['to']}"))
    return [html, *(charts(snapshot, out) if png else [])]
