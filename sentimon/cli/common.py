"""What every command group shares: the application, the console, failing with a clear message, the data sets,
and reaching the store directly or through the worker that owns it."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Optional

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # no hub at run time here; unset it where a hub is reachable
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import typer
from rich.console import Console

from sentimon.settings import get_settings

app = typer.Typer(
    help="Sentimon: streaming market-sentiment monitoring. Config: sentimon.toml or SENTIMON_* variables.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)
console = Console(stderr=True)
ModelOpt = Annotated[Optional[str], typer.Option("--model", "-m", help="model name, version directory or 'auto'")]
RuntimeOpt = Annotated[Optional[str], typer.Option(
    help="what runs the model: ort-int8, ort-fp32, torch-fp32 or torch-int8 (default: scoring.runtime)")]


def _runtime(name: str):
    """A runtime name checked against :data:`models.runtime.RUNTIMES`; exits saying the choices otherwise."""
    from models.runtime import RUNTIMES

    if name not in RUNTIMES:
        _fail(f"unknown runtime {name!r}: choose one of {', '.join(RUNTIMES)}")
    return name


def _log(message: str) -> None:
    console.print(f"[dim]{message}[/dim]")


def _fail(message: str) -> None:
    from rich.markup import escape

    console.print(f"[red]error:[/red] {escape(message)}")
    raise typer.Exit(2)


def _sets(split: str):
    from models.dataset import load
    from models.labels import TASKS

    s = get_settings()
    try:
        return {task: load(task, split, s.data_dir, s.data_source) for task in TASKS}
    except (FileNotFoundError, RuntimeError, ValueError) as exc:
        _fail(str(exc))


def _store_or_api():
    """The store opened directly, or (when a store worker owns it) None and the worker's API address."""
    from streams.store import Store, StoreUnavailable

    s = get_settings()
    try:
        return Store.open(s), None
    except StoreUnavailable as exc:
        if "owned by another process" not in str(exc):
            _fail(str(exc))
        return None, f"http://{s.worker.host}:{s.worker.store_port}"


def _api(base: str, path: str):
    import urllib.request

    from sentimon.web import access

    request = urllib.request.Request(base + path, headers=access.headers(get_settings().worker.token.get_secret_value()))
    try:
        with urllib.request.urlopen(request, timeout=10) as r:
            return json.loads(r.read())
    except OSError as exc:
        _fail(f"the store is owned by a worker, and its API at {base} does not answer ({exc}); "
              "set SENTIMON_WORKER__STORE_PORT to the worker's --web-port")


def _iso_time(text: str):
    from schemas.base import parse_utc

    try:
        return parse_utc(text)
    except ValueError:
        raise ValueError(f"{text!r} is not an ISO 8601 time (e.g. 2026-11-29T10:00:00Z)") from None


def _alerts_config(path: Optional[Path]):
    from alerts.config import ConfigError, load

    try:
        return load(path or get_settings().alerts.rules_file or None)
    except ConfigError as exc:
        _fail(str(exc))


def _run_worker(role: str, web_port: int | None, loglevel: str, check_alerts: bool) -> None:
    from streams.store import StoreUnavailable
    from sentimon.worker import run

    if check_alerts:
        from alerts.notify.receivers import build

        try:  # a bad rules file or a missing webhook secret stops the worker before it consumes anything
            build(_alerts_config(None))
        except ValueError as exc:
            _fail(str(exc))
    from sentimon.settings import UnsafeDeployment
    from sentimon.web.access import Exposed

    try:
        run(role, get_settings(), web_port, loglevel)  # type: ignore[arg-type]
    except (ConnectionError, StoreUnavailable, FileNotFoundError, Exposed, UnsafeDeployment) as exc:
        _fail(str(exc))
