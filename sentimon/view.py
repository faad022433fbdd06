"""Terminal views shared by the demo and ``sentimon query``: tables with coloured scores and sparklines."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text

BARS = "▁▂▃▄▅▆▇█"


def score_text(value: float | None, signed: bool = True) -> Text:
    if value is None:
        return Text("–", style="dim")
    style = "green" if value > 0.1 else "red" if value < -0.1 else "white"
    return Text(f"{value:+.2f}" if signed else f"{value:.2f}", style=style)


def sparkline(values: list[float | None], low: float = -1.0, high: float = 1.0) -> Text:
    """One character per value (score in [low, high]); red below zero, green above."""
    out = Text()
    for v in values:
        if v is None:
            out.append(" ")
            continue
        level = int((min(max(v, low), high) - low) / (high - low) * (len(BARS) - 1))
        out.append(BARS[level], style="red" if v < -0.1 else "green" if v > 0.1 else "white")
    return out


def movers_table(movers: list[dict], title: str, highlight: str | None = None) -> Table:
    table = Table(title=title, title_justify="left")
    for col, justify in (("entity", "left"), ("stories", "right"), ("mean score", "right"), ("baseline", "right"),
                         ("change", "right"), ("negative share", "right")):
        table.add_column(col, justify=justify)
    for m in movers:
        name = Text(m["entity"], style="bold yellow" if m["entity"] == highlight else "")
        share = m.get("negative_share")
        table.add_row(name, str(m["stories"]), score_text(m["mean_score"]), score_text(m.get("baseline_score")),
                      score_text(m.get("change")), "–" if share is None else f"{share:.0%}")
    return table


def series_table(entity: str, series: list[dict]) -> Table:
    table = Table(title=f"{entity}: sentiment over time (event time, UTC)", title_justify="left")
    for col in ("time", "docs", "stories", "mean score", "negative share"):
        table.add_column(col, justify="left" if col == "time" else "right")
    for row in series:
        share = row["negative_share"]
        table.add_row(str(row["time"]), str(row["docs"]), str(row["stories"]), score_text(row["mean_score"]),
                      "–" if share is None else f"{share:.0%}")
    return table


def notifications_table(received: list, title: str) -> Table:
    """Webhook notifications a desk received (:class:`sentimon.local.receiver.Received`), one row per alert."""
    from datetime import datetime

    table = Table(title=title, title_justify="left")
    for col in ("received", "status", "alert", "entity", "summary"):
        table.add_column(col, overflow="fold" if col == "summary" else "ellipsis")
    for r in received:
        for a in r.payload.get("alerts", []):
            status = a["status"]
            table.add_row(datetime.fromtimestamp(r.at).strftime("%H:%M:%S"),
                          Text(status, style="bold red" if status == "firing" else "green"),
                          a["labels"].get("alertname", ""), a["labels"].get("entity", ""),
                          a["annotations"].get("summary", ""))
    return table
