import numpy as np
import pytest

from models.metrics import expected_calibration_error, report


def test_report_numbers():
    y = [0, 0, 1, 1, 2]
    probs = np.eye(3)[[0, 1, 1, 1, 0]]
    rep = report(y, probs, ("a", "b", "c"))
    assert rep["accuracy"] == pytest.approx(3 / 5)
    assert rep["per_class"]["a"] == {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2}
    assert rep["per_class"]["b"]["precision"] == pytest.approx(2 / 3)
    assert rep["per_class"]["c"]["f1"] == 0.0
    assert rep["macro_f1"] == pytest.approx((0.5 + 0.8 + 0.0) / 3)
    assert rep["confusion"] == [[1, 1, 0], [0, 2, 0], [1, 0, 0]]


def test_ece_zero_when_confidence_matches_accuracy():
    # confidence 0.75 on four items, three right: perfectly calibrated
    probs = np.array([[0.75, 0.25]] * 4)
    assert expected_calibration_error([0, 0, 0, 1], probs) == pytest.approx(0.0)


def test_ece_of_overconfident_model():
    probs = np.array([[0.99, 0.01]] * 10)
    assert expected_calibration_error([0] * 5 + [1] * 5, probs) == pytest.approx(0.49)
