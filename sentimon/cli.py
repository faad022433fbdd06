"""The ``sentimon`` command line: one entry point, a subcommand per job, ``--help`` everywhere."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Annotated, Optional

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # no hub at run time here; unset it where a hub is reachable
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import typer
from rich.console import Console
from rich.table import Table

from sentimon.settings import get_settings, redact

app = typer.Typer(
    help="Sentimon: streaming market-sentiment monitoring. Config: sentimon.toml or SENTIMON_* variables.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)
console = Console(stderr=True)
ModelOpt = Annotated[Optional[str], typer.Option("--model", "-m", help="model name, version directory or 'auto'")]


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


@app.command()
def config() -> None:
    """Print the effective settings (after file and environment) as JSON."""
    s = get_settings()
    print(json.dumps({**s.shown(), "models_dir": str(s.models_dir)}, indent=2))


@app.command()
def train(
    profile: Annotated[str, typer.Option(help="'fast' (CI/demo, <= 5 min) or 'full'")] = "fast",
    name: Annotated[Optional[str], typer.Option(help="model name; default sentimon-<profile>")] = None,
    epochs: Annotated[Optional[float], typer.Option(help="override the profile's epochs")] = None,
    lr: Annotated[Optional[float], typer.Option(help="override the encoder learning rate")] = None,
    head_lr: Annotated[Optional[float], typer.Option(help="override the heads' learning rate")] = None,
    init_from: Annotated[
        Optional[str], typer.Option(help="continue training from a model version (name or directory) instead of the backbone")
    ] = None,
    max_length: Annotated[Optional[int], typer.Option(help="override tokens per text")] = None,
    backbone: Annotated[Optional[str], typer.Option(help="encoder: package name, local path or hub name")] = None,
    seed: Annotated[Optional[int], typer.Option(help="override the seed")] = None,
    evaluate: Annotated[bool, typer.Option(help="write metrics.json and the model card after training")] = True,
    if_missing: Annotated[bool, typer.Option("--if-missing", help="do nothing when a version already exists")] = False,
) -> None:
    """Fine-tune the multi-task sentiment + topic classifier into a new model version.

    Resumable: run the same command again after an interruption and it continues from the last checkpoint.
    """
    from models import artifact
    from models.evaluate import evaluate_artifact
    from models.profiles import profile as make_profile
    from models.train import train as run_training

    s = get_settings()
    name = name or f"sentimon-{profile}"
    if if_missing and artifact.versions(s.models_dir / name):
        _log(f"{name} exists ({s.models_dir / name}); nothing to do")
        return
    try:
        init_path = str(artifact.resolve(init_from, s.models_dir).path) if init_from else None
        cfg = make_profile(profile, epochs=epochs, lr=lr, head_lr=head_lr, max_length=max_length, seed=seed,
                           backbone=backbone or s.backbone, init_from=init_path)
    except (ValueError, FileNotFoundError) as exc:
        _fail(str(exc))
    train_sets, valid_sets = _sets("train"), _sets("valid")
    out_dir = artifact.next_version_dir(s.models_dir, name)
    run_training(cfg, train_sets, valid_sets, s.var_dir / "runs" / name, out_dir, threads=s.threads, log=_log)
    if evaluate:
        evaluate_artifact(out_dir, train_sets, valid_sets, s.eval_dir, log=_log)
        _print_metrics(json.loads((out_dir / "metrics.json").read_text()))
    console.print(f"[green]model written to {out_dir}[/green]")


@app.command()
def tune(
    trials: Annotated[int, typer.Option(help="trials to run (adds to an existing study)")] = 10,
    study: Annotated[str, typer.Option(help="study name under var/tune/")] = "minilm-mt",
    subset_sentiment: Annotated[int, typer.Option(help="sentiment training rows per trial")] = 1000,
    subset_topic: Annotated[int, typer.Option(help="topic training rows per trial")] = 1500,
    compare_multitask: Annotated[
        bool, typer.Option(help="instead: train one multi-task model and one model per task with the full profile's settings")
    ] = False,
) -> None:
    """Hyperparameter search (Optuna) on a subset of the training split.

    Searches learning rate, epochs, sequence length, dropout, class weighting and label smoothing;
    every trial is recorded in var/tune/STUDY/trials.json and the study resumes when run again.
    """
    from models.profiles import PROFILES, TrainConfig
    from models.tune import compare_multitask as run_compare
    from models.tune import tune as run_tune

    s = get_settings()
    subset = {"sentiment": subset_sentiment, "topic": subset_topic}
    if compare_multitask:
        base = PROFILES["full"].model_copy(update={"epochs": 2.0, "backbone": s.backbone, "seed": s.seed})
        run_compare(base, _sets("train"), s.var_dir / "tune" / study / "multitask.json", subset=subset,
                    threads=s.threads, log=_log)
        return
    result = run_tune(
        TrainConfig(profile="tune", backbone=s.backbone, seed=s.seed),
        _sets("train"),
        s.var_dir / "tune" / study,
        trials=trials,
        subset=subset,
        threads=s.threads,
        log=_log,
    )
    console.print(f"best {result.best_value:.4f}: {result.best_params}")


@app.command()
def evaluate(
    model: ModelOpt = None,
    data: Annotated[Optional[Path], typer.Option(help="folder with sent_valid.csv and/or topic_valid.csv")] = None,
    int8: Annotated[bool, typer.Option(help="evaluate the int8-quantized variant")] = False,
    baseline: Annotated[bool, typer.Option(help="train and show the TF-IDF baseline beside the model")] = True,
    as_json: Annotated[bool, typer.Option("--json", help="print the metrics as JSON on stdout")] = False,
    out: Annotated[Optional[Path], typer.Option(help="folder for confusion-matrix PNGs")] = None,
) -> None:
    """Accuracy, macro-F1, per-class P/R/F1, ECE and confusion matrices, model beside the baseline."""
    from models import artifact
    from models.classifier import Classifier
    from models.evaluate import evaluate_sets, fit_baselines, load_dir

    s = get_settings()
    try:
        ref = artifact.resolve(model or s.model, s.models_dir)
        sets = load_dir(data) if data else _sets("valid")
    except (FileNotFoundError, ValueError) as exc:
        _fail(str(exc))
    classifier = Classifier.load(ref.path, int8=int8)
    baselines = None
    if baseline:
        _log("fitting the TF-IDF baseline on the training split")
        train_sets = _sets("train")
        baselines = fit_baselines({t: train_sets[t] for t in sets})
    plot_dir = out or (s.var_dir / "eval" / f"{ref.name}-{classifier.version}")
    prefix = f"{Path(data).name}_" if data else ""
    result = {
        "model": {"name": ref.name, "version": classifier.version, "path": str(ref.path)},
        "data": str(data) if data else str(s.data_dir),
        "validation": evaluate_sets(classifier, sets, baselines, plot_dir=plot_dir, plot_prefix=prefix),
    }
    if as_json:
        print(json.dumps(result, indent=2))
    else:
        _print_metrics(result)
        console.print(f"confusion matrices in {plot_dir}")


def _print_metrics(result: dict) -> None:
    table = Table(title=f"{result['model']['name']} v{result['model']['version']}")
    for col in ("task", "who", "n", "accuracy", "macro-F1", "ECE"):
        table.add_column(col, justify="right" if col not in ("task", "who") else "left")
    for task, entry in result["validation"].items():
        for who in ("model", "baseline"):
            if who in entry:
                r = entry[who]
                table.add_row(task, who, str(r["n"]), f"{r['accuracy']:.4f}", f"{r['macro_f1']:.4f}", f"{r['ece']:.4f}")
    for set_name, entry in result.get("transfer", {}).items():
        for who, r in entry.items():
            table.add_row(f"transfer:{set_name}", who, str(r["n"]), f"{r['accuracy']:.4f}", f"{r['macro_f1']:.4f}", f"{r['ece']:.4f}")
    Console().print(table)


@app.command()
def predict(
    texts: Annotated[Optional[list[str]], typer.Argument(help="texts to score; none: one per line on stdin")] = None,
    model: ModelOpt = None,
    int8: Annotated[bool, typer.Option(help="use the int8-quantized variant")] = False,
    table: Annotated[bool, typer.Option(help="print a table instead of JSON lines")] = False,
) -> None:
    """Score texts and print one JSON object per line (sentiment, signed score, topic, model version)."""
    from dataclasses import asdict

    from models import artifact
    from models.classifier import Classifier, PredictionError

    s = get_settings()
    try:
        ref = artifact.resolve(model or s.model, s.models_dir)
    except FileNotFoundError as exc:
        _fail(str(exc))
    items = texts if texts else [line.rstrip("\n") for line in sys.stdin]
    classifier = Classifier.load(ref.path, int8=int8)
    results = classifier.predict(items)
    if not table:
        for result in results:
            print(json.dumps(asdict(result)))
        return
    out = Table(title=f"{classifier.name} v{classifier.version}")
    for col in ("text", "sentiment", "score", "topic"):
        out.add_column(col, justify="right" if col == "score" else "left", overflow="fold")
    for item, r in zip(items, results):
        text = str(item)[:70]
        if isinstance(r, PredictionError):
            out.add_row(text, f"[red]{r.error}[/red]", "", "")
        else:
            colour = {"positive": "green", "negative": "red"}.get(r.sentiment, "white")
            out.add_row(text, f"[{colour}]{r.sentiment}[/{colour}]", f"{r.score:+.2f}",
                        f"{r.topic} ({r.topic_probs[r.topic]:.0%})")
    Console().print(out)


# --- streaming ---------------------------------------------------------------------------------

db_app = typer.Typer(help="The ClickHouse store: migrations.", no_args_is_help=True)
schemas_app = typer.Typer(help="Event schemas: JSON Schema export.", no_args_is_help=True)
query_app = typer.Typer(help="Common questions answered from the store.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(schemas_app, name="schemas")
app.add_typer(query_app, name="query")
alerts_app = typer.Typer(help="Alert rules, silences, webhooks.", no_args_is_help=True)
silence_app = typer.Typer(help="Silences: mute alerts matching label matchers for a while.", no_args_is_help=True)
app.add_typer(alerts_app, name="alerts")
alerts_app.add_typer(silence_app, name="silence")
dashboards_app = typer.Typer(help="Grafana dashboards as code: build, check, push.", no_args_is_help=True)
app.add_typer(dashboards_app, name="dashboards")


@app.command()
def export(
    model: Annotated[Optional[str], typer.Option("--model", "-m", help="model name, version directory or 'auto'")] = None,
    out: Annotated[Optional[Path], typer.Option(help="model repository to write; default: triton.repository")] = None,
    instances: Annotated[Optional[int], typer.Option(help="model instances (default: triton.instances)")] = None,
    kind: Annotated[Optional[str], typer.Option(help="KIND_CPU or KIND_GPU (default: triton.kind)")] = None,
    backend: Annotated[str, typer.Option(help="'python' (served here) or 'onnx' (official container, GPUs)")] = "python",
) -> None:
    """Write a Triton model repository for a trained model version (python backend, or ONNX checked
    against torch)."""
    from models import artifact
    from models.export import Serving, export_onnx, export_python

    if backend not in ("python", "onnx"):
        _fail(f"unknown backend {backend!r}: use python or onnx")
    s = get_settings()
    t = s.triton
    try:
        ref = artifact.resolve(model or s.model, s.models_dir)
        serving = Serving.of(t, instances=instances, kind=kind)
        if backend == "onnx":
            version_dir, diff = export_onnx(ref, out or s.triton_repository, serving)
            _log(f"ONNX checked against torch with onnxruntime: largest difference {diff:.1e}")
        else:
            version_dir = export_python(ref, out or s.triton_repository, serving)
    except (FileNotFoundError, ValueError) as exc:
        _fail(str(exc))
    _log(f"exported {ref.name}/{ref.version} ({backend}, {serving.instances} x {serving.kind}) to {version_dir}")


@app.command()
def triton(
    repository: Annotated[Optional[Path], typer.Option(help="model repository; default: triton.repository")] = None,
) -> None:
    """Run the real tritonserver (from nvidia-pytriton, CPU) on the model repository until Ctrl-C."""
    from sentimon.local.triton import TritonServer, TritonUnavailable

    s = get_settings()
    t = s.triton
    server = TritonServer(repository or s.triton_repository, s.var_dir / "triton", t.host, t.grpc_port, t.http_port,
                          t.metrics_port)
    _log(f"starting tritonserver on {server.repository} (log: {server.log})")
    try:
        with server:
            _log(f"ready: gRPC {server.grpc_url}, HTTP {server.http_url}, metrics {server.metrics_url}")
            while server.alive():
                time.sleep(0.5)
            _fail(f"tritonserver exited with {server.process.returncode if server.process else '?'}:\n{server.tail()}")
    except TritonUnavailable as exc:
        _fail(str(exc))
    except KeyboardInterrupt:
        _log("stopped")


@app.command()
def broker(
    port: Annotated[int, typer.Option(help="port to listen on (0: a free one)")] = 9092,
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    storage: Annotated[str, typer.Option(help="'memory://tansu/' (lost on restart) or 's3://BUCKET/' (durable; "
                                              "AWS_ENDPOINT, AWS_ACCESS_KEY_ID, ... from the environment)")] = "memory://tansu/",
) -> None:
    """Run the local Kafka-protocol broker (tansu) until Ctrl-C; creates Sentimon's topics."""
    from sentimon.local.broker import Broker
    from streams.kafka.admin import ensure_topics

    if not storage.startswith(("memory://", "s3://")):
        _fail(f"storage {storage!r}: this tansu build has memory:// and s3:// only")
    s = get_settings()
    with Broker(port, host, storage=storage) as b:
        settings = s.model_copy(update={"kafka": s.kafka.model_copy(update={"bootstrap_servers": b.bootstrap})})
        created = ensure_topics(settings)
        _log(f"tansu listening on {b.bootstrap} (storage {storage}); topics created: {', '.join(created) or 'none'}")
        console.print(f"export SENTIMON_KAFKA__BOOTSTRAP_SERVERS={b.bootstrap}")
        try:
            while b.process and b.process.poll() is None:
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass


