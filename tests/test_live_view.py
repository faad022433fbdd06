"""The built-in live view, the HTML report and the read-only JSON API, rendered by a real headless
Chromium (Debian's chromium package; `make test` installs it when missing) over a real store (chDB)
served by a real store worker."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import urllib.error
import urllib.request
from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from alerts.evaluate import Evaluator
from sentimon.cli import app
from sentimon.settings import Settings
from sentimon.cluster import LocalCluster
from streams.store import Store
from test_alerts_store import RULES, T0, history

SCREENSHOTS = Path(__file__).resolve().parents[1] / "var" / "screenshots"
FROM, TO = T0.isoformat().replace("+00:00", "Z"), (T0 + timedelta(minutes=70)).isoformat().replace("+00:00", "Z")


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        if os.environ.get("SENTIMON_SKIP_BROWSER") == "1":
            pytest.skip("SENTIMON_SKIP_BROWSER=1: no browser here")
        pytest.fail("headless Chromium is needed: `apt-get install chromium` (make test does it as root), "
                    "or set SENTIMON_SKIP_BROWSER=1 to skip the browser tests")
    return found


def browse(url: str, tmp_path: Path, screenshot: Path | None = None, wait_ms: int = 8000) -> str:
    """The page's DOM after its scripts ran (and the charts were drawn), optionally a screenshot."""
    flags = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars",
             f"--user-data-dir={tmp_path / 'chromium'}", "--window-size=1400,1500", f"--virtual-time-budget={wait_ms}"]
    dom = subprocess.run([*flags, "--dump-dom", url], capture_output=True, text=True, timeout=120).stdout
    if screenshot is not None:
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([*flags, f"--screenshot={screenshot}", url], capture_output=True, timeout=120, check=True)
        assert screenshot.stat().st_size > 20_000  # a picture, not a blank page
    return dom


def rendered_points(dom: str) -> int:
    body = re.search(r"<body[^>]*>", dom)
    assert body, dom[:500]
    assert 'data-rendered="1"' in body.group(0), f"the page did not render: {body.group(0)}"
    points = int(re.search(r'data-points="(\d+)"', body.group(0)).group(1))
    assert dom.count('class="main-svg"') >= 3  # plotly drew the charts
    return points


@pytest.fixture(scope="module")
def store_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("live") / "store"
    s = Store(f"chdb://{path}")
    s.migrate()
    s.write(history())
    evaluator = Evaluator(RULES, s)
    evaluator.commit(evaluator.advance(T0 + timedelta(minutes=70)))
    s.close()
    return path


def test_the_report_is_self_contained_and_renders_with_its_data(store_path, tmp_path, monkeypatch):
    monkeypatch.setenv("SENTIMON_STORE__DSN", f"chdb://{store_path}")
    out = tmp_path / "report"
    result = CliRunner().invoke(app, ["report", "--from", FROM, "--to", TO, "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert {p.name for p in out.iterdir()} == {"report.html", "market.png", "sectors.png", "entity.png"}
    html = (out / "report.html").read_text()
    assert "<script src=" not in html  # plotly.js inlined: opens offline
    dom = browse((out / "report.html").as_uri(), tmp_path, SCREENSHOTS / "report.png")
    # 70 market minutes, 70 sector cells, 70 TSLA minutes (the top mover: the burst)
    assert rendered_points(dom) == 210
    assert "negative_burst" in dom and "TSLA" in dom and "story TSLA-" in dom


def test_a_bad_range_is_refused_with_the_reason(store_path, monkeypatch):
    monkeypatch.setenv("SENTIMON_STORE__DSN", f"chdb://{store_path}")
    result = CliRunner().invoke(app, ["report", "--from", "yesterday"])
    assert result.exit_code == 2 and "ISO 8601" in result.output


@pytest.mark.slow
def test_the_live_page_and_the_api_served_by_the_store_worker(broker, store_path, tmp_path):
    token = "live-view-token-0123456789"
    settings = Settings(kafka={"bootstrap_servers": broker.bootstrap}, topics={"prefix": "live."},
                        store={"dsn": f"chdb://{store_path}"}, alerts={"enabled": False}, worker={"token": token})
    with LocalCluster(settings, tmp_path / "run", start_broker=False) as cluster:
        store = cluster.start_worker("store")

        def get(path: str, bearer: str | None = token):
            headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
            with urllib.request.urlopen(urllib.request.Request(store.url + path, headers=headers), timeout=30) as r:
                return json.loads(r.read())

        # with a token, everything but /health and /metrics needs it
        assert get("/health", bearer=None)["ready"]
        for path, bearer in (("/api/v1/movers", None), ("/api/v1/movers", "wrong"), ("/live/", None),
                             ("/live/?token=wrong", None), ("/api/v1/openapi.json", token[:-1])):
            with pytest.raises(urllib.error.HTTPError) as refused:
                get(path, bearer)
            assert refused.value.code == 401 and refused.value.headers["WWW-Authenticate"].startswith("Bearer"), path

        doc = get("/api/v1/openapi.json")
        assert doc["openapi"].startswith("3.1") and set(doc["paths"]) >= {
            "/api/v1/entities/{entity}/sentiment", "/api/v1/movers", "/api/v1/alerts", "/api/v1/snapshot"}
        series = get(f"/api/v1/entities/TSLA/sentiment?from={FROM}&to={TO}&bucket=10")
        assert len(series) == 7 and sum(p["stories"] for p in series) > 100
        assert min(p["mean_score"] for p in series) < -0.2  # the burst's bucket
        movers = get(f"/api/v1/movers?to={TO}&window=15&baseline=60")
        assert {m["entity"] for m in movers} == {"AAPL", "MSFT", "TSLA"}
        fired = get(f"/api/v1/alerts?from={FROM}&to={TO}")
        assert [(a["status"], a["entity"]) for a in fired] == [("resolved", "TSLA"), ("firing", "TSLA")]
        with pytest.raises(urllib.error.HTTPError) as err:
            get("/api/v1/alerts?from=soon")
        assert err.value.code == 400 and "ISO 8601" in err.value.read().decode()
        # the page with no range: the last two hours of data, refreshed live from the API; the browser shows the
        # token once, gets a cookie and is sent to /live/, and the page's own API calls carry the cookie
        dom = browse(store.url + f"/live/?token={token}", tmp_path, SCREENSHOTS / "live.png")
        assert rendered_points(dom) > 100 and "live, updated" in dom
