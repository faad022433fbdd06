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
