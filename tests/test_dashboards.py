"""Grafana as code: the committed JSON is what the code builds, validates against the dashboard schema,
and every query (variables, panels, annotations), expanded the way Grafana and the ClickHouse plugin
expand it, runs on a real store (chDB) holding scored documents, alerts and dead letters."""

from __future__ import annotations

import copy
import json
from datetime import datetime, timedelta, timezone

import pytest

from alerts.evaluate import Evaluator
from conftest import LoopbackServer
from sentimon.dashboards import DASHBOARDS_DIR, build_all, problems, render_json
from sentimon.dashboards.macros import expand, interpolate, render
from streams.sink import DeadLetterSink
from streams.store import Store
from test_alerts_store import RULES, T0, history

FROM, TO = T0, T0 + timedelta(minutes=70)


def test_the_committed_json_is_what_the_code_builds():
    built = build_all()
    assert sorted(p.stem for p in DASHBOARDS_DIR.glob("*.json")) == sorted(built)
    for name, model in built.items():
        assert (DASHBOARDS_DIR / f"{name}.json").read_text() == render_json(model), \
            f"ops/grafana/dashboards/{name}.json is stale: run `make dashboards`"


def test_the_dashboards_validate_and_the_validator_catches_mistakes():
    built = build_all()
    assert {m["uid"] for m in built.values()} == {"sentimon-overview", "sentimon-entity", "sentimon-alerts",
                                                  "sentimon-pipeline"}
    for model in built.values():
        assert problems(model) == [], model["uid"]
    broken = copy.deepcopy(built["overview"])
    broken["panels"][1]["gridPos"] = dict(broken["panels"][0]["gridPos"])  # two panels in one place
    broken["panels"][2]["colour"] = "red"  # not a field of the schema
    broken["panels"][3]["targets"][0]["rawSql"] += " AND $nowhere = 1"
    found = " | ".join(problems(broken))
    assert "overlaps" in found and "round-trip" in found and "$nowhere" in found, found


def test_macros_expand_as_the_plugin_does():
    f, t = datetime(2026, 11, 29, 10, 0, tzinfo=timezone.utc), datetime(2026, 11, 29, 11, 0, 0, 250000, tzinfo=timezone.utc)
    sql = ("SELECT $__timeInterval(minute) AS time FROM x WHERE $__timeFilter(minute) AND $__timeFilter_ms(at) "
           "AND d BETWEEN $__fromTime AND $__toTime AND $__dateFilter(day) LIMIT $__interval_s")
    out = expand(sql, f, t, 30.5)
    assert "toStartOfInterval(toDateTime(minute), INTERVAL 30 second)" in out
    assert f"minute >= toDateTime({int(f.timestamp())}) AND minute <= toDateTime({int(t.timestamp())})" in out
    assert f"at <= fromUnixTimestamp64Milli({int(t.timestamp() * 1000)})" in out
    assert "day >= toDate('2026-11-29') AND day <= toDate('2026-11-29')" in out and out.endswith("LIMIT 30")
    assert expand("$__interval_s", f, t, 0.2) == "1"  # at least one second
    with pytest.raises(ValueError, match="unknown macro"):
        expand("$__nope", f, t, 1)
    assert interpolate("e IN (${e:singlequote}) AND k = '$k'", {"e": ["A", "O'B"], "k": "x"}) == \
        "e IN ('A','O\\'B') AND k = 'x'"
    with pytest.raises(KeyError):
        interpolate("$missing", {})


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    s = Store(f"chdb://{tmp_path_factory.mktemp('dash') / 'store'}")
    s.migrate()
    docs = history()
    s.write(docs)
    evaluator = Evaluator(RULES, s)
    evaluator.commit(evaluator.advance(TO))
    letter = json.dumps({"schema_version": 1, "stage": "ingest", "reason": "malformed JSON", "topic": "raw-news",
                         "partition": 0, "offset": 7, "index": None, "original": "e30=",
                         "failed_at": datetime.now(timezone.utc).isoformat()}).encode()
    DeadLetterSink(s).write([(0, 1, letter), (0, 2, b"not a letter")])
    yield s
    s.close()


