"""Grafana as code: the dashboards (:mod:`.definitions`), their JSON under ``ops/grafana/dashboards``,
validation against the dashboard schema of grafana-foundation-sdk, and what Grafana sends ClickHouse
(:mod:`.macros`). ``sentimon dashboards build|check|push``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import Dashboard as DashboardModel

from sentimon.dashboards.definitions import ANNOTATIONS, DASHBOARDS
from sentimon.dashboards.query import DATASOURCE, Query

OPS_DIR = Path(__file__).resolve().parents[2] / "ops" / "grafana"
DASHBOARDS_DIR = OPS_DIR / "dashboards"


def build_all() -> dict[str, dict[str, Any]]:
    """Every dashboard as Grafana's JSON model, by file name (``overview`` -> overview.json)."""
    out = {}
    for name, make in DASHBOARDS.items():
        model = json.loads(JSONEncoder(sort_keys=True).encode(make().build()))
        for i, panel in enumerate(model.get("panels", []), 1):
            panel["id"] = i  # stable: the order in the code (links to a panel use it)
        # the SDK types an annotation's target as Grafana's built-in one; a data source's annotation
        # carries its own query there
        for annotation in model.get("annotations", {}).get("list", []):
            sql = ANNOTATIONS.get(model["uid"], {}).get(annotation.get("name"))
            if sql:
                annotation["target"] = Query(sql).build().to_json()
        out[name] = model
    return out


def render_json(model: dict[str, Any]) -> str:
    return json.dumps(model, indent=2, sort_keys=True) + "\n"


def write(directory: Path = DASHBOARDS_DIR) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, model in build_all().items():
        path = directory / f"{name}.json"
        path.write_text(render_json(model))
        paths.append(path)
    return paths


def problems(model: dict[str, Any]) -> list[str]:
    """What is wrong with a dashboard's JSON: fields the dashboard schema does not know or types it
    reads differently (a round trip through grafana-foundation-sdk's model must give it back), panels
    overlapping or off the 24-column grid, duplicate panel ids, queries on another data source, and
    variables used but not defined."""
    found = []
    expected = json.loads(json.dumps(model))
    for annotation in expected.get("annotations", {}).get("list", []):
        annotation.pop("target", None)  # see build_all
    again = json.loads(JSONEncoder(sort_keys=True).encode(DashboardModel.from_json(model)))
    for annotation in again.get("annotations", {}).get("list", []):
        annotation.pop("target", None)
    if again != expected:
        found.append(f"{model.get('uid')}: does not round-trip through the dashboard schema: "
                     f"{_first_difference(expected, again)}")
    panels = model.get("panels", [])
    ids = [p.get("id") for p in panels]
    if len(ids) != len(set(ids)):
        found.append(f"{model.get('uid')}: duplicate panel ids {ids}")
    cells: dict[tuple[int, int], str] = {}
    for p in panels:
        g = p["gridPos"]
        if g["x"] + g["w"] > 24:
            found.append(f"{p.get('title')}: wider than the grid")
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                if (x, y) in cells:
                    found.append(f"{p.get('title')}: overlaps {cells[(x, y)]}")
                    break
                cells[(x, y)] = p.get("title", "")
            else:
                continue
            break
        for t in p.get("targets", []):
            if t.get("datasource") != DATASOURCE.to_json():
                found.append(f"{p.get('title')}: query on another data source {t.get('datasource')}")
    defined = {v["name"] for v in model.get("templating", {}).get("list", [])}
    import re

    text = json.dumps([p.get("targets", []) for p in panels] + [model.get("templating", {})])
    for name in set(re.findall(r"\$\{?(?!__)(\w+)", text)) - defined:
        found.append(f"{model.get('uid')}: variable ${name} used but not defined")
    return found


def _first_difference(a: Any, b: Any, path: str = "") -> str:
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            if a.get(k) != b.get(k):
                return _first_difference(a.get(k), b.get(k), f"{path}.{k}")
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b)):
            if x != y:
                return _first_difference(x, y, f"{path}[{i}]")
    return f"{path or '.'}: {json.dumps(a)[:120]} != {json.dumps(b)[:120]}"
