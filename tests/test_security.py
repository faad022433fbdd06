"""Security: Kafka credentials reach every client, secrets come only from the environment or secret files
and never show up in logs, output or the store, the web server is loopback-only or token-protected, and
personal data is scrubbed before anything is stored (the archive included), on real parts."""

from __future__ import annotations

import ast
import asyncio
import json
import os
import re
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import wait_until
from sentimon.settings import Settings, redact, secret_fields
from sentimon.web import access
from streams.ingest import Ingested, Ingestor, RawRecord
from streams.privacy import EMAIL, PHONE, scrub_raw

ROOT = Path(__file__).resolve().parents[1]
KEY = b"test-privacy-key"

# --- every Kafka client is built from the settings (SASL/TLS pass through) --------------------------------


def _calls(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            f = node.func
            yield (f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""), node


def test_every_kafka_client_is_built_from_the_settings():
    """Each confluent-kafka client gets confluent_config(...), each Faust app **faust_broker(...): there the
    security protocol, SASL and TLS settings are applied (tests/test_stream_support.py checks their values)."""
    clients, checked = {"Consumer", "Producer", "_Producer", "AdminClient"}, []
    for path in [*ROOT.glob("streams/**/*.py"), *ROOT.glob("sentimon/**/*.py"), *ROOT.glob("alerts/**/*.py"),
                 *ROOT.glob("bench/**/*.py")]:
        for name, call in _calls(ast.parse(path.read_text())):
            where = f"{path.relative_to(ROOT)}:{call.lineno}"
            if name in clients:
                inner = [n for n, _ in _calls(call)]
                assert "confluent_config" in inner, f"{where}: {name}(...) not built with confluent_config"
                checked.append(where)
            elif name == "App" and isinstance(call.func, ast.Attribute) and getattr(call.func.value, "id", "") == "faust":
                spread = [k.value for k in call.keywords if k.arg is None]
                assert any(isinstance(v, ast.Call) and getattr(v.func, "id", "") == "faust_broker" for v in spread), \
                    f"{where}: faust.App(...) without **faust_broker(settings.kafka)"
                checked.append(where)
    assert len(checked) >= 5, checked  # producer, two consumers, admin, the workers' app, the Faust floor


# --- secrets: environment or secret files, never a config file ------------------------------------------


def test_secrets_come_from_secret_files_and_a_config_file_holding_one_is_refused(tmp_path, monkeypatch):
    for name in list(os.environ):
        if name.startswith("SENTIMON_"):
            monkeypatch.delenv(name)
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "sentimon_kafka__sasl_password").write_text("from-a-file\n")
    (secrets / "sentimon_worker__token").write_text("tok")
    monkeypatch.setenv("SENTIMON_SECRETS_DIR", str(secrets))
    s = Settings()
    assert s.kafka.sasl_password.get_secret_value() == "from-a-file" and s.worker.token.get_secret_value() == "tok"
    monkeypatch.setenv("SENTIMON_WORKER__TOKEN", "env-wins")
    assert Settings().worker.token.get_secret_value() == "env-wins"
    assert {("kafka", "sasl_password"), ("privacy", "key"), ("worker", "token"), ("store", "password")} <= set(secret_fields(Settings))
    config = tmp_path / "sentimon.toml"
    for text, named in (('[privacy]\nkey = "k"\n', "privacy.key"), ('[store]\ndsn = "https://u:pw@h:8443"\n', "store.password"),
                        ('[grafana]\ntoken = "t"\n', "grafana.token")):
        config.write_text(text)
        monkeypatch.setenv("SENTIMON_CONFIG", str(config))
        with pytest.raises(ValueError, match=re.escape(named)):
            Settings()
    config.write_text('[store]\ndsn = "https://u@h:8443"\n')
    monkeypatch.setenv("SENTIMON_STORE__PASSWORD", "p@ss")
    s = Settings()
    assert s.store_dsn == "https://u:p%40ss@h:8443" and redact(s.store_dsn) == "https://u:***@h:8443"
    assert "p@ss" not in json.dumps(s.shown()) and "p%40ss" not in json.dumps(s.shown())


# --- the web server: loopback by default, a token when exposed ----------------------------------------------


def test_the_web_server_is_loopback_only_unless_it_has_a_token():
    assert Settings().worker.host == "127.0.0.1"
    for host in ("127.0.0.1", "::1", "localhost", "127.0.0.2"):
        access.check_exposure(host, "")
    for host in ("0.0.0.0", "::", "10.1.2.3", "sentimon.internal"):
        with pytest.raises(access.Exposed, match="SENTIMON_WORKER__TOKEN"):
            access.check_exposure(host, "")
        access.check_exposure(host, "a-token")


def test_a_worker_refuses_to_listen_beyond_loopback_without_a_token():
    env = {**os.environ, "SENTIMON_WORKER__HOST": "0.0.0.0", "SENTIMON_KAFKA__BOOTSTRAP_SERVERS": "127.0.0.1:1"}
    env.pop("SENTIMON_WORKER__TOKEN", None)
    run = subprocess.run([sys.executable, "-m", "sentimon.cli", "worker", "store"], capture_output=True, text=True,
                         timeout=60, env=env)
    assert run.returncode == 2 and "SENTIMON_WORKER__TOKEN" in " ".join(run.stderr.split()), run.stdout + run.stderr