def _range(name: str) -> tuple[datetime, datetime]:
    """The data's event time, or (the pipeline dashboard: time is when stored) the last hour."""
    if name == "pipeline":
        now = datetime.now(timezone.utc)
        return now - timedelta(hours=1), now + timedelta(minutes=1)
    return FROM, TO


def _variables(model: dict, store: Store, start: datetime, end: datetime) -> dict:
    """The dashboard's variables as Grafana resolves them: the constant, then each query variable's own
    query (which must return values), All selected for a multi-value one, the first value otherwise."""
    values: dict = {}
    for v in model["templating"]["list"]:
        if v["type"] == "constant":
            values[v["name"]] = store.db
            continue
        rows = store.query(render(v["query"], values, start, end, 60))
        assert rows, f"{model['uid']}: variable {v['name']} has no values"
        options = [str(r[0]) for r in rows]
        values[v["name"]] = options if v.get("multi") else options[0]
    return values


@pytest.mark.parametrize("name", ["overview", "entity", "alerts", "pipeline"])
def test_every_panel_query_returns_rows_from_a_real_store(store, name):
    model = build_all()[name]
    start, end = _range(name)
    values = _variables(model, store, start, end)
    if name == "entity":
        values["entity"] = "TSLA"  # the ticker with the alert
    queries = [(p["title"], t["rawSql"]) for p in model["panels"] for t in p.get("targets", [])]
    queries += [(a["name"], a["target"]["rawSql"]) for a in model.get("annotations", {}).get("list", []) if "target" in a]
    assert queries
    for title, sql in queries:
        rows = store.query(render(sql, values, start, end, 60))
        assert rows, f"{name}: '{title}' returned no rows"


def test_a_user_chosen_value_is_quoted_in_every_query(store):
    """Variables an analyst picks (the entity) reach SQL only quoted by Grafana (``:sqlstring``): a hostile
    value runs as a string, never as SQL."""
    import re

    for name, model in build_all().items():
        for p in model["panels"]:
            for t in p.get("targets", []):
                assert not re.search(r"'\$\{?entity", t["rawSql"]), f"{name}: '{p['title']}' quotes $entity itself"
    model = build_all()["entity"]
    start, end = _range("entity")
    values = {**_variables(model, store, start, end), "entity": "x') OR 1=1 OR ('"}
    for p in model["panels"]:
        for t in p.get("targets", []):
            if "entity" in t["rawSql"]:  # no such entity: nothing, where unquoted the OR would match every row
                assert store.query(render(t["rawSql"], values, start, end, 60)) == [], p["title"]


