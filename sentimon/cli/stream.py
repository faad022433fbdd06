"""Running the stream: the settings, the local broker and Triton, the workers, topics, feeds and the demo."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from sentimon.cli.common import _fail, _log, _run_worker, app, console
from sentimon.settings import get_settings


@app.command()
def config() -> None:
    """Print the effective settings (after file and environment) as JSON."""
    s = get_settings()
    print(json.dumps({**s.shown(), "models_dir": str(s.models_dir)}, indent=2))


@app.command()
def triton(
    repository: Annotated[Optional[Path], typer.Option(help="model repository; default: triton.repository")] = None,
) -> None:
    """Run the real tritonserver (from nvidia-pytriton, CPU) on the model repository until Ctrl-C."""
    from sentimon.local.triton import TritonServer, TritonUnavailable

    s = get_settings()
    t = s.triton
    server = TritonServer(repository or s.triton_repository, s.var_dir / "triton", t.host, t.grpc_port, t.http_port,
                          t.metrics_port, cpus=t.cpus)
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


@app.command()
def topics() -> None:
    """Create Sentimon's topics (with the configured prefix) where missing."""
    from streams.kafka.admin import ensure_topics

    try:
        created = ensure_topics(get_settings())
    except ConnectionError as exc:
        _fail(str(exc))
    print("\n".join(created) if created else "all topics exist")


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
