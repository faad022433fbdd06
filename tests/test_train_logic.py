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
    assert set(PROFILES) == {"fast", "full"}
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