@app.command()
def worker(
    role: Annotated[str, typer.Argument(help="'pipeline' (ingest + scoring; scale out) or 'store' (sink; one per chDB path)")],
    web_port: Annotated[Optional[int], typer.Option(help="web port for /health, /metrics and the API")] = None,
    loglevel: Annotated[str, typer.Option(help="debug, info, warning")] = "info",
) -> None:
    """Run a stream worker until SIGTERM/Ctrl-C. Kafka and the store come from the settings."""

    if role not in ("pipeline", "store"):
        _fail(f"unknown role {role!r}: use 'pipeline' or 'store'")
    a = get_settings().alerts
    _run_worker(role, web_port, loglevel, check_alerts=role == "store" and a.enabled and a.run_in == "store")


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


@app.command()
def topics() -> None:
    """Create Sentimon's topics (with the configured prefix) where missing."""
    from streams.kafka.admin import ensure_topics

    try:
        created = ensure_topics(get_settings())
    except ConnectionError as exc:
        _fail(str(exc))
    print("\n".join(created) if created else "all topics exist")


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


@app.command()
def feed(
    files: Annotated[Optional[list[Path]], typer.Argument(help="JSONL, CSV or Parquet files of news items / social posts")] = None,
    kind: Annotated[Optional[str], typer.Option(help="'news' or 'social'; default: guessed per item")] = None,
    synthetic: Annotated[int, typer.Option(help="publish this many synthetic items instead of files")] = 0,
    rate: Annotated[Optional[float], typer.Option(help="items per second; default as fast as possible")] = None,
    event: Annotated[Optional[list[str]], typer.Option(help="inject into the synthetic feed, e.g. negative:TSLA@30s/40s")] = None,
    seed: Annotated[int, typer.Option(help="seed of the synthetic feed")] = 7,
    per_message: Annotated[int, typer.Option(help="items per Kafka message, as JSON Lines (bulk feeds); 1: one each")] = 1,
) -> None:
    """Publish items to the raw news and social topics."""
    from datetime import datetime, timedelta, timezone

    import orjson
    from tqdm import tqdm

    from streams.feed import publish, read_file
    from streams.synthetic import Injected, SyntheticFeed

    if kind not in (None, "news", "social"):
        _fail(f"unknown kind {kind!r}: use 'news' or 'social'")
    if per_message < 1:
        _fail("--per-message must be at least 1")
    if synthetic:
        try:
            events = tuple(Injected.parse(e) for e in event or ())
        except ValueError as exc:
            _fail(str(exc))
        # paced: feed time runs with the clock; as fast as possible: the feed's time ends now (ingest refuses
        # event times beyond stream.max_future_s)
        start = datetime.now(timezone.utc) - (timedelta(0) if rate else timedelta(seconds=synthetic / 100.0))
        generator = SyntheticFeed(seed=seed, events=events, start=start)
        items = ((k, orjson.dumps(item)) for _, k, item in generator.items(synthetic, rate or 100.0))
        total = synthetic
    elif files:
        missing = [str(f) for f in files if not f.is_file()]
        if missing:
            _fail(f"no such file: {', '.join(missing)}")
        items = (pair for f in files for pair in read_file(f, kind))  # type: ignore[arg-type]
        total = None
    else:
        _fail("give files to publish or --synthetic N")
    with tqdm(total=total, unit="item", desc="publishing", disable=None) as bar:
        try:
            n = publish(get_settings(), items, rate, per_message=per_message, on_progress=bar.update)
        except Exception as exc:  # broker unreachable, delivery failures: say what and where
            _fail(f"{exc} (Kafka at {get_settings().kafka.bootstrap_servers}; start one with `sentimon broker`)")
    _log(f"published {n} items" + (f" (up to {per_message} per message)" if per_message > 1 else ""))


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


