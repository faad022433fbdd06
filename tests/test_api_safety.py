"""The store worker's web API on a live worker (tansu, Faust, chDB): state changes only as JSON from its own
origin (no cross-site or text/plain writes, even on loopback without a token), silences validated with
server-assigned ids, every bad parameter a 4xx with a reason, and schemathesis (the API fuzzer) over the served
OpenAPI document finding no 5xx and no response off its schema."""

from __future__ import annotations

import json
import subprocess
import urllib.error
import urllib.request
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from sentimon.settings import Settings
from sentimon.cluster import LocalCluster

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]
RULES = """
receivers:
  - name: log
    log: true
route: {receiver: log}
rules:
  - name: negative_burst
    scope: {kind: ticker}
    detector: {type: negative_share, window: 5m, threshold: 0.5}
"""


@pytest.fixture(scope="module")
def worker(broker, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("api")
    (tmp / "rules.yaml").write_text(RULES)
    settings = Settings(kafka={"bootstrap_servers": broker.bootstrap}, topics={"prefix": "api."},
                        store={"dsn": f"chdb://{tmp / 'store'}"}, alerts={"rules_file": str(tmp / "rules.yaml")})
    with LocalCluster(settings, tmp / "run", start_broker=False) as cluster:
        yield cluster.start_worker("store")


def call(worker, method: str, path: str, body: bytes | None = None, headers: dict | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(worker.url + path, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def silence(**changes) -> bytes:
    now = datetime.now(timezone.utc)
    body = {"matchers": ['entity="TSLA"'], "starts_at": now.isoformat(), "ends_at": (now + timedelta(hours=1)).isoformat(),
            "created_by": "analyst", "comment": "earnings call", **changes}
    return json.dumps({k: v for k, v in body.items() if v is not None}).encode()


JSON = {"Content-Type": "application/json"}


def test_state_changes_only_as_json_from_the_workers_own_origin(worker):
    cases = {
        "text/plain from another site": (silence(), {"Content-Type": "text/plain", "Origin": "http://evil.example"}),
        "JSON from another site": (silence(), {**JSON, "Origin": "http://evil.example"}),
        "JSON from another port of this host": (silence(), {**JSON, "Origin": "http://127.0.0.1:1"}),
        "a browser's cross-site fetch": (silence(), {**JSON, "Sec-Fetch-Site": "cross-site"}),
        "a form post": (b"matchers=x", {"Content-Type": "application/x-www-form-urlencoded"}),
        "text/plain from nowhere": (silence(), {"Content-Type": "text/plain"}),
    }
    statuses = {name: call(worker, "POST", "/api/silences", body, headers)[0] for name, (body, headers) in cases.items()}
    assert statuses == {"text/plain from another site": 403, "JSON from another site": 403,
                        "JSON from another port of this host": 403, "a browser's cross-site fetch": 403,
                        "a form post": 415, "text/plain from nowhere": 415}
    assert call(worker, "DELETE", "/api/silences/abc", headers={"Origin": "http://evil.example"})[0] == 403
    assert call(worker, "GET", "/api/silences")[1] == []  # none of them created a silence
    status, made = call(worker, "POST", "/api/silences", silence(), {**JSON, "Origin": worker.url})
    assert status == 200 and len(made["id"]) == 12


def test_silences_are_validated_and_their_ids_assigned_by_the_worker(worker):
    now = datetime.now(timezone.utc)
    refused = {
        "a client-chosen id": silence(id="0123456789ab"),
        "ending before it starts": silence(ends_at=(now - timedelta(hours=1)).isoformat()),
        "lasting ten years": silence(ends_at=(now + timedelta(days=3650)).isoformat()),
        "no comment": silence(comment=None),
        "no matchers": silence(matchers=[]),
        "a bad regex": silence(matchers=['entity=~"("']),
        "not an object": b"[1, 2]",
        "not JSON": b"{",
    }
    for name, body in refused.items():
        status, answer = call(worker, "POST", "/api/silences", body, JSON)
        assert status == 400 and answer["error"], name
    ids = {call(worker, "POST", "/api/silences", silence(), JSON)[1]["id"] for _ in range(3)}
    assert len(ids) == 3


@pytest.mark.parametrize("path", [
    "/api/summary?window=x", "/api/summary?limit=-1", "/api/summary?baseline=99999999999999999999",
    "/api/v1/snapshot?from=0001-01-01T00:00:00Z", "/api/v1/snapshot?to=9999-12-31T23:59:59Z",
    "/api/v1/snapshot?from=2026-11-29T10:00:00Z&to=2026-11-29T09:00:00Z", "/api/v1/movers?window=0",
    "/api/v1/entities/TSLA/sentiment?bucket=abc", "/api/entity/TSLA/?minutes=-5", "/api/entity/TSLA/?bucket=0",
    "/api/alerts?limit=abc", "/api/silences?expired=maybe", "/debug/objects?limit=x",
])
def test_a_bad_read_parameter_is_a_400_with_the_reason(worker, path):
    status, answer = call(worker, "GET", path)
    assert status == 400 and answer["error"], (path, status, answer)


def test_schemathesis_finds_no_server_error_and_no_response_off_the_schema(worker, tmp_path):
    fuzzer = ROOT / ".venv-fuzz" / "bin" / "schemathesis"
    assert fuzzer.is_file(), "schemathesis is missing: `make api-fuzzer` installs it (make test does)"
    run = subprocess.run(
        [str(fuzzer), "run", f"{worker.url}/api/v1/openapi.json",
         "--checks", "not_a_server_error,response_schema_conformance,status_code_conformance,content_type_conformance",
         "--max-examples", "25", "--seed", "7", "--request-timeout", "30", "--no-color",
         "--report", "junit", "--report-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    assert "passed" in run.stdout.lower()
