"""Dashboards: Grafana as code, and a self-contained report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from sentimon.cli.common import _api, _fail, _log, _store_or_api, app
from sentimon.settings import get_settings


dashboards_app = typer.Typer(help="Grafana dashboards as code: build, check, push.", no_args_is_help=True)
app.add_typer(dashboards_app, name="dashboards")


@app.command()
def report(
    from_: Annotated[Optional[str], typer.Option("--from", help="start, ISO 8601 UTC (default: --to minus 2 hours)")] = None,
    to: Annotated[Optional[str], typer.Option(help="end, ISO 8601 UTC (default: the newest data)")] = None,
    entity: Annotated[Optional[str], typer.Option(help="the ticker to drill into (default: the top mover)")] = None,
    out: Annotated[Optional[Path], typer.Option(help="output folder (default: var/reports/<time>)")] = None,
    png: Annotated[bool, typer.Option(help="also write PNG charts")] = True,
) -> None:
    """Write a self-contained HTML snapshot of a time range (the live page's charts, data and plotly.js
    inlined) and PNG charts. Reads the store directly, or through the store worker's API when it runs."""
    from datetime import datetime, timezone

    from sentimon.web import data
    from sentimon.web.api import BadRequest, parse_range
    from sentimon.web.report import write

    query = {k: v for k, v in (("from", from_), ("to", to), ("entity", entity)) if v}
    store, base = _store_or_api()
    if store is not None:
        try:
            snapshot = data.snapshot(store, *parse_range(query, store), entity)
        except BadRequest as exc:
            _fail(str(exc))
        finally:
            store.close()
    else:
        import urllib.parse

        snapshot = _api(base, "/api/v1/snapshot?" + urllib.parse.urlencode(query))
    if not snapshot["market"]:
        _log(f"no data between {snapshot['from']} and {snapshot['to']} (event time): the report is empty")
    folder = out or get_settings().var_dir / "reports" / datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
    for path in write(snapshot, folder, png=png):
        print(path)


@dashboards_app.command("build")
def dashboards_build() -> None:
    """Regenerate ops/grafana/dashboards/*.json from the code (sentimon/dashboards/definitions.py)."""
    from sentimon.dashboards import problems, write

    for path in write():
        found = problems(json.loads(path.read_text()))
        if found:
            _fail(f"{path}: " + "; ".join(found))
        _log(f"wrote {path}")


@dashboards_app.command("check")
def dashboards_check() -> None:
    """Validate the committed dashboards (schema round trip, layout, variables) and that they are what the
    code builds."""
    from sentimon.dashboards import DASHBOARDS_DIR, build_all, problems, render_json

    bad = []
    for name, model in build_all().items():
        path = DASHBOARDS_DIR / f"{name}.json"
        if not path.exists() or path.read_text() != render_json(model):
            bad.append(f"{path} is stale: run `make dashboards`")
        bad += problems(json.loads(path.read_text())) if path.exists() else []
    if bad:
        _fail("\n".join(bad))
    _log(f"{len(build_all())} dashboards valid and up to date in {DASHBOARDS_DIR}")


@dashboards_app.command("push")
def dashboards_push(
    force: Annotated[bool, typer.Option(help="overwrite dashboards edited in Grafana since, and resend the data source")] = False,
) -> None:
    """Publish the ClickHouse data source, the Sentimon folder and the dashboards to the Grafana at
    SENTIMON_GRAFANA__URL with the token in SENTIMON_GRAFANA__TOKEN; unchanged ones are left alone."""
    from grafana_client import GrafanaApi
    from grafana_client.client import GrafanaException

    from sentimon.dashboards import build_all
    from sentimon.dashboards.push import push

    s = get_settings()
    token = s.grafana.token.get_secret_value()
    if not token:
        _fail("set SENTIMON_GRAFANA__TOKEN to a Grafana service-account token (Editor), and SENTIMON_GRAFANA__URL "
              f"(now {s.grafana.url})")
    api = GrafanaApi.from_url(s.grafana.url, credential=token, timeout=15.0)
    try:
        changes = push(api, s, build_all(), force=force)
    except (GrafanaException, OSError) as exc:
        _fail(f"Grafana at {s.grafana.url}: {getattr(exc, 'message', exc)}")
    table = Table(title=f"pushed to {s.grafana.url}")
    for col in ("kind", "uid", "action"):
        table.add_column(col)
    for c in changes:
        table.add_row(c.kind, c.uid, c.action)
    Console().print(table)
