"""Shared fixtures. The tiny model is trained once per session on real data with the real backbone."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest

from models.dataset import load
from models.labels import TASKS
from models.profiles import TrainConfig
from sentimon.settings import Settings

TINY = TrainConfig(
    profile="tiny",
    max_length=48,
    epochs=1.0,
    lr=2e-4,
    train_limit={"sentiment": 1600, "topic": 1200},  # 800 sentiment rows left synthetic bursts mostly "positive"
    eval_limit=None,
    checkpoint_every=1000,
)


@pytest.fixture(scope="session")
def settings() -> Settings:
    return Settings()


@pytest.fixture(scope="session")
def data_dir(settings: Settings) -> Path:
    if not settings.data_dir.is_dir():
        pytest.fail(f"training data missing at {settings.data_dir}: set SENTIMON_DATA_DIR")
    return settings.data_dir


@pytest.fixture(scope="session")
def train_sets(data_dir: Path):
    return {t: load(t, "train", data_dir) for t in TASKS}


@pytest.fixture(scope="session")
def valid_small(data_dir: Path):
    return {t: load(t, "valid", data_dir).sample(400, seed=1) for t in TASKS}


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory, train_sets, valid_small):
    """(artifact dir, in-memory model) of a ~1 min multi-task training run."""
    from models.train import train

    root = tmp_path_factory.mktemp("tiny")
    out = root / "models" / "sentimon-tiny" / "1"
    model, _ = train(TINY, train_sets, valid_small, root / "run", out, progress=False, log=lambda _: None)
    return out, model


@pytest.fixture(autouse=True)
def fresh_settings():
    """Commands read settings through a cache; each test starts from its own environment."""
    from sentimon.settings import get_settings

    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def scored(doc_id: str, minute: int = 0, score: float = 0.0, tickers=("AAPL",), sectors=("Information Technology",),
           duplicate_of: str = "", topic: str = "Earnings", second: int = 0):
    """A ScoredDocument for store tests: event time 2026-11-29 10:<minute>:<second> UTC, given signed score."""
    from datetime import datetime, timezone

    from schemas import Document, Score, ScoredDocument

    t = datetime(2026, 11, 29, 10, 0, second, tzinfo=timezone.utc).replace(minute=minute)
    p_pos, p_neg = max(score, 0.0), max(-score, 0.0)
    sentiment = "positive" if score > 0.2 else "negative" if score < -0.2 else "neutral"
    doc = Document(doc_id=doc_id, kind="news", source="test", source_id=doc_id, event_time=t, ingested_at=t,
                   title=f"story {doc_id}", text=f"story {doc_id}", tickers=list(tickers), sectors=list(sectors),
                   duplicate_of=duplicate_of)
    s = Score(doc_id=doc_id, model="m", model_version="1", scored_at=t, sentiment=sentiment, p_negative=p_neg,
              p_neutral=1 - p_pos - p_neg, p_positive=p_pos, score=score, topic=topic, topic_confidence=0.9)
    return ScoredDocument(document=doc, score=s)


BURST_RULES = """
rules:
  - name: negative_burst
    scope: {kind: ticker}
    detector:
      type: all
      detectors:
        - {type: sentiment_shift, window: 3m, baseline: 30m, threshold: 3, min_docs: 8}
        - {type: volume_spike, window: 3m, baseline: 30m, threshold: 4, min_ratio: 3, min_docs: 8}
    for: 1m
"""
"""The shape of the shipped negative_burst rule, for alert tests (severity and annotations left default)."""


def wait_until(condition, timeout_s: float, what: str, workers=()) -> None:
    """Poll ``condition`` until true; fail with the workers' last log lines (or if one died)."""
    import time

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        for w in workers:
            assert w.alive(), f"{w.name} died:\n{w.tail()}"
        time.sleep(0.5)
    logs = "\n".join(f"--- {w.name}\n{_last_events(w.tail(400))}" for w in workers)
    raise AssertionError(f"timed out waiting for {what}\n{logs}")


def _last_events(log: str, lines: int = 15, width: int = 400) -> str:
    """A worker's last log lines that say something (the periodic counters only once, the latest): what a
    failed wait shows, short enough that every worker's part survives a truncated CI log."""
    rows = log.splitlines()
    counters = [r for r in rows if '"msg": "counters"' in r]
    said = [r for r in rows if '"msg": "counters"' not in r][-lines:]
    return "\n".join([r[:width] for r in said] + counters[-1:])


def migrated_store(path, database: str = "sentimon_test"):
    """A real chDB store at ``path`` with every migration applied (close it when done)."""
    from streams.store import Store

    store = Store(f"chdb://{path}", database)
    store.migrate()
    return store


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    """A tansu broker for one test module."""
    from sentimon.local.broker import Broker

    with Broker(log=tmp_path_factory.mktemp("broker") / "broker.log") as b:
        yield b


class LoopbackServer:
    """A real aiohttp endpoint on loopback in its own thread, for test doubles: ``handler`` answers POST
    ``path``; ``routes`` (method, path, handler) add more."""

    def __init__(self, path: str | None = None, handler=None, routes=()):
        import asyncio
        import threading

        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        routes = [*routes, *([("POST", path, handler)] if path else [])]
        threading.Thread(target=self._run, args=(routes,), daemon=True).start()
        self._ready.wait(5)

    def _run(self, routes):
        import asyncio

        from aiohttp import web

        asyncio.set_event_loop(self._loop)
        app = web.Application()
        for method, path, handler in routes:
            app.router.add_route(method, path, handler)
        runner = web.AppRunner(app, access_log=None)
        self._loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", 0)
        self._loop.run_until_complete(site.start())
        self.base = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"
        self._ready.set()
        self._loop.run_forever()

    def close(self):
        self._loop.call_soon_threadsafe(self._loop.stop)


RELIABILITY = Path(__file__).resolve().parents[1] / "var" / "reliability.json"


def record_figure(name: str, **figures) -> None:
    """Add a fault or load test's measured figures to var/reliability.json (the README's reliability table
    quotes a run of it), and print them."""
    import json
    from datetime import datetime, timezone

    RELIABILITY.parent.mkdir(parents=True, exist_ok=True)
    data = json.loads(RELIABILITY.read_text()) if RELIABILITY.is_file() else {}
    data[name] = {**figures, "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    RELIABILITY.write_text(json.dumps(data, indent=2))
    print(f"{name}: {figures}")
