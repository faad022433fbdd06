"""Teacher logits: raw, kept once, verified, and the source of a student's soft labels."""

import json

import pytest
import torch

from models import artifact, distill
from models.profiles import profile
from models.train import row_texts, teacher_labels
from sentimon.settings import get_settings

LIMIT = {"sentiment": 20, "topic": 30}


@pytest.fixture
def rows(train_sets):
    return {t: train_sets[t].sample(LIMIT[t], seed=0) for t in ("sentiment", "topic")}


def test_the_logits_are_the_teachers_raw_outputs_with_its_adjustments_kept_apart(tiny_model, rows):
    path, _ = tiny_model
    texts = row_texts(rows, ("sentiment", "topic"))
    taught = distill.compute(path, texts, progress=None)
    model, tokenizer, _ = artifact.load(path)
    adjust = model.logit_adjust_sentiment.clone()
    assert adjust.abs().sum() > 0, "the tiny model carries a sentiment prior correction"
    enc = tokenizer(texts[:5], padding=True, return_tensors="pt")
    with torch.inference_mode():
        adjusted = model(enc["input_ids"], enc["attention_mask"])["sentiment"]
    assert torch.allclose(taught.logits["sentiment"][:5], adjusted - adjust, atol=1e-4)
    assert torch.equal(taught.adjust["sentiment"], adjust)
    raw, corrected = taught.probabilities(2.0), taught.probabilities(2.0, adjusted=True)
    assert torch.allclose(raw["sentiment"][:5], torch.softmax((adjusted - adjust) / 2.0, dim=-1), atol=1e-5)
    assert torch.allclose(corrected["sentiment"][:5], torch.softmax(adjusted / 2.0, dim=-1), atol=1e-5)
    assert taught.meta["weights_sha256"] == artifact.sha256(path / artifact.WEIGHTS)


def test_kept_logits_are_checked_against_their_checksum_and_their_rows(tiny_model, rows, tmp_path):
    texts = row_texts(rows, ("sentiment", "topic"))
    folder = distill.save(distill.compute(tiny_model[0], texts, progress=None), tmp_path / "t")
    back = distill.load(folder, texts)
    assert torch.equal(back.logits["topic"], distill.load(folder).logits["topic"])
    assert json.loads((folder / distill.CARD).read_text())["row_count"] == 50
    with pytest.raises(ValueError, match="other training rows"):
        distill.load(folder, texts[::-1])
    data = bytearray((folder / distill.LOGITS).read_bytes())
    data[-1] ^= 1
    (folder / distill.LOGITS).write_bytes(bytes(data))
    with pytest.raises(ValueError, match="checksum"):
        distill.load(folder, texts)


def test_a_student_learns_from_kept_logits_without_the_teacher(tiny_model, rows, tmp_path, monkeypatch):
    texts = row_texts(rows, ("sentiment", "topic"))
    folder = distill.save(distill.compute(tiny_model[0], texts, progress=None), tmp_path / "sentimon-teacher")
    monkeypatch.setattr(distill, "TEACHER_DIR", tmp_path)
    monkeypatch.setattr(artifact, "load", lambda *_: (_ for _ in ()).throw(AssertionError("teacher loaded")))
    cfg = profile("release-distill", teacher="sentimon-teacher", train_limit=LIMIT)
    soft = teacher_labels(cfg, rows, tmp_path / "cache", log=lambda _: None)
    assert soft["sentiment"].shape == (50, 3) and soft["topic"].shape == (50, 20)
    assert torch.allclose(soft["topic"].sum(1), torch.ones(50), atol=1e-5)
    expected = distill.load(folder).probabilities(cfg.soft_temperature)
    assert torch.equal(soft["sentiment"], expected["sentiment"])
    adjusted = teacher_labels(cfg.model_copy(update={"teacher_adjusted": True}), rows, tmp_path / "c", log=print)
    assert not torch.allclose(adjusted["sentiment"], soft["sentiment"])


