"""The released model as a fresh clone gets it: sealed, found by default, and meeting its targets on
the validation splits (slow: scores 6,500 texts, about a minute)."""

import json

import pytest
from typer.testing import CliRunner

from models import artifact

pytestmark = pytest.mark.slow

TARGETS = {"sentiment": 0.89, "topic": 0.91}
TOPIC_MACRO_F1 = 0.85
MAX_PARAMETERS = 25_000_000


def test_the_default_model_is_the_sealed_release(tmp_path):
    ref = artifact.resolve("auto", tmp_path / "no-trained-models")
    assert ref.path.is_relative_to(artifact.RELEASED_DIR)
    artifact.verify_checksums(ref.path)  # raises on any damaged file
    listed = {line.split("  ", 1)[1] for line in (ref.path / artifact.CHECKSUMS).read_text().splitlines()}
    assert {"model.safetensors", "tokenizer.json", "labels.json", "metrics.json", "README.md"} <= listed
    size = sum(p.stat().st_size for p in ref.path.iterdir())
    assert size < 55e6
    training = artifact.load_training(ref.path)
    assert training["parameters"] <= MAX_PARAMETERS and training["config"]["profile"] == "release"


def test_evaluate_json_on_a_fresh_clone_meets_the_targets(tmp_path, monkeypatch):
    from sentimon.cli import app

    monkeypatch.setenv("SENTIMON_VAR_DIR", str(tmp_path / "var"))  # nothing trained: the release is the default
    res = CliRunner().invoke(app, ["evaluate", "--json", "--no-baseline", "--no-transfer"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["model"]["path"].startswith(str(artifact.RELEASED_DIR))
    assert out["model"]["parameters"] <= MAX_PARAMETERS and not out["model"]["test_model"]
    for task, target in TARGETS.items():
        report = out["validation"][task]["model"]
        assert report["accuracy"] >= target, (task, report["accuracy"])
        lo, hi = report["accuracy_ci"]
        assert lo < report["accuracy"] < hi
    assert out["validation"]["topic"]["model"]["macro_f1"] >= TOPIC_MACRO_F1
    # the figures the release recorded are the ones it reproduces
    recorded = artifact.read_json(artifact.resolve("auto", tmp_path).path / "metrics.json")["validation"]
    for task in TARGETS:
        assert out["validation"][task]["model"]["accuracy"] == pytest.approx(recorded[task]["model"]["accuracy"], abs=1e-9)
