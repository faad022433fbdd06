"""Classification metrics (pure functions over label indices and probabilities)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.metrics import confusion_matrix, f1_score, precision_recall_fscore_support


def expected_calibration_error(y_true: Sequence[int], probs: np.ndarray, bins: int = 15) -> float:
    """ECE: the confidence-weighted gap between confidence and accuracy over equal-width bins."""
    probs = np.asarray(probs, dtype=np.float64)
    y = np.asarray(y_true)
    if len(y) == 0:
        return 0.0
    confidence = probs.max(axis=1)
    correct = probs.argmax(axis=1) == y
    edges = np.linspace(0.0, 1.0, bins + 1)
    ece = 0.0
    for lo, hi in zip(edges[:-1], edges[1:]):
        in_bin = (confidence > lo) & (confidence <= hi)
        if in_bin.any():
            ece += in_bin.mean() * abs(correct[in_bin].mean() - confidence[in_bin].mean())
    return float(ece)


def report(y_true: Sequence[int], probs: np.ndarray, labels: Sequence[str]) -> dict:
    """Accuracy, macro-F1, per-class precision/recall/F1/support, confusion matrix and ECE."""
    y = np.asarray(y_true)
    pred = np.asarray(probs).argmax(axis=1)
    ids = list(range(len(labels)))
    p, r, f, s = precision_recall_fscore_support(y, pred, labels=ids, zero_division=0)
    return {
        "n": int(len(y)),
        "accuracy": float((pred == y).mean()) if len(y) else 0.0,
        "macro_f1": float(f1_score(y, pred, labels=ids, average="macro", zero_division=0)),
        "ece": expected_calibration_error(y, probs),
        "per_class": {
            name: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(s[i])}
            for i, name in enumerate(labels)
        },
        "confusion": confusion_matrix(y, pred, labels=ids).tolist(),
    }


def summary(rep: dict) -> dict:
    """The headline numbers of a report."""
    return {k: rep[k] for k in ("n", "accuracy", "macro_f1", "ece")}