def test_an_ensemble_of_teachers_teaches_the_mean_of_their_logits(tiny_model, rows, tmp_path, monkeypatch):
    texts = row_texts(rows, ("sentiment", "topic"))
    one = distill.compute(tiny_model[0], texts, progress=None)
    shifted = distill.TeacherLogits({t: x + 2.0 * torch.arange(x.shape[1]) for t, x in one.logits.items()},
                                    {t: -a for t, a in one.adjust.items()}, one.rows, dict(one.meta, teacher="b"))
    distill.save(one, tmp_path / "a")
    distill.save(shifted, tmp_path / "b")
    monkeypatch.setattr(distill, "TEACHER_DIR", tmp_path)
    both = distill.for_rows("a+b", texts, tmp_path / "cache", log=lambda _: None)
    for t in ("sentiment", "topic"):
        assert torch.allclose(both.logits[t], one.logits[t] + torch.arange(one.logits[t].shape[1]), atol=1e-5)
        assert torch.allclose(both.adjust[t], torch.zeros_like(one.adjust[t]))
    assert both.meta["teacher"].endswith("+b") and len(both.meta["members"]) == 2
    cfg = profile("release-distill", teacher="a+b", train_limit=LIMIT)
    soft = teacher_labels(cfg, rows, tmp_path / "c", log=lambda _: None)
    assert torch.allclose(soft["topic"], both.probabilities(cfg.soft_temperature)["topic"])
    other = distill.TeacherLogits(one.logits, one.adjust, "other rows", one.meta)
    with pytest.raises(ValueError, match="same training rows"):
        distill.ensemble([one, other])


def test_a_teacher_model_is_run_once_and_its_logits_kept(tiny_model, rows, tmp_path, monkeypatch):
    cfg = profile("release-distill", teacher=str(tiny_model[0]), train_limit=LIMIT)
    cache = tmp_path / "teacher"
    soft = teacher_labels(cfg, rows, cache, log=lambda _: None)
    assert distill.is_logits_dir(cache)
    load = artifact.load
    monkeypatch.setattr(artifact, "load", lambda *_: (_ for _ in ()).throw(AssertionError("teacher loaded again")))
    assert torch.equal(teacher_labels(cfg, rows, cache, log=lambda _: None)["topic"], soft["topic"])
    # other rows: the kept logits do not fit them, so the teacher is asked again
    with pytest.raises(AssertionError, match="loaded again"):
        teacher_labels(cfg, {t: d.sample(10, seed=1) for t, d in rows.items()}, cache, log=lambda _: None)
    monkeypatch.setattr(artifact, "load", load)
    with pytest.raises(FileNotFoundError, match="sentimon teacher"):
        teacher_labels(cfg.model_copy(update={"teacher": str(tmp_path / "nothing")}), rows, cache, log=print)