def test_the_token_guards_everything_but_health_and_metrics():
    """The middleware on a real aiohttp server (the worker's own web server is tested in test_live_view)."""
    from aiohttp import web
    from aiohttp.test_utils import TestClient, TestServer

    async def scenario():
        app = web.Application(middlewares=[access.middleware("s3cret")])
        for path in ("/health", "/metrics", "/live/", "/api/v1/movers"):
            app.router.add_get(path, lambda r: web.json_response({"ok": r.path}))
        async with TestClient(TestServer(app)) as client:
            out = {}
            for path, headers in (("/health", {}), ("/metrics", {}), ("/api/v1/movers", {}),
                                  ("/api/v1/movers", {"Authorization": "Bearer nope"}),
                                  ("/api/v1/movers", {"Authorization": "Bearer s3cret"})):
                r = await client.get(path, headers=headers)
                out[(path, headers.get("Authorization"))] = r.status
            r = await client.get("/live/?token=s3cret", allow_redirects=False)
            cookie = r.headers.get("Set-Cookie", "")
            out["login"] = (r.status, r.headers.get("Location"), "HttpOnly" in cookie, "SameSite=Strict" in cookie)
            r = await client.get("/api/v1/movers")  # the client keeps the cookie, as a browser does
            out["with cookie"] = r.status
            return out

    out = asyncio.run(scenario())
    assert out[("/health", None)] == out[("/metrics", None)] == 200
    assert out[("/api/v1/movers", None)] == out[("/api/v1/movers", "Bearer nope")] == 401
    assert out[("/api/v1/movers", "Bearer s3cret")] == 200
    assert out["login"] == (303, "/live/", True, True) and out["with cookie"] == 200


# --- personal data: scrubbed before storage, archive included ---------------------------------------------

PII_PIECES = ["mail me at jane.doe@example.com", "call +1 (555) 123-4567", "h/t @trader_joe", "$TSLA", "down 3%",
              "guidance cut", "415-555-0100", "@user_deadbeef", "great quarter", "x@y.io"]


URLS = ["https://bob:hunter2@news.example.com/markets/story?id=7", "https://x.example/share?email=jane.doe%40example.com",
        "https://x.example/u/jane@doe.org/post", "https://x.example/c?phone=%2B1%20555%20123%204567&utm=a%20b",
        "https://news.example.com/2026/11/29/acme-beats-123456", "javascript:alert(1)", "https://a b.example/", ""]
URL_SECRETS = ("bob", "hunter2", "jane", "555")


@settings(max_examples=150, deadline=None)
@given(author=st.from_regex(r"@?[a-z]{3,8}_[a-z0-9]{4,8}", fullmatch=True),
       words=st.lists(st.sampled_from(PII_PIECES), min_size=1, max_size=6), kind=st.sampled_from(["news", "social"]),
       url=st.sampled_from(URLS))
def test_an_archived_item_holds_no_personal_data_and_replays_to_the_same_document(author, words, kind, url):
    text = " ".join(words) + (f" {url}" if kind == "social" else "")
    at = "2026-11-03T14:00:00Z"
    item = ({"id": "n1", "source": "wire", "published_at": at, "headline": text, "body": text, "url": url}
            if kind == "news" else {"id": "p1", "platform": "x", "author": author, "created_at": at, "text": text})
    raw = orjson.dumps(item)
    archived = scrub_raw(raw, KEY)
    assert not EMAIL.search(archived.decode())
    if kind == "news":
        assert not any(secret in orjson.loads(archived)["url"] for secret in URL_SECRETS), orjson.loads(archived)["url"]
    if kind == "social":
        assert re.fullmatch("~[0-9a-f]{16}", orjson.loads(archived)["author"]) and author.lstrip("@") not in archived.decode()
    assert not any(len(re.sub(r"\D", "", m.group(0))) >= 7 for m in PHONE.finditer(archived.decode()))
    assert scrub_raw(archived, KEY) == archived  # idempotent

    def document(value: bytes):
        (outcome,) = Ingestor(KEY).process([RawRecord(kind, value, "raw", 0, 0)])  # type: ignore[arg-type]
        assert isinstance(outcome, Ingested), outcome
        return outcome.document().model_dump(exclude={"ingested_at"})

    assert document(archived) == document(raw)
    assert not any(secret in document(raw)["url"] for secret in URL_SECRETS), document(raw)["url"]


