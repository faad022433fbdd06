"""Alert commands: check rules, run the service, silences, and webhooks to desks."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from sentimon.cli.common import _alerts_config, _fail, _log, _run_worker, _store_or_api, app
from sentimon.settings import get_settings, redact


alerts_app = typer.Typer(help="Alert rules, silences, webhooks.", no_args_is_help=True)
silence_app = typer.Typer(help="Silences: mute alerts matching label matchers for a while.", no_args_is_help=True)
app.add_typer(alerts_app, name="alerts")
alerts_app.add_typer(silence_app, name="silence")


@alerts_app.command("check")
def alerts_check(
    path: Annotated[Optional[Path], typer.Argument(help="alerts YAML; default: alerts.rules_file or the shipped rules")] = None,
) -> None:
    """Validate an alerts file (errors name the file, line and field) and list its rules and routes."""
    from alerts.config import rules_hash

    config = _alerts_config(path)
    table = Table(title=f"{len(config.rules)} rules (hash {rules_hash(config)})")
    for col in ("rule", "scope", "detector", "for", "severity"):
        table.add_column(col)
    for r in config.rules:
        kinds = "+".join(d.type for d in r.detectors)
        scope = r.scope.kind + (f" {','.join(r.scope.entities)}" if r.scope.entities else "")
        table.add_row(r.name, scope, kinds, str(r.for_), r.severity)
    Console().print(table)
    _log(f"receivers: {', '.join(x.name for x in config.receivers)}; inhibit rules: {len(config.inhibit_rules)}")


def _silences_call(method: str, body: dict | None = None, path: str = "/api/silences"):
    """Silences through the API of the worker that owns the chDB store (the store worker, or `alerts run`)."""
    import urllib.error
    import urllib.request

    s = get_settings()
    port = s.worker.alerts_port if s.alerts.run_in == "service" else s.worker.store_port
    base = f"http://{s.worker.host}:{port}"
    from sentimon.web import access

    request = urllib.request.Request(base + path, method=method, data=json.dumps(body).encode() if body else None,
                                     headers={"content-type": "application/json",
                                              **access.headers(s.worker.token.get_secret_value())})
    try:
        with urllib.request.urlopen(request, timeout=10) as r:
            return json.loads(r.read())
    except urllib.error.HTTPError as exc:
        _fail(f"{exc.code}: {exc.read().decode(errors='replace')}")
    except OSError as exc:
        _fail(f"the store is owned by a worker, and its API at {base} does not answer ({exc})")


@silence_app.command("add")
def silence_add(
    matchers: Annotated[list[str], typer.Argument(help='label matchers, e.g. entity=TSLA \'alertname=~"negative_.*"\'')],
    duration: Annotated[str, typer.Option(help="how long, e.g. 30m, 2h")] = "1h",
    author: Annotated[str, typer.Option(help="who silences")] = os.environ.get("USER", "unknown"),
    comment: Annotated[str, typer.Option(help="why (required)")] = "",
) -> None:
    """Mute alerts matching all MATCHERS for DURATION. Prints the silence id."""
    from alerts.config import parse_duration
    from alerts.silence import Silence, save

    if not comment:
        _fail("say why with --comment (silences are audited)")
    try:
        silence = Silence.new(matchers, parse_duration(duration), author, comment)
    except ValueError as exc:
        _fail(str(exc))
    store, _ = _store_or_api()
    if store is not None:
        save(store, silence)
        store.close()
        print(silence.id)
    else:  # the worker assigns the id
        print(_silences_call("POST", json.loads(silence.model_dump_json(exclude={"id"})))["id"])


@silence_app.command("list")
def silence_list(
    expired: Annotated[bool, typer.Option("--expired", help="include expired silences")] = False,
) -> None:
    """The silences: matchers, until when, who and why."""
    from alerts.silence import Silence, load

    store, _ = _store_or_api()
    if store is not None:
        silences = load(store, include_expired=expired)
        store.close()
    else:
        silences = [Silence(**x) for x in _silences_call("GET", path=f"/api/silences?expired={int(expired)}")]
    table = Table(title="silences")
    for col in ("id", "matchers", "starts", "ends", "by", "comment"):
        table.add_column(col)
    for x in silences:
        table.add_row(x.id, " ".join(map(str, x.matchers)), f"{x.starts_at:%Y-%m-%d %H:%M}", f"{x.ends_at:%Y-%m-%d %H:%M}",
                      x.created_by, x.comment)
    Console().print(table)


@silence_app.command("expire")
def silence_expire(silence_id: Annotated[str, typer.Argument(help="the id `silence add` printed")]) -> None:
    """End a silence now."""
    from alerts.silence import expire

    store, _ = _store_or_api()
    if store is None:
        _silences_call("DELETE", path=f"/api/silences/{silence_id}")
        return
    try:
        expire(store, silence_id)
    except KeyError:
        _fail(f"no silence with id {silence_id}")
    finally:
        store.close()


@alerts_app.command("run")
def alerts_run(
    web_port: Annotated[Optional[int], typer.Option(help="web port for /health, /metrics, /api/silences, /api/alerts")] = None,
    loglevel: Annotated[str, typer.Option(help="debug, info, warning")] = "info",
) -> None:
    """Evaluate the rules and deliver notifications as a service of its own, against the store the
    settings name (a ClickHouse server, shared with the store worker), until SIGTERM/Ctrl-C.

    The store worker must run with alerts.run_in = "service" (SENTIMON_ALERTS__RUN_IN=service): it then
    records how far its stored data goes (the watermark) instead of evaluating itself."""
    s = get_settings()
    if not s.alerts.enabled:
        _fail("alerting is disabled (alerts.enabled = false)")
    if s.alerts.run_in != "service":
        _fail('set alerts.run_in = "service" (SENTIMON_ALERTS__RUN_IN=service) here and for the store worker: '
              "otherwise the store worker evaluates the rules itself and records no watermark for this service")
    if s.store_dsn.startswith("chdb://"):
        _log(f"{redact(s.store_dsn)} is an embedded store: only one process can open it, so stop the store worker first "
             "(or use a ClickHouse server, where both run at once)")
    _run_worker("alerts", web_port, loglevel, check_alerts=True)


@alerts_app.command("test-webhook")
def alerts_test_webhook(
    url: Annotated[str, typer.Argument(help="the desk's endpoint")],
    secret_env: Annotated[str, typer.Option(help="environment variable with the signing secret (whsec_...)")] = "SENTIMON_DESK_WEBHOOK_SECRET",
) -> None:
    """Send a signed sample notification (status 'firing', labels test=true) and report the answer."""
    import asyncio

    from alerts.config.model import Secret, WebhookConfig
    from alerts.notify import DeliveryError
    from alerts.notify.webhook import SecretMissing, WebhookNotifier
    from alerts.sample import sample_notification

    try:
        notifier = WebhookNotifier(WebhookConfig(url=url, secrets=[Secret(env=secret_env)]))
    except (SecretMissing, ValueError) as exc:
        _fail(str(exc))
    notification = sample_notification()

    async def send():
        try:
            await notifier.send(notification)
        finally:
            await notifier.close()

    try:
        asyncio.run(send())
    except DeliveryError as exc:
        _fail(f"{notifier.target} answered: {exc}")  # the URL's path and query may hold a token: never shown
    _log(f"delivered {notification.id} to {notifier.target} (signed with {secret_env}); payload:")
    print(json.dumps(notification.payload(), indent=2))


@alerts_app.command("receive")
def alerts_receive(
    port: Annotated[int, typer.Option(help="port on 127.0.0.1")] = 9099,
    secret_env: Annotated[str, typer.Option(help="environment variable with the signing secret (whsec_...)")] = "SENTIMON_DESK_WEBHOOK_SECRET",
) -> None:
    """A verifying webhook receiver on loopback (checks signatures, deduplicates on webhook-id, prints
    each notification): what a desk's endpoint does, to try the alerts end to end."""
    from sentimon.local.receiver import WebhookReceiver

    secret = os.environ.get(secret_env, "")
    if not secret:
        _fail(f"set {secret_env} to the signing secret (whsec_ + base64), the same the sender uses")

    def show(r):
        for a in r.payload.get("alerts", []):
            print(f"{r.id} {a['status']:8} {a['labels'].get('alertname')} {a['labels'].get('entity')}: "
                  f"{a['annotations'].get('summary', '')}", flush=True)

    receiver = WebhookReceiver(secret, port=port, on_receive=show).start()
    _log(f"receiving on {receiver.url} (Ctrl-C to stop)")
    try:
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        inbox = receiver.inbox
        _log(f"{len(inbox.unique)} notifications, {inbox.duplicates} duplicates dropped, {inbox.rejected} bad signatures")
    finally:
        receiver.stop()
