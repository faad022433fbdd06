"""Uncertainty of the headline metrics: bootstrap intervals and paired tests between two models.

Pure functions over label indices. A bootstrap resample is drawn as per-row multiplicities (a
multinomial over the rows), so accuracy and macro-F1 of 1,000 resamples come from weighted confusion
counts without re-running anything. Seeded: the same inputs give the same intervals.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.stats import binomtest

RESAMPLES = 1000
LEVEL = 0.95


def _resample_weights(n: int, resamples: int, seed: int) -> np.ndarray:
    """(resamples, n) row multiplicities, each row summing to n."""
    rng = np.random.default_rng(seed)
    return rng.multinomial(n, np.full(n, 1.0 / n), size=resamples).astype(np.float64)


def _scores(y: np.ndarray, pred: np.ndarray, k: int, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Accuracy and macro-F1 under each weighting row of ``weights`` (shape (R, n))."""
    cell = y * k + pred
    one_hot = np.zeros((len(y), k * k))
    one_hot[np.arange(len(y)), cell] = 1.0
    confusion = (weights @ one_hot).reshape(-1, k, k)  # (R, true, predicted)
    tp = np.diagonal(confusion, axis1=1, axis2=2)
    total = confusion.sum(axis=(1, 2))
    accuracy = tp.sum(axis=1) / total
    denominator = confusion.sum(axis=2) + confusion.sum(axis=1)  # 2tp + fn + fp
    f1 = np.divide(2 * tp, denominator, out=np.zeros_like(tp), where=denominator > 0)
    return accuracy, f1.mean(axis=1)


def scores(y_true: Sequence[int], pred: Sequence[int], n_labels: int) -> tuple[float, float]:
    """Accuracy and macro-F1 of one set of predictions (a class never seen nor predicted counts as F1 0)."""
    y, p = np.asarray(y_true, dtype=np.int64), np.asarray(pred, dtype=np.int64)
    accuracy, macro_f1 = _scores(y, p, n_labels, np.ones((1, len(y))))
    return float(accuracy[0]), float(macro_f1[0])


def _interval(values: np.ndarray, level: float) -> list[float]:
    tail = (1 - level) / 2 * 100
    return [float(np.percentile(values, tail)), float(np.percentile(values, 100 - tail))]


def intervals(
    y_true: Sequence[int], pred: Sequence[int], n_labels: int, *, resamples: int = RESAMPLES, level: float = LEVEL,
    seed: int = 0,
) -> dict:
    """Accuracy and macro-F1 with percentile bootstrap intervals: {'accuracy': {'value', 'ci'}, ...}."""
    y, p = np.asarray(y_true, dtype=np.int64), np.asarray(pred, dtype=np.int64)
    if len(y) == 0:
        raise ValueError("no rows to evaluate")
    point = _scores(y, p, n_labels, np.ones((1, len(y))))
    boot = _scores(y, p, n_labels, _resample_weights(len(y), resamples, seed))
    return {
        name: {"value": float(point[i][0]), "ci": _interval(boot[i], level)}
        for i, name in enumerate(("accuracy", "macro_f1"))
    }


def paired(
    y_true: Sequence[int], pred_a: Sequence[int], pred_b: Sequence[int], n_labels: int, *,
    resamples: int = RESAMPLES, level: float = LEVEL, seed: int = 0,
) -> dict:
    """Model A against model B on the same rows.

    Per metric: the difference A - B, its paired bootstrap interval (both models scored on each
    resample) and the one-sided bootstrap p-value that A is not better (share of resamples with
    difference <= 0). For accuracy also McNemar's exact test on the rows where exactly one is right.
    """
    y = np.asarray(y_true, dtype=np.int64)
    a, b = np.asarray(pred_a, dtype=np.int64), np.asarray(pred_b, dtype=np.int64)
    if not (len(y) == len(a) == len(b)) or len(y) == 0:
        raise ValueError("paired comparison needs both models' predictions for the same, non-empty rows")
    weights = _resample_weights(len(y), resamples, seed)
    ones = np.ones((1, len(y)))
    point_a, point_b = _scores(y, a, n_labels, ones), _scores(y, b, n_labels, ones)
    boot_a, boot_b = _scores(y, a, n_labels, weights), _scores(y, b, n_labels, weights)
    out: dict = {}
    for i, name in enumerate(("accuracy", "macro_f1")):
        diff = boot_a[i] - boot_b[i]
        out[name] = {
            "a": float(point_a[i][0]),
            "b": float(point_b[i][0]),
            "difference": float(point_a[i][0] - point_b[i][0]),
            "ci": _interval(diff, level),
            "p_a_not_better": float((diff <= 0).mean()),
        }
    only_a = int(((a == y) & (b != y)).sum())
    only_b = int(((b == y) & (a != y)).sum())
    out["mcnemar"] = {
        "only_a_right": only_a,
        "only_b_right": only_b,
        "p_value": float(binomtest(only_a, only_a + only_b, 0.5).pvalue) if only_a + only_b else 1.0,
    }
    return out