def test_the_public_privacy_key_is_refused_beyond_this_machine():
    from sentimon.settings import UnsafeDeployment, check_privacy_key

    check_privacy_key(Settings())  # local: loopback Kafka, embedded store
    check_privacy_key(Settings(kafka={"bootstrap_servers": "localhost:9092,[::1]:9093"}))
    for beyond in ({"kafka": {"bootstrap_servers": "kafka.internal:9092"}},
                   {"kafka": {"bootstrap_servers": "127.0.0.1:9092,10.0.0.5:9092"}},
                   {"store": {"dsn": "https://clickhouse.internal:8443"}}):
        with pytest.raises(UnsafeDeployment, match="SENTIMON_PRIVACY__KEY"):
            check_privacy_key(Settings(**beyond))
        check_privacy_key(Settings(**beyond, privacy={"key": "a-real-secret"}))


@pytest.mark.slow
def test_no_secret_in_logs_output_or_store_and_no_planted_personal_data_in_the_store(broker, tmp_path):
    """A real store and pipeline worker (tansu, chDB, the no-op scorer) with every secret set, a synthetic feed with planted e-mails, phone numbers and handles, some bad items among them."""
    from streams import metrics
    from sentimon.cluster import LocalCluster
    from streams.feed import publish
    from streams.synthetic import SyntheticFeed

    secrets = {"privacy": "privacy-key-Q7w8e9", "worker": "worker-token-Z1x2c3", "grafana": "grafana-token-P0o9i8",
               "kafka": "sasl-password-M5n6b7", "desk": "whsec_" + "ZGVzay1zZWNyZXQtWDd5OHo5MDEyMzQ1Njc4OQ=="}
    settings_ = Settings(kafka={"bootstrap_servers": broker.bootstrap, "sasl_password": secrets["kafka"]},
                         topics={"prefix": "sec."}, store={"dsn": f"chdb://{tmp_path / 'store'}"},
                         scoring={"backend": "noop"}, privacy={"key": secrets["privacy"]},
                         worker={"token": secrets["worker"], "log_format": "text"}, grafana={"token": secrets["grafana"]})
    feed = SyntheticFeed(seed=21, start=datetime(2026, 11, 3, 14, 0, tzinfo=timezone.utc), rhythm=False)
    items = [(k, orjson.dumps(i)) for _, k, i in feed.items(600, 5.0)] + [("social", b'{"text": "mail a.b@c.de", ')]
    planted = {m for _, v in items for m in EMAIL.findall(v.decode())} | {
        m.group(0) for _, v in items for m in PHONE.finditer(v.decode()) if len(re.sub(r"\D", "", m.group(0))) >= 7}
    handles = {orjson.loads(v)["author"].lstrip("@") for k, v in items if k == "social" and v.endswith(b"}")}
    assert len(planted) > 20 and len(handles) > 5
    env = {"SENTIMON_DESK_WEBHOOK_URL": "http://127.0.0.1:9/hook", "SENTIMON_DESK_WEBHOOK_SECRET": secrets["desk"]}
    with pytest.MonkeyPatch.context() as mp:
        for k, v in env.items():
            mp.setenv(k, v)
        with LocalCluster(settings_, tmp_path / "run", start_broker=False) as cluster:
            store = cluster.start_worker("store")
            pipeline = cluster.start_worker("pipeline")
            assert publish(cluster.settings, items) == len(items)
            wait_until(lambda: metrics.handled(metrics.combined(store.metrics(), pipeline.metrics())) >= len(items),
                       120, "every item stored or dead-lettered", [store, pipeline])
            shown = json.dumps(store.get("/health")) + json.dumps(store.get("/api/v1/snapshot"))
            with cluster.store() as s:
                tables = {}
                for table in ("documents", "raw_items", "dead_letters", "scores"):
                    columns = [c for c, t in s.query("SELECT name, type FROM system.columns WHERE database = {db:String} "
                                                     "AND table = {t:String}", {"db": s.db, "t": table})
                               if "String" in t]
                    rows = s.query(f"SELECT {', '.join(f'toString({c})' for c in columns)} FROM {{db}}.{table}")
                    tables[table] = "\n".join("\t".join(r) for r in rows)
                assert s.counts()["documents"] == len(items) - 1
        logs = "\n".join(p.read_text(errors="replace") for p in (tmp_path / "run").glob("*.log"))
    config = subprocess.run([sys.executable, "-m", "sentimon.cli", "config"], capture_output=True, text=True, timeout=60,
                            env={**os.environ, **env, "SENTIMON_PRIVACY__KEY": secrets["privacy"],
                                 "SENTIMON_WORKER__TOKEN": secrets["worker"], "SENTIMON_GRAFANA__TOKEN": secrets["grafana"],
                                 "SENTIMON_KAFKA__SASL_PASSWORD": secrets["kafka"]}).stdout
    assert "**********" in config and len(logs) > 10_000
    for name, secret in secrets.items():
        for where, text in (("logs", logs), ("config", config), ("API", shown), *tables.items()):
            assert secret not in text, f"the {name} secret is in the {where}"
    for where, text in tables.items():
        leaked = sorted(p for p in planted if p in text) + sorted(h for h in handles if re.search(rf"(?<![\w_]){h}\b", text))
        assert not leaked, f"personal data in {where}: {leaked[:5]}"
    assert "[email]" in tables["documents"] and "[email]" in tables["raw_items"] and "~" in tables["raw_items"]
