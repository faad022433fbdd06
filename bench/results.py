"""Where every benchmark's figures go: JSON under ``var/bench/`` (and a PNG where a plot helps)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path


def save_plot(out_dir: Path, name: str, draw: Callable, log: Callable[[str], None] = print) -> Path | None:
    """``draw(plt)`` makes a figure (and returns it); saved as ``<out_dir>/<name>.png``. A failure is logged,
    not raised: a plot is a nicety, the figures are in the JSON."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig = draw(plt)
        fig.tight_layout()
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / f"{name}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        log(f"plot: {path}")
        return path
    except Exception as exc:
        log(f"no plot: {exc}")
        return None


def save_result(out_dir: Path, kind: str, result: dict, log: Callable[[str], None] = print) -> Path:
    """Write a benchmark's result as ``<out_dir>/<kind>-<UTC time>.json``; returns the path."""
    from datetime import datetime, timezone

    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{kind}-{datetime.now(timezone.utc):%Y%m%dT%H%M%S}.json"
    path.write_text(json.dumps(result, indent=2))
    log(f"saved {path}")
    return path