@app.command()
def replay(
    files: Annotated[Optional[list[Path]], typer.Argument(help="JSONL/CSV files of raw items (the `sentimon feed` formats)")] = None,
    source: Annotated[str, typer.Option(help="'files' (the FILES given), 'archive' (the store's raw archive) or 'kafka' "
                                             "(raw topics, by the log's time)")] = "files",
    topic: Annotated[Optional[list[str]], typer.Option(help="--source kafka: a topic to read (repeat; default: the raw "
                                                             "news and social topics)")] = None,
    from_: Annotated[Optional[str], typer.Option("--from", help="from, ISO 8601 UTC: event time (files, archive) or log "
                                                              "time (kafka: offsets_for_times)")] = None,
    to: Annotated[Optional[str], typer.Option(help="to (excluded), ISO 8601 UTC; kafka: default the end of the log now")] = None,
    speed: Annotated[str, typer.Option(help="'max' (as fast as possible) or N: N x event time (600: 10 min a second)")] = "max",
    workers: Annotated[int, typer.Option(min=1, help="pipeline workers for the run")] = 1,
    run_id: Annotated[Optional[str], typer.Option(help="the run's id (default: r<date>_<time>)")] = None,
    kind: Annotated[Optional[str], typer.Option(help="news or social for every item of FILES or --topic (default: guessed)")] = None,
) -> None:
    """Replay history through the same pipeline into a run's own namespace (topics replay-<run>.*, its own
    store, alerts to the log only, never to a desk); prints where the run's scores and alerts are."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from sentimon import replay as replays
    from streams.store import StoreUnavailable

    s = get_settings()
    try:
        rid = replays.check_run_id(run_id or replays.new_run_id())
        pace = None if speed == "max" else float(speed)
        if pace is not None and pace <= 0:
            raise ValueError("speed must be 'max' or a positive number")
        start = _iso_time(from_) if from_ else None
        end = _iso_time(to) if to else None
    except ValueError as exc:
        _fail(str(exc))
    if source == "files":
        if not files:
            _fail("give the files to replay, or --source archive")
        missing = [str(f) for f in files if not f.is_file()]
        if missing:
            _fail(f"no such file: {', '.join(missing)}")
        items, untimed = replays.in_order(replays.from_files(files, kind), start, end)  # type: ignore[arg-type]
    elif source == "archive":
        from streams.store import Store

        try:
            store = Store.open(s)
        except StoreUnavailable as exc:
            _fail(f"{exc}: the archive is in the store a worker owns; stop it (chDB) or use a ClickHouse server")
        try:
            items, untimed = replays.in_order(replays.from_archive(store, start, end))
        finally:
            store.close()
    elif source == "kafka":
        names = {s.topics.name("raw_news"): "news", s.topics.name("raw_social"): "social"}
        topics = {t: kind or names.get(t) for t in topic} if topic else names
        try:
            items, untimed = replays.in_order(replays.from_topic(s.kafka, topics, start, end))  # type: ignore[arg-type]
        except RuntimeError as exc:
            _fail(f"{exc}: check --topic and kafka.bootstrap_servers")
    else:
        _fail(f"unknown source {source!r}: use 'files', 'archive' or 'kafka'")
    if not items:
        _fail("nothing to replay in that range")
    run_dir = s.var_dir / "replays" / rid
    _log(f"replay {rid}: {len(items)} items, {items[0].event_time:%Y-%m-%d %H:%M:%S} to "
         f"{items[-1].event_time:%Y-%m-%d %H:%M:%S} UTC, speed {speed}" + (f", {untimed} without event time left out" if untimed else ""))
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[rate]}"),
                  TimeElapsedColumn(), console=console) as progress:
        task = progress.add_task("publishing", total=len(items), rate="")
        began = time.monotonic()

        def advance(n: int, at) -> None:
            done = progress.tasks[task].completed + n
            progress.update(task, advance=n, description=f"event time {at:%Y-%m-%d %H:%M:%S}",
                            rate=f"{done / max(time.monotonic() - began, 1e-6):,.0f} items/s")

        try:
            row = replays.run(s, items, rid, run_dir, pace, workers, source, untimed, on_progress=advance)
        except (RuntimeError, TimeoutError, ConnectionError) as exc:
            _fail(str(exc))
    counts = row["counts"]
    print(json.dumps({"run_id": rid, "store": redact(row["store"]), "database": row["database"], "topics_prefix": row["topics_prefix"],
                      "items": row["items"], "documents": counts["documents"], "alerts": dict(row["alerts"]),
                      "models": row["models"], "rules_hash": row["rules_hash"]}, indent=2, default=str))


@app.command()
def backtest(
    runs: Annotated[list[str], typer.Argument(help="replay run ids to compare (e.g. one per rule set)")],
    events: Annotated[Optional[Path], typer.Option(help="labelled events: CSV ticker,time,kind")] = None,
    prices: Annotated[Optional[Path], typer.Option(help="prices: CSV ticker,time,price")] = None,
    horizon: Annotated[str, typer.Option(help="how long after an alert counts, e.g. 30m, 2h")] = "30m",
    alertname: Annotated[Optional[str], typer.Option(help="only this rule's alerts")] = None,
    out: Annotated[Optional[Path], typer.Option(help="output folder (default: var/backtests/<time>)")] = None,
) -> None:
    """Evaluate replay runs' alerts against outcomes: precision, recall and lead time against labelled events;
    abnormal return and volatility after alerts against random times (an event study) from prices. Writes
    backtest.json and backtest.html, one column per run."""
    from datetime import datetime, timezone

    from alerts import backtest_report as report
    from alerts.config import parse_duration
    from sentimon import replay as replays
    from streams.store import Store, StoreUnavailable

    if events is None and prices is None:
        _fail("give --events CSV (ticker,time,kind) and/or --prices CSV (ticker,time,price)")
    for path in (events, prices):
        if path is not None and not path.is_file():
            _fail(f"no such file: {path}")
    s = get_settings()
    signals = {}
    for rid in runs:
        try:
            rs = replays.run_settings(s, replays.check_run_id(rid), s.var_dir / "replays" / rid)
            store = Store(rs.store_dsn, rs.store.database)
        except (ValueError, StoreUnavailable) as exc:
            _fail(f"run {rid}: {exc}")
        try:
            recorded = store.query("SELECT count() FROM {db}.runs")[0][0]
            signals[rid] = report.run_alerts(store, alertname)
        except Exception as exc:  # a missing database or table: say which run
            recorded, problem = 0, exc
        else:
            problem = None
        finally:
            store.close()
        if not recorded:
            _fail(f"run {rid}: no such replay run in {redact(rs.store_dsn)} ({rs.store.database})" + (f": {problem}" if problem else ""))
    try:
        result = report.evaluate(signals, report.read_events(events) if events else None,
                                 report.read_prices(prices) if prices else None, parse_duration(horizon))
    except (KeyError, ValueError) as exc:
        _fail(f"bad CSV: {exc}")
    folder = out or s.var_dir / "backtests" / datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
    for path in report.write(result, folder):
        print(path)


def _iso_time(text: str):
    from schemas.base import parse_utc

    try:
        return parse_utc(text)
    except ValueError:
        raise ValueError(f"{text!r} is not an ISO 8601 time (e.g. 2026-11-29T10:00:00Z)") from None


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


def _alerts_config(path: Optional[Path]):
    from alerts.config import ConfigError, load

    try:
        return load(path or get_settings().alerts.rules_file or None)
    except ConfigError as exc:
        _fail(str(exc))


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


@app.command()
def demo(
    duration: Annotated[float, typer.Option(help="seconds to stream before the final summary")] = 120.0,
    rate: Annotated[float, typer.Option(help="synthetic items per second")] = 40.0,
    event: Annotated[str, typer.Option(help="injected event, KIND:TARGET (the timing is set from --duration)")] = "negative:TSLA",
    speed: Annotated[float, typer.Option(help="event time runs this many times faster than the clock")] = 15.0,
    scorer: Annotated[str, typer.Option(help="'triton' (the local Triton server), 'local' (the model in the worker's child processes) or "
                                             "'noop' (no model)")] = "triton",
) -> None:
    """The main job on the embedded default: broker, workers, store, a synthetic feed with an injected
    event, and a live summary; ends by itself after DURATION seconds with the final summary."""
    from sentimon.demo import run_demo

    if scorer not in ("triton", "local", "noop"):
        _fail(f"unknown scorer {scorer!r}: use triton, local or noop")
    s = get_settings()
    if scorer != "noop":
        from models import artifact

        try:
            artifact.resolve(s.model, s.models_dir)
        except FileNotFoundError as exc:
            _fail(f"{exc} (or run with --scorer noop)")
    from sentimon.local.triton import TritonUnavailable

    try:
        run_demo(s, duration, rate, event, speed, scorer=scorer, console=Console())
    except TritonUnavailable as exc:
        _fail(f"{exc}\n(run the demo with --scorer local to score without Triton)")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
