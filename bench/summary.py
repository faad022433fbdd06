"""The headline figures of one ``make bench`` run in one JSON (``python -m bench summary``, its last step).

Reads the newest ``models-*.json`` and the newest ``pipeline-*.json`` written after it (so both come from
the same run of ``make bench``), and writes ``summary-<UTC time>.json`` with the ratios the project's
targets are stated in, the accuracy of each runtime and the files they came from.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from rich.console import Console
from rich.table import Table

from bench.results import save_result

TARGETS = {"ort_int8_vs_torch_fp32_ratio": 1.6, "pipeline_vs_model_ratio": 0.9, "triton_pipeline_vs_triton_ratio": 0.9}


def _newest(out_dir: Path, pattern: str, after: float = 0.0) -> Path | None:
    found = [p for p in out_dir.glob(pattern) if p.stat().st_mtime >= after and "latest" not in p.name]
    return max(found, key=lambda p: p.stat().st_mtime) if found else None


def summarise(out_dir: Path) -> dict:
    """The summary of the newest models run and the pipeline run that followed it; KeyError-free: a missing
    part is reported as missing."""
    models = _newest(out_dir, "models-*.json")
    if models is None:
        raise FileNotFoundError(f"no models-*.json under {out_dir}: run `python -m bench models` first")
    pipeline = _newest(out_dir, "pipeline-2*.json", after=models.stat().st_mtime)
    m = json.loads(models.read_text())
    p = json.loads(pipeline.read_text()) if pipeline else {}
    result = {
        "sources": {"models": models.name, "pipeline": pipeline.name if pipeline else None},
        "model": m["model"], "default_runtime": m["default_runtime"], "pipeline_model": p.get("model"),
        "ort_int8_vs_torch_fp32_ratio": m["ort_int8_vs_torch_fp32_ratio"],
        "pipeline_vs_model_ratio": p.get("pipeline_vs_model_ratio"),
        "triton_pipeline_vs_triton_ratio": p.get("triton_pipeline_vs_triton_ratio"),
        # the same with raw messages of 50 items (JSON Lines): Faust's cost per message shared (no target)
        "triton_bulk_pipeline_vs_triton_ratio": p.get("triton_bulk_pipeline_vs_triton_ratio"),
        # one raw item per message again, tritonserver on a core of its own (no target)
        "triton_own_cores_pipeline_vs_triton_ratio": p.get("triton_own_cores_pipeline_vs_triton_ratio"),
        "model_alone_per_s": p.get("model_alone_per_s"), "model_pipeline_per_s": p.get("model_pipeline_per_s"),
        "triton_alone_per_s": p.get("triton_alone_per_s"), "triton_pipeline_per_s": p.get("triton_pipeline_per_s"),
        "accuracy": {name: {task: {"accuracy": r["accuracy"], "difference_vs_torch_fp32": r["difference_vs_torch_fp32"]}
                            for task, r in entry.items() if task != "within_tolerance"}
                     for name, entry in m["accuracy"].items()},
        "default_within_tolerance": m["default_within_tolerance"],
        "targets": TARGETS,
    }
    result["met"] = {key: (result[key] is not None and result[key] >= target) for key, target in TARGETS.items()}
    return result


def run_summary(settings, out_dir: Path, *, quick: bool = False, log: Callable[[str], None] = print) -> dict:
    result = summarise(out_dir)
    table = Table(title=f"make bench: {result['model']['name']} v{result['model']['version']}, "
                        f"default runtime {result['default_runtime']}", title_justify="left")
    for col in ("figure", "value", "target"):
        table.add_column(col, justify="left" if col == "figure" else "right")
    for key, target in TARGETS.items():
        value = result[key]
        table.add_row(key, "missing" if value is None else f"{value:.2f}", f">= {target}")
    bulk = result.get("triton_bulk_pipeline_vs_triton_ratio")
    if bulk is not None:
        table.add_row("the same, 50 raw items per message", f"{bulk:.2f}", "")
    own = result.get("triton_own_cores_pipeline_vs_triton_ratio")
    if own is not None:
        table.add_row("the same, one item per message, Triton on a core of its own", f"{own:.2f}", "")
    Console().print(table)
    save_result(out_dir, "summary", result, log)
    return result
