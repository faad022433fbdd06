"""The summary of a `make bench` run: its figures come from the models run and the pipeline run after it."""

from __future__ import annotations

import json
import os

import pytest

from bench.summary import summarise


def _write(path, data, mtime):
    path.write_text(json.dumps(data))
    os.utime(path, (mtime, mtime))


MODELS = {"model": {"name": "m", "version": "1"}, "default_runtime": "ort-int8", "ort_int8_vs_torch_fp32_ratio": 1.86,
          "default_within_tolerance": True,
          "accuracy": {"ort-int8": {"sentiment": {"accuracy": 0.88, "difference_vs_torch_fp32": 0.001},
                                    "within_tolerance": True}}}


def test_the_summary_takes_the_pipeline_run_that_followed_the_models_run(tmp_path):
    _write(tmp_path / "pipeline-20261201T000000.json", {"pipeline_vs_model_ratio": 0.5}, 1_000)
    _write(tmp_path / "models-20261202T000000.json", MODELS, 2_000)
    _write(tmp_path / "pipeline-triton-20261202T000100.json", {"triton_pipeline_vs_triton_ratio": 0.1}, 2_100)
    with pytest.raises(FileNotFoundError, match="bench models"):
        summarise(tmp_path / "nothing")
    early = summarise(tmp_path)  # the only pipeline run is older: not this run's
    assert early["pipeline_vs_model_ratio"] is None and early["met"]["pipeline_vs_model_ratio"] is False
    assert early["met"]["ort_int8_vs_torch_fp32_ratio"] is True
    _write(tmp_path / "pipeline-20261202T001000.json",
           {"pipeline_vs_model_ratio": 0.95, "triton_pipeline_vs_triton_ratio": 0.89, "model": "m/1 (ort-int8)",
            "triton_bulk_pipeline_vs_triton_ratio": 0.93}, 3_000)
    result = summarise(tmp_path)
    assert result["sources"] == {"models": "models-20261202T000000.json", "pipeline": "pipeline-20261202T001000.json"}
    assert result["met"] == {"ort_int8_vs_torch_fp32_ratio": True, "pipeline_vs_model_ratio": True,
                             "triton_pipeline_vs_triton_ratio": False}  # the bulk ratio has no target
    assert result["triton_bulk_pipeline_vs_triton_ratio"] == 0.93 and early["triton_bulk_pipeline_vs_triton_ratio"] is None
    assert result["accuracy"]["ort-int8"]["sentiment"]["accuracy"] == 0.88
