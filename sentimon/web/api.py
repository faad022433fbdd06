"""The store worker's read-only JSON API for desks that pull rather than receive webhooks, the live page,
and the OpenAPI document that describes them (served at ``/api/v1/openapi.json``).

Times are ISO 8601 (UTC, ``Z``); ``from``/``to`` default to the last two hours of stored event time."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, TypeAdapter

from schemas.base import EARLIEST, LATEST, parse_utc
from sentimon.web import data, page, plotly_js
from sentimon.web.access import BadRequest


class SentimentPoint(BaseModel):
    time: str
    stories: int
    mean_score: float | None
    negative_share: float | None


class Mover(BaseModel):
    entity: str
    stories: int
    mean_score: float | None
    baseline_stories: int
    baseline_score: float | None
    change: float | None
    negative_share: float | None


class AlertChange(BaseModel):
    at: str
    status: str
    alertname: str
    severity: str
    entity_kind: str
    entity: str
    summary: str
    fingerprint: str
    starts_at: str
    ends_at: str | None


def parse_range(query, store) -> tuple[datetime, datetime]:
    """``from``/``to`` (ISO 8601) from a query string, defaulting to the last two hours of data."""
    start, end = data.default_range(store)
    if query.get("to"):
        end = time_param(query, "to")
        if not query.get("from"):
            start = end - timedelta(hours=2)
    if query.get("from"):
        start = time_param(query, "from")
    if end <= start:
        raise BadRequest("to must be after from")
    if end - start > timedelta(days=31):
        raise BadRequest("at most 31 days at a time")
    return start, end


def time_param(query, name: str) -> datetime:
    """An ISO 8601 time within the store's range (1970-2105), or :class:`BadRequest`."""
    try:
        value = parse_utc(query[name])
    except (ValueError, OverflowError) as exc:
        raise BadRequest(f"{name} must be an ISO 8601 time, e.g. 2026-11-29T10:00:00Z ({exc})") from None
    if not EARLIEST + timedelta(days=31) <= value < LATEST:
        raise BadRequest(f"{name} must lie between {EARLIEST.year + 1} and {LATEST.year - 1}")
    return value


def int_param(query, name: str, default: int, low: int, high: int) -> int:
    """An integer query parameter in [low, high], ``default`` when absent, or :class:`BadRequest`."""
    try:
        value = int(query.get(name, default))
    except ValueError:
        raise BadRequest(f"{name} must be an integer") from None
    if not low <= value <= high:
        raise BadRequest(f"{name} must be between {low} and {high}")
    return value


def _range_params() -> list[dict]:
    return [{"name": n, "in": "query", "required": False, "schema": {"type": "string", "format": "date-time"},
             "description": d} for n, d in (("from", "start of the range (default: `to` minus 2 hours)"),
                                             ("to", "end of the range (default: the newest data)"))]


ERROR = {"type": "object", "properties": {"error": {"type": "string"}}, "required": ["error"]}


def _answer(description: str, body: dict, *errors: int) -> dict:
    out = {"200": {"description": description, "content": {"application/json": {"schema": body}}}}
    for status in errors:
        out[str(status)] = {"description": ERROR_STATUS[status], "content": {"application/json": {"schema": ERROR}}}
    return out


ERROR_STATUS = {400: "a parameter or the body is wrong; the error says which and why",
                403: "the request comes from another site (Origin, Sec-Fetch-Site): state changes only from this server",
                404: "no such thing", 415: "the body must be JSON (Content-Type: application/json)"}


def _int_param(name: str, default: int, low: int, high: int, description: str = "") -> dict:
    return {"name": name, "in": "query", "required": False, "description": description,
            "schema": {"type": "integer", "default": default, "minimum": low, "maximum": high}}


