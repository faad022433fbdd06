"""Bootstrap intervals and paired tests (models.significance) against direct computation."""

import numpy as np
import pytest
from sklearn.metrics import f1_score

from models.significance import intervals, paired


def noisy(y: np.ndarray, right: float, k: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.where(rng.random(len(y)) < right, y, rng.integers(0, k, len(y)))


def test_intervals_hold_the_point_value_and_narrow_with_more_rows():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 5, 3000)
    pred = noisy(y, 0.8, 5, 1)
    r = intervals(y, pred, 5)
    assert r["accuracy"]["value"] == pytest.approx(float((pred == y).mean()))
    assert r["macro_f1"]["value"] == pytest.approx(f1_score(y, pred, average="macro"))
    for metric in ("accuracy", "macro_f1"):
        lo, hi = r[metric]["ci"]
        assert lo < r[metric]["value"] < hi and hi - lo < 0.05
    small = intervals(y[:300], pred[:300], 5)
    assert np.diff(small["accuracy"]["ci"])[0] > 2 * np.diff(r["accuracy"]["ci"])[0]
    assert intervals(y, pred, 5) == r  # seeded


def test_a_class_never_seen_counts_as_f1_zero_like_sklearn():
    y = np.array([0, 0, 1, 1, 2, 2])
    pred = np.array([0, 1, 1, 1, 0, 2])
    r = intervals(y, pred, 4)
    assert r["macro_f1"]["value"] == pytest.approx(f1_score(y, pred, labels=[0, 1, 2, 3], average="macro", zero_division=0))


def test_paired_test_finds_a_real_difference_and_not_a_fake_one():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 3, 2000)
    better, worse = noisy(y, 0.9, 3, 4), noisy(y, 0.8, 3, 5)
    r = paired(y, better, worse, 3)
    assert r["accuracy"]["difference"] > 0 and r["accuracy"]["ci"][0] > 0
    assert r["accuracy"]["p_a_not_better"] < 0.01 and r["mcnemar"]["p_value"] < 0.01
    assert r["mcnemar"]["only_a_right"] > r["mcnemar"]["only_b_right"]
    same = paired(y, better, better, 3)
    assert same["accuracy"]["difference"] == 0 and same["mcnemar"]["p_value"] == 1.0
    close = paired(y, noisy(y, 0.85, 3, 6), noisy(y, 0.85, 3, 7), 3)
    assert close["accuracy"]["ci"][0] < 0 < close["accuracy"]["ci"][1]


def test_paired_refuses_mismatched_rows():
    with pytest.raises(ValueError, match="same"):
        paired([0, 1], [0], [0, 1], 2)
