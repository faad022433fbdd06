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


def clear_called_neutral(y_true: Sequence[int], pred: Sequence[int], labels: Sequence[str]) -> float | None:
    """Share of the clearly toned rows (true label not neutral) that were called neutral; None without a
    neutral label or without such rows. The signed score drives alerts, so this is tone the desk never sees."""
    if "neutral" not in labels:
        return None
    neutral = list(labels).index("neutral")
    y, p = np.asarray(y_true), np.asarray(pred)
    clear = y != neutral
    return float((p[clear] == neutral).mean()) if clear.any() else None


def report(y_true: Sequence[int], probs: np.ndarray, labels: Sequence[str], *, intervals: bool = False) -> dict:
    """Accuracy, macro-F1, per-class precision/recall/F1/support, confusion matrix and ECE; with
    ``intervals`` also 95% bootstrap intervals of accuracy and macro-F1 (``accuracy_ci``, ``macro_f1_ci``)."""
    y = np.asarray(y_true)
    pred = np.asarray(probs).argmax(axis=1)
    ids = list(range(len(labels)))
    p, r, f, s = precision_recall_fscore_support(y, pred, labels=ids, zero_division=0)
    extra: dict = {}
    if intervals and len(y):
        from models.significance import intervals as bootstrap

        boot = bootstrap(y, pred, len(labels))
        extra = {"accuracy_ci": boot["accuracy"]["ci"], "macro_f1_ci": boot["macro_f1"]["ci"]}
    neutral_share = clear_called_neutral(y, pred, labels)
    if neutral_share is not None:
        extra["clear_called_neutral"] = neutral_share
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
        **extra,
    }


HEADLINE = ("n", "accuracy", "accuracy_ci", "macro_f1", "macro_f1_ci", "ece", "clear_called_neutral")


def summary(rep: dict) -> dict:
    """The headline numbers of a report (intervals and the neutral share where the report has them)."""
    return {k: rep[k] for k in HEADLINE if k in rep}
