"""The built-in live view for the embedded default (Grafana cannot read chDB): one page of charts
(:file:`page.html`, plotly.js served from the ``plotly`` package: no CDN), the read-only JSON API behind
it (:mod:`.api`, described by an OpenAPI document), and ``sentimon report`` (:mod:`.report`): the same
page with its data and plotly.js inlined."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

PAGE = Path(__file__).with_name("page.html")


@lru_cache(maxsize=1)
def plotly_js() -> bytes:
    """plotly.js as bundled in the ``plotly`` Python package."""
    import plotly

    return (Path(plotly.__file__).parent / "package_data" / "plotly.min.js").read_bytes()


def _script_json(value: Any) -> str:
    # inside <script>: "</" would end the element
    return json.dumps(value).replace("</", "<\\/")


def page(live: bool = True, snapshot: dict | None = None, title: str = "live view") -> str:
    """The page: live (at ``/live/``, fetching ``/api/v1/snapshot``, plotly.js from ``/static/plotly.min.js``) or a
    self-contained snapshot (data and plotly.js inlined)."""
    html = PAGE.read_text()
    if live:
        script = '<script src="/static/plotly.min.js"></script>'
    else:
        script = "<script>" + plotly_js().decode() + "</script>"
    html = html.replace('<script src="{{PLOTLY_SRC}}"></script>', script)
    return (html.replace("{{TITLE}}", title).replace("{{LIVE}}", "true" if live else "false")
            .replace("{{SNAPSHOT}}", _script_json(snapshot)))