NEW_SILENCE = {
    "type": "object", "additionalProperties": False, "required": ["matchers", "starts_at", "ends_at", "created_by", "comment"],
    "properties": {
        "matchers": {"type": "array", "minItems": 1, "maxItems": 32, "description": "e.g. entity=\"TSLA\"",
                     "items": {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]*(=|!=|=~|!~)\"?[A-Za-z0-9_ .|-]*\"?$"}},
        "starts_at": {"type": "string", "format": "date-time"}, "ends_at": {"type": "string", "format": "date-time"},
        "created_by": {"type": "string", "minLength": 1, "maxLength": 200},
        "comment": {"type": "string", "minLength": 1, "maxLength": 2000}},
}


def _alerting_paths() -> dict[str, Any]:
    """The paths of a worker that runs alerting: silences (the one write API) and the latest alert changes."""
    from alerts.silence import Silence

    silence = Silence.model_json_schema(mode="serialization", ref_template="#/components/schemas/{model}")
    silence.pop("$defs", None)  # Matcher is among the components
    created = _answer("the new silence's id", {"type": "object", "required": ["id"], "properties": {"id": {"type": "string"}}},
                      400, 403, 415)
    created["200"]["links"] = {"expire": {"operationId": "expireSilence", "parameters": {"silence_id": "$response.body#/id"}}}
    return {
        "/api/silences": {
            "get": {"summary": "The silences (active ones; with expired=1 the expired too)",
                    "parameters": [{"name": "expired", "in": "query", "required": False,
                                    "schema": {"type": "string", "enum": ["0", "1", "true", "false"]}}],
                    "responses": _answer("silences", {"type": "array", "items": silence}, 400)},
            "post": {"summary": "Add a silence (the server assigns its id)", "operationId": "addSilence",
                     "requestBody": {"required": True, "content": {"application/json": {"schema": NEW_SILENCE}}},
                     "responses": created},
        },
        "/api/silences/{silence_id}": {"delete": {
            "summary": "End a silence now", "operationId": "expireSilence",
            "parameters": [{"name": "silence_id", "in": "path", "required": True, "schema": {"type": "string"}}],
            "responses": _answer("the silence's id and its new end", {"type": "object", "required": ["id", "ends_at"],
                                 "properties": {"id": {"type": "string"}, "ends_at": {"type": "string"}}}, 403, 404)}},
        "/api/alerts": {"get": {
            "summary": "The latest alert changes, newest first",
            "parameters": [_int_param("limit", 100, 1, 10_000)],
            "responses": _answer("alert changes", {"type": "array", "items": {"type": "object"}}, 400)}},
    }