def test_the_teacher_command_writes_logits_for_a_profiles_rows(tiny_model, rows, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from models import profiles
    from models.train import training_rows
    from sentimon.cli import app

    from sentimon.cli import common, models

    small = profiles.PROFILES["release-distill"].model_copy(update={"train_limit": LIMIT})
    monkeypatch.setitem(profiles.PROFILES, "small", small)
    # the validation figures on 100 rows a task, to keep the test short
    monkeypatch.setattr(models, "_sets", lambda split: {t: d.sample(100, seed=0) if split == "valid" else d
                                                        for t, d in common._sets(split).items()})
    # and on 80 rows of each transfer set
    from models import evaluate

    transfer = {name: d.sample(80, seed=0) for name, d in evaluate.transfer_sets(get_settings().eval_dir).items()}
    assert "fiqa_posts" in transfer
    monkeypatch.setattr(evaluate, "transfer_sets", lambda eval_dir: transfer)
    res = CliRunner().invoke(app, ["teacher", str(tiny_model[0]), "--profile", "small", "--out", str(tmp_path / "t")])
    assert res.exit_code == 0, res.output
    texts = row_texts(training_rows(small, common._sets("train"))[0], small.tasks)
    taught = distill.load(tmp_path / "t", texts)
    assert taught.logits["sentiment"].shape == (len(texts), 3)
    figures = taught.meta["validation"]
    assert set(figures) == {"sentiment", "topic"} and figures["topic"]["n"] == 100
    assert "teacher on the topic validation split" in res.output
    # the teacher's figures are its own predictions' (adjustments included), as the evaluation scores them
    from models.classifier import Classifier
    from models.evaluate import score_sets

    valid = {t: d.sample(100, seed=0) for t, d in common._sets("valid").items()}
    probs = score_sets(Classifier.load(tiny_model[0]), valid)
    for task, data in valid.items():
        expected = float((probs[task].argmax(1) == data.labels).mean())
        assert figures[task]["accuracy"] == pytest.approx(expected, abs=0.015)
    # the transfer sets too, each beside the released model's figure in the output
    scored = score_sets(Classifier.load(tiny_model[0]), {"sentiment": transfer["fiqa_posts"]})["sentiment"]
    fiqa = taught.meta["transfer"]["fiqa_posts"]
    assert set(taught.meta["transfer"]) == set(transfer) and fiqa["n"] == 80
    assert fiqa["accuracy"] == pytest.approx(float((scored.argmax(1) == transfer["fiqa_posts"].labels).mean()), abs=0.02)
    assert 0 <= fiqa["clear_called_neutral"] <= 1
    release = artifact.read_json(artifact.resolve("auto", get_settings().models_dir).path / "metrics.json")
    assert f"(release {release['transfer']['fiqa_posts']['model']['accuracy']:.4f})" in res.output
    res = CliRunner().invoke(app, ["teacher", str(tiny_model[0]), "--profile", "huge"])
    assert res.exit_code != 0 and "unknown profile" in res.output


def test_a_student_trains_on_counterfactual_rows_beside_the_teachers(tiny_model, train_sets, valid_small, tmp_path):
    from models.train import train

    limit = {"sentiment": 200, "topic": 30}
    cfg = profile("release-distill", teacher=str(tiny_model[0]), train_limit=limit, augment=1.0, epochs=1.0,
                  eval_limit=20, cross_task=0.0)
    _, record = train(cfg, train_sets, valid_small, tmp_path / "run", None, progress=False, log=lambda _: None)
    assert record["counterfactual_rows"] > 0
    rows = sum(record["train_rows"].values())
    assert record["steps"] == -(-(rows + record["counterfactual_rows"]) // cfg.batch_size)


def test_the_committed_teacher_logits_pair_with_the_distillation_rows():
    """The logits in the repository verify (checksum) and still key to the rows release-distill trains on: a
    changed split or text preparation fails here, not as silently mismatched soft labels."""
    from models import profiles
    from models.train import training_rows
    from sentimon.cli import common

    config = profiles.PROFILES["release-distill"]
    texts = row_texts(training_rows(config, common._sets("train"))[0], config.tasks)
    for name in ("sentimon-teacher", "sentimon-teacher3"):  # the second is the one `make models-distill` uses
        folder = distill.find(name)
        assert folder is not None and folder.is_relative_to(distill.TEACHER_DIR)
        taught = distill.load(folder, texts)
        assert {t: x.shape for t, x in taught.logits.items()} == {"sentiment": (len(texts), 3), "topic": (len(texts), 20)}
        assert taught.meta["backbone"] == "all-mpnet-base-v2" and taught.meta["validation"]["sentiment"]["accuracy"] > 0.88


def test_a_teacher_is_flagged_on_the_sets_where_it_is_below_the_reference():
    teacher = {"fiqa_posts": {"accuracy": 0.665}, "fpb50": {"accuracy": 0.772}, "new_set": {"accuracy": 0.1}}
    reference = {"fiqa_posts": {"accuracy": 0.684}, "fpb50": {"accuracy": 0.753}, "semeval": {"accuracy": 0.5}}
    assert distill.below(teacher, reference) == ["fiqa_posts"]
    assert distill.below(teacher, reference, margin=0.02) == []
    assert distill.below({}, reference) == []
