"""The store worker's read-only JSON API for desks that pull rather than receive webhooks, the live page,
and the OpenAPI document that describes them (served at ``/api/v1/openapi.json``).

Times are ISO 8601 (UTC, ``Z``); ``from``/``to`` default to the last two hours of stored event time."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, TypeAdapter

from schemas.base import parse_utc
from sentimon.web import data, page, plotly_js


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


class BadRequest(ValueError):
    pass


def parse_range(query, store) -> tuple[datetime, datetime]:
    """``from``/``to`` (ISO 8601) from a query string, defaulting to the last two hours of data."""
    start, end = data.default_range(store)
    try:
        if query.get("to"):
            end = parse_utc(query["to"])
            if not query.get("from"):
                start = end - timedelta(hours=2)
        if query.get("from"):
            start = parse_utc(query["from"])
    except ValueError as exc:
        raise BadRequest(f"from/to must be ISO 8601 times, e.g. 2026-11-29T10:00:00Z ({exc})") from None
    if end <= start:
        raise BadRequest("to must be after from")
    if end - start > timedelta(days=31):
        raise BadRequest("at most 31 days at a time")
    return start, end


def _int(query, name: str, default: int, low: int, high: int) -> int:
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


def openapi() -> dict[str, Any]:
    """The OpenAPI 3.1 document of the read-only API."""
    def schema(t) -> dict:
        return TypeAdapter(t).json_schema(ref_template="#/components/schemas/{model}")

    def ok(description: str, t) -> dict:
        return {"200": {"description": description, "content": {"application/json": {"schema": schema(t)}}},
                "400": {"description": "a parameter is wrong; the body says which and why"}}

    components = {m.__name__: m.model_json_schema() for m in (SentimentPoint, Mover, AlertChange)}
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
                "responses": {"200": {"description": "market, sectors, movers, alerts and one ticker's drill-down",
                                      "content": {"application/json": {"schema": {"type": "object"}}}}}}},
        },
        "components": {"schemas": components},
    }


def routes(app, store) -> None:
    """Register the page, plotly.js, the API and its OpenAPI document on a Faust app that owns ``store``."""

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
        return view.json(openapi())

    @app.page("/api/v1/snapshot")
    async def snapshot(view, request):
        return await answer(view, request, lambda q: data.snapshot(store, *parse_range(q, store), q.get("entity")))

    @app.page("/api/v1/entities/{entity}/sentiment")
    async def sentiment(view, request, entity):
        return await answer(view, request, lambda q: data.sentiment(
            store, entity, *parse_range(q, store), _int(q, "bucket", 0, 0, 1440) or None))

    @app.page("/api/v1/movers")
    async def movers(view, request):
        return await answer(view, request, lambda q: data.movers(
            store, parse_range(q, store)[1], _int(q, "window", 15, 1, 1440), _int(q, "baseline", 60, 1, 10080),
            _int(q, "limit", 10, 1, 200)))

    @app.page("/api/v1/alerts")
    async def alert_changes(view, request):
        return await answer(view, request, lambda q: data.alerts(store, *parse_range(q, store), q.get("entity")))
