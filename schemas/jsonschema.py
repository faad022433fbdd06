"""Export the event models as JSON Schema files (``schemas/json/<name>.v<version>.json``)."""

from __future__ import annotations

import json
from pathlib import Path

from schemas import EVENTS

JSON_DIR = Path(__file__).parent / "json"


def render() -> dict[str, str]:
    """File name -> JSON Schema text of every event model."""
    out = {}
    for name, model in EVENTS.items():
        version = model.model_fields["schema_version"].default
        schema = model.model_json_schema(mode="serialization")
        schema["$id"] = f"https://sentimon.dev/schemas/{name}.v{version}.json"
        out[f"{name}.v{version}.json"] = json.dumps(schema, indent=2, sort_keys=True) + "\n"
    return out


def export(directory: Path = JSON_DIR) -> list[Path]:
    """Write every schema file; returns the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, text in render().items():
        path = directory / name
        path.write_text(text)
        paths.append(path)
    return paths
