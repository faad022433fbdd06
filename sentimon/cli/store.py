"""The store: migrations, schemas, common questions and the dead letters."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from sentimon.cli.common import _api, _fail, _store_or_api, app
from sentimon.settings import get_settings, redact


db_app = typer.Typer(help="The ClickHouse store: migrations.", no_args_is_help=True)
schemas_app = typer.Typer(help="Event schemas: JSON Schema export.", no_args_is_help=True)
query_app = typer.Typer(help="Common questions answered from the store.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(schemas_app, name="schemas")
app.add_typer(query_app, name="query")


@db_app.command("migrate")
def db_migrate() -> None:
    """Apply the ClickHouse migrations not applied yet (idempotent)."""
    from streams.store import Store, StoreUnavailable

    s = get_settings()
    try:
        store = Store(s.store_dsn, s.store.database)
    except StoreUnavailable as exc:
        _fail(str(exc))
    applied = store.migrate()
    store.close()
    for m in applied:
        print(f"applied {m.version:04d}_{m.name}")
    if not applied:
        print(f"{redact(s.store_dsn)} ({s.store.database}) is up to date")


@schemas_app.command("export")
def schemas_export(
    out: Annotated[Optional[Path], typer.Option(help="directory; default schemas/json")] = None,
    check: Annotated[bool, typer.Option("--check", help="fail if the committed files differ from the models")] = False,
) -> None:
    """Write the JSON Schema file of every event model."""
    from schemas.jsonschema import JSON_DIR, export, render

    if check:
        stale = [n for n, text in render().items() if not (JSON_DIR / n).is_file() or (JSON_DIR / n).read_text() != text]
        if stale:
            _fail(f"stale schema files: {', '.join(stale)}; run `sentimon schemas export`")
        print("schema files are up to date")
        return
    for path in export(out or JSON_DIR):
        print(path)


@query_app.command("movers")
def query_movers(
    window: Annotated[int, typer.Option(help="recent window, minutes of event time")] = 5,
    baseline: Annotated[int, typer.Option(help="baseline before the window, minutes")] = 30,
    limit: Annotated[int, typer.Option(help="rows")] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Tickers whose mean sentiment moved most: last WINDOW minutes against the BASELINE before it."""
    store, api = _store_or_api()
    if store is not None:
        from sentimon.apps import summarize

        body = summarize(store, window, baseline, limit)
        store.close()
    else:
        body = _api(api, f"/api/summary?window={window}&baseline={baseline}&limit={limit}")
    if as_json:
        print(json.dumps(body, indent=2, default=str))
        return
    from sentimon.view import movers_table

    Console().print(movers_table(body["movers"], f"movers: last {window} min vs {baseline} min before ({body['latest_minute']})"))


def _entity_name(entity: str) -> str:
    """'all', a sector as spelled in the company list (any case), or a ticker in upper case."""
    from streams.entities import default_index

    if entity.lower() == "all":
        return "all"
    sectors = {c.sector.lower(): c.sector for c in default_index().companies.values()}
    return sectors.get(entity.lower(), entity.upper().lstrip("$"))


@query_app.command("entity")
def query_entity(
    entity: Annotated[str, typer.Argument(help="ticker (TSLA), sector (Energy) or 'all'")],
    minutes: Annotated[int, typer.Option(help="how far back from the newest data, minutes")] = 60,
    bucket: Annotated[int, typer.Option(help="bucket size, minutes")] = 5,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """An entity's sentiment over time: documents, stories, mean score and negative share per bucket."""
    store, api = _store_or_api()
    if store is not None:
        series = store.entity_series(_entity_name(entity), minutes, bucket)
        store.close()
    else:
        import urllib.parse

        series = _api(api, f"/api/entity/{urllib.parse.quote(_entity_name(entity))}/?minutes={minutes}&bucket={bucket}")["series"]
    if as_json:
        print(json.dumps(series, indent=2, default=str))
        return
    from sentimon.view import series_table

    Console().print(series_table(entity, series))


@app.command("dead-letters")
def dead_letters(
    limit: Annotated[int, typer.Option(help="most messages to show")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="print the dead letters as JSON lines")] = False,
) -> None:
    """Show what landed in the dead-letter topic: stage, reason, source topic/partition/offset, original bytes."""
    from schemas import DeadLetter
    from streams.kafka.consumer import read

    s = get_settings()
    table = Table(title=f"dead letters in {s.topics.name('dead_letters')}")
    for col in ("stage", "source", "reason", "original (first 60 bytes)"):
        table.add_column(col, overflow="fold")
    for msg in read(s.kafka, s.topics.name("dead_letters"), limit, idle_s=2.0, timeout_s=30.0):
        letter = DeadLetter.model_validate_json(msg.value())
        if as_json:
            print(letter.model_dump_json())
            continue
        table.add_row(letter.stage, f"{letter.topic}[{letter.partition}]@{letter.offset}", letter.reason,
                      repr(letter.original_bytes()[:60]))
    if not as_json:
        Console().print(table)