class GrafanaDouble(LoopbackServer):
    """A test double of the few Grafana HTTP endpoints `dashboards push` uses (no Grafana can run here):
    folders, data sources by uid, dashboards by uid and POST /api/dashboards/db with Grafana's version
    rules (a new save bumps the version; a stale version without overwrite is refused with 412). It
    records every request."""

    def __init__(self):
        from aiohttp import web

        self.requests: list[tuple[str, str]] = []
        self.folders: dict[str, dict] = {}
        self.datasources: dict[str, dict] = {}
        self.dashboards: dict[str, dict] = {}
        self.auth: set[str] = set()
        j = web.json_response

        def recorded(handler):
            async def wrapped(request):
                self.requests.append((request.method, request.path))
                self.auth.add(request.headers.get("Authorization", ""))
                return await handler(request)
            return wrapped

        async def get_folder(request):
            f = self.folders.get(request.match_info["uid"])
            return j(f) if f else j({"message": "folder not found"}, status=404)

        async def create_folder(request):
            body = await request.json()
            self.folders[body["uid"]] = {"uid": body["uid"], "title": body["title"]}
            return j(self.folders[body["uid"]])

        async def get_datasource(request):
            d = self.datasources.get(request.match_info["uid"])
            return j({k: v for k, v in d.items() if k != "secureJsonData"}) if d else j({"message": "not found"}, status=404)

        async def put_datasource(request):
            body = await request.json()
            if request.method == "PUT" and request.match_info["uid"] not in self.datasources:
                return j({"message": "not found"}, status=404)
            self.datasources[body["uid"]] = body
            return j({"message": "ok", "datasource": body})

        async def get_dashboard(request):
            d = self.dashboards.get(request.match_info["uid"])
            return j(d) if d else j({"message": "Dashboard not found"}, status=404)

        async def save_dashboard(request):
            body = await request.json()
            dash, uid = body["dashboard"], body["dashboard"]["uid"]
            saved = self.dashboards.get(uid)
            if saved and not body.get("overwrite") and dash.get("version") != saved["dashboard"]["version"]:
                return j({"status": "version-mismatch"}, status=412)
            version = saved["dashboard"]["version"] + 1 if saved else 1
            self.dashboards[uid] = {"dashboard": {**dash, "id": 7, "version": version},
                                    "meta": {"folderUid": body.get("folderUid")}}
            return j({"uid": uid, "version": version, "status": "success"})

        super().__init__(routes=[
            ("GET", "/api/folders/{uid}", recorded(get_folder)), ("POST", "/api/folders", recorded(create_folder)),
            ("GET", "/api/datasources/uid/{uid}", recorded(get_datasource)),
            ("POST", "/api/datasources", recorded(put_datasource)),
            ("PUT", "/api/datasources/uid/{uid}", recorded(put_datasource)),
            ("GET", "/api/dashboards/uid/{uid}", recorded(get_dashboard)),
            ("POST", "/api/dashboards/db", recorded(save_dashboard)),
        ])


def test_push_is_idempotent_and_bumps_versions_only_on_change(monkeypatch):
    from sentimon.cli import app
    from typer.testing import CliRunner

    grafana = GrafanaDouble()
    try:
        monkeypatch.setenv("SENTIMON_GRAFANA__URL", grafana.base)
        monkeypatch.setenv("SENTIMON_GRAFANA__TOKEN", "glsa_test")
        monkeypatch.setenv("SENTIMON_GRAFANA__CLICKHOUSE_PASSWORD", "s3cret")
        first = CliRunner().invoke(app, ["dashboards", "push"])
        assert first.exit_code == 0, first.output
        assert set(grafana.dashboards) == {m["uid"] for m in build_all().values()}
        assert all(d["dashboard"]["version"] == 1 and d["meta"]["folderUid"] == "sentimon" for d in grafana.dashboards.values())
        ds = grafana.datasources["sentimon-clickhouse"]
        assert ds["type"] == "grafana-clickhouse-datasource" and ds["secureJsonData"] == {"password": "s3cret"}
        assert grafana.auth == {"Bearer glsa_test"}
        writes = lambda: [r for r in grafana.requests if r[0] != "GET"]  # noqa: E731
        n = len(writes())
        again = CliRunner().invoke(app, ["dashboards", "push"])
        assert again.exit_code == 0, again.output
        assert len(writes()) == n and "unchanged" in again.output  # nothing written the second time
        assert all(d["dashboard"]["version"] == 1 for d in grafana.dashboards.values())
        # someone edits a dashboard in Grafana: the next push restores ours as a new version
        grafana.dashboards["sentimon-alerts"]["dashboard"]["title"] = "edited by hand"
        third = CliRunner().invoke(app, ["dashboards", "push"])
        assert third.exit_code == 0, third.output
        alerts = grafana.dashboards["sentimon-alerts"]["dashboard"]
        assert alerts["title"] == "Sentimon / Alerts" and alerts["version"] == 2
        assert grafana.dashboards["sentimon-overview"]["dashboard"]["version"] == 1
    finally:
        grafana.close()


def test_push_without_a_token_says_what_to_set(monkeypatch):
    from sentimon.cli import app
    from typer.testing import CliRunner

    monkeypatch.delenv("SENTIMON_GRAFANA__TOKEN", raising=False)
    result = CliRunner().invoke(app, ["dashboards", "push"])
    assert result.exit_code == 2 and "SENTIMON_GRAFANA__TOKEN" in result.output
