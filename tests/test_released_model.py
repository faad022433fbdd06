"""The released model as a fresh clone gets it: sealed, found by default, its recorded figures
reproduced by `sentimon evaluate --json` (slow: scores 6,500 texts, about a minute)."""

import json

import pytest
from typer.testing import CliRunner

from models import artifact

pytestmark = pytest.mark.slow

TARGETS = {"sentiment": 0.89, "topic": 0.91}
TOPIC_MACRO_F1 = 0.85
MAX_PARAMETERS = 25_000_000


def release_metrics(tmp_path) -> dict:
    return artifact.read_json(artifact.resolve("auto", tmp_path / "none").path / "metrics.json")


def test_the_default_model_is_the_sealed_release(tmp_path):
    ref = artifact.resolve("auto", tmp_path / "no-trained-models")
    assert ref.path.is_relative_to(artifact.RELEASED_DIR)
    artifact.verify_checksums(ref.path)  # raises on any damaged file
    listed = {line.split("  ", 1)[1] for line in (ref.path / artifact.CHECKSUMS).read_text().splitlines()}
    assert {"model.safetensors", "tokenizer.json", "labels.json", "metrics.json", "README.md"} <= listed
    assert sum(p.stat().st_size for p in ref.path.iterdir()) < 55e6
    training = artifact.load_training(ref.path)
    assert training["parameters"] <= MAX_PARAMETERS and training["config"]["profile"].startswith("release")


def test_evaluate_json_on_a_fresh_clone_reproduces_the_release_figures(tmp_path, monkeypatch):
    from sentimon.cli import app

    monkeypatch.setenv("SENTIMON_VAR_DIR", str(tmp_path / "var"))  # nothing trained: the release is the default
    recorded = release_metrics(tmp_path)["validation"]  # the trained network's figures (torch fp32)
    runs = {}
    for runtime in ("torch-fp32", None):  # then the scoring default, ONNX Runtime int8
        res = CliRunner().invoke(app, ["evaluate", "--json", "--no-baseline", "--no-transfer",
                                       *(["--runtime", runtime] if runtime else [])])
        assert res.exit_code == 0, res.output
        runs[runtime] = json.loads(res.stdout)
    out = runs["torch-fp32"]
    assert out["model"]["path"].startswith(str(artifact.RELEASED_DIR))
    assert out["model"]["parameters"] <= MAX_PARAMETERS and not out["model"]["test_model"]
    for task in TARGETS:
        report = out["validation"][task]["model"]
        assert report["accuracy"] == pytest.approx(recorded[task]["model"]["accuracy"], abs=1e-9)
        assert report["macro_f1"] == pytest.approx(recorded[task]["model"]["macro_f1"], abs=1e-9)
        lo, hi = report["accuracy_ci"]
        assert lo < report["accuracy"] < hi
        # the bar every neural model must clear: the TF-IDF baseline, beaten beyond its interval
        assert lo > recorded[task]["baseline"]["accuracy"]
    # the int8 default may cost at most 0.3 points of either task (the rule that made it the default)
    default = runs[None]
    version = artifact.resolve("auto", tmp_path / "none").version
    assert default["model"]["runtime"] == "ort-int8" and default["model"]["version"] == f"{version}-ort-int8"
    for task in TARGETS:
        assert default["validation"][task]["model"]["accuracy"] >= recorded[task]["model"]["accuracy"] - 0.003


@pytest.mark.xfail(strict=True, reason="the released model is short of the accuracy targets (docs/models.md)")
def test_the_release_meets_the_accuracy_targets(tmp_path):
    recorded = release_metrics(tmp_path)["validation"]
    for task, target in TARGETS.items():
        assert recorded[task]["model"]["accuracy"] >= target, task
    assert recorded["topic"]["model"]["macro_f1"] >= TOPIC_MACRO_F1