def openapi(alerting: bool = False) -> dict[str, Any]:
    """The OpenAPI 3.1 document of the worker's JSON API (with ``alerting``: silences and alert changes too)."""
    def schema(t) -> dict:
        return TypeAdapter(t).json_schema(ref_template="#/components/schemas/{model}")

    def ok(description: str, t) -> dict:
        return _answer(description, schema(t), 400)

    from alerts.matcher import Matcher

    components = {m.__name__: m.model_json_schema() for m in (SentimentPoint, Mover, AlertChange, Matcher)}
    return {
        "openapi": "3.1.0",
        "info": {"title": "Sentimon read-only API", "version": "1",
                 "description": "Sentiment over time, current movers and alerts, for desks that pull. Event time, UTC."},
        "paths": {
            "/api/v1/entities/{entity}/sentiment": {"get": {
                "summary": "An entity's sentiment over time (a ticker, a sector, or 'all' for the market)",
                "parameters": [{"name": "entity", "in": "path", "required": True, "schema": {"type": "string"}},
                               *_range_params(),
                               {"name": "bucket", "in": "query", "required": False,
                                "schema": {"type": "integer", "minimum": 1, "maximum": 1440},
                                "description": "bucket in minutes (default: at most 120 points over the range)"}],
                "responses": ok("one point per bucket with stories", list[SentimentPoint])}},
            "/api/v1/movers": {"get": {
                "summary": "Tickers whose mean sentiment moved most: the last `window` minutes against the `baseline` before",
                "parameters": [{"name": "to", "in": "query", "required": False,
                                "schema": {"type": "string", "format": "date-time"}},
                               {"name": "window", "in": "query", "required": False, "schema": {"type": "integer", "default": 15}},
                               {"name": "baseline", "in": "query", "required": False, "schema": {"type": "integer", "default": 60}},
                               {"name": "limit", "in": "query", "required": False, "schema": {"type": "integer", "default": 10}}],
                "responses": ok("the movers, the biggest first", list[Mover])}},
            "/api/v1/alerts": {"get": {
                "summary": "Alert changes (firing, resolved) in a range, newest first",
                "parameters": [*_range_params(),
                               {"name": "entity", "in": "query", "required": False, "schema": {"type": "string"}}],
                "responses": ok("alert changes", list[AlertChange])}},
            "/api/v1/snapshot": {"get": {
                "summary": "Everything the live page shows for a range",
                "parameters": [*_range_params(), {"name": "entity", "in": "query", "required": False,
                                                  "schema": {"type": "string"}}],
                "responses": _answer("market, sectors, movers, alerts and one ticker's drill-down", {"type": "object"},
                                     400)}},
            "/api/summary": {"get": {
                "summary": "Counts, movers and the busiest tickers (what `sentimon query` shows)",
                "parameters": [_int_param("window", 5, 1, 1440), _int_param("baseline", 30, 1, 10080),
                               _int_param("limit", 10, 1, 200)],
                "responses": _answer("the summary", {"type": "object"}, 400)}},
            "/api/entity/{entity}/": {"get": {
                "summary": "One entity's per-bucket sentiment over the last minutes of data",
                "parameters": [{"name": "entity", "in": "path", "required": True, "schema": {"type": "string"}},
                               _int_param("minutes", 60, 1, 44640), _int_param("bucket", 5, 1, 1440)],
                "responses": _answer("the series", {"type": "object"}, 400)}},
            **(_alerting_paths() if alerting else {}),
        },
        "components": {"schemas": components},
    }


def routes(app, store, alerting: bool = False) -> None:
    """Register the page, plotly.js, the API and its OpenAPI document on a Faust app that owns ``store``
    (``alerting``: the app serves the silences and alert changes too)."""

    async def answer(view, request, compute):
        try:
            body = await asyncio.to_thread(compute, request.query)
        except BadRequest as exc:
            return view.json({"error": str(exc)}, status=400)
        return view.json(body)

    @app.page("/live/")
    async def live(view, request):
        return view.html(page(live=True))

    @app.page("/static/plotly.min.js")
    async def plotly(view, request):
        return view.bytes(plotly_js(), content_type="application/javascript",
                          headers={"Cache-Control": "max-age=86400"})

    @app.page("/api/v1/openapi.json")
    async def document(view, request):
        return view.json(openapi(alerting))

    @app.page("/api/v1/snapshot")
    async def snapshot(view, request):
        return await answer(view, request, lambda q: data.snapshot(store, *parse_range(q, store), q.get("entity")))

    @app.page("/api/v1/entities/{entity}/sentiment")
    async def sentiment(view, request, entity):
        return await answer(view, request, lambda q: data.sentiment(
            store, entity, *parse_range(q, store), int_param(q, "bucket", 0, 0, 1440) or None))

    @app.page("/api/v1/movers")
    async def movers(view, request):
        return await answer(view, request, lambda q: data.movers(
            store, parse_range(q, store)[1], int_param(q, "window", 15, 1, 1440), int_param(q, "baseline", 60, 1, 10080),
            int_param(q, "limit", 10, 1, 200)))

    @app.page("/api/v1/alerts")
    async def alert_changes(view, request):
        return await answer(view, request, lambda q: data.alerts(store, *parse_range(q, store), q.get("entity")))
