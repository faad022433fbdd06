"""The bar every neural model must clear: TF-IDF (word 1-2 + char 2-5 n-grams) + logistic regression."""

from __future__ import annotations

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_union

from models.dataset import LabelledTexts
from models.labels import LABELS, Task
from models.preprocess import prepare


class TfidfBaseline:
    """One TF-IDF + logistic-regression classifier per task, trained on that task's split."""

    def __init__(self, task: Task, balanced: bool = True, c: float = 10.0):
        self.task = task
        self.pipeline = Pipeline(
            [
                (
                    "features",
                    make_union(
                        TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True),
                        TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), min_df=2, sublinear_tf=True),
                    ),
                ),
                (
                    "classifier",
                    LogisticRegression(C=c, max_iter=2000, class_weight="balanced" if balanced else None),
                ),
            ]
        )

    def fit(self, data: LabelledTexts) -> "TfidfBaseline":
        if data.task != self.task:
            raise ValueError(f"baseline for {self.task} given {data.task} data")
        self.pipeline.fit([prepare(x) for x in data.texts], data.labels)
        return self

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        """(n, n_labels) probabilities over ``LABELS[task]``, zero for classes absent in training."""
        probs = self.pipeline.predict_proba([prepare(x) for x in texts])
        out = np.zeros((len(texts), len(LABELS[self.task])), dtype=np.float32)
        out[:, self.pipeline.classes_] = probs
        return out

    @property
    def parameters(self) -> int:
        clf = self.pipeline.named_steps["classifier"]
        return int(clf.coef_.size + clf.intercept_.size)
