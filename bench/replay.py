"""``python -m bench replay``: replay throughput (docs/s, from the first item published to the last one
stored) as fast as possible, with the model and without it (the no-op scorer), side by side in one run
on the same history (the synthetic feed with an injected burst)."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path

import orjson

from bench.results import save_result
from sentimon.settings import Settings
from sentimon import replay
from streams.sink import raw_event_time
from streams.synthetic import Injected, SyntheticFeed


def run_replay_bench(settings: Settings, out_dir: Path, quick: bool = False, log: Callable[[str], None] = print) -> dict:
    from rich.console import Console
    from rich.table import Table

    n = 1500 if quick else 8000
    start = datetime(2026, 11, 2, 14, 0, tzinfo=timezone.utc)
    feed = SyntheticFeed(seed=settings.seed, start=start, rhythm=False,
                         events=(Injected("negative", "TSLA", at_s=20 * 60, duration_s=6 * 60),))
    values = ((kind, orjson.dumps(item)) for _, kind, item in feed.items(n, n / 3600))  # an hour of event time
    items, _ = replay.in_order(replay.Item(raw_event_time(v), kind, v) for kind, v in values)
    result: dict = {"items": len(items), "event_minutes": (items[-1].event_time - items[0].event_time) / timedelta(minutes=1),
                    "runs": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for backend in ("noop", "local"):
            s = settings.model_copy(update={"scoring": settings.scoring.model_copy(update={"backend": backend})})
            rid = f"bench_{backend}"
            log(f"replaying {len(items)} items as fast as possible, scorer {backend} ...")
            row = replay.run(s, items, rid, Path(tmp) / rid, None, source="synthetic", start_broker=True)
            result["runs"][backend] = {"handled_s": row["handled_s"], "docs_per_s": len(items) / row["handled_s"],
                                       "alerts": dict(row["alerts"]), "models": row["models"]}
    model, noop = result["runs"]["local"], result["runs"]["noop"]
    result["model_over_noop"] = model["docs_per_s"] / noop["docs_per_s"]
    table = Table(title=f"replay throughput, {len(items)} items ({result['event_minutes']:.0f} min of event time), as fast as possible")
    for col in ("scorer", "docs/s", "seconds", "alert changes"):
        table.add_column(col, justify="right")
    for backend, r in result["runs"].items():
        table.add_row("model (in-process)" if backend == "local" else "no-op", f"{r['docs_per_s']:,.0f}", f"{r['handled_s']:.1f}",
                      str(sum(r["alerts"].values())))
    Console().print(table)
    log(f"with the model: {result['model_over_noop']:.2f}x the no-op replay's throughput")
    save_result(out_dir, "replay", result, log)
    return result
