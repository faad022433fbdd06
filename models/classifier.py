"""The inference API every later stage uses: ``Classifier.predict(texts) -> list[Prediction | PredictionError]``.

Inputs are checked one by one (:func:`models.preprocess.check_text`): a bad item yields a
:class:`PredictionError` in its place, never a failed batch. Valid texts are scored in length-sorted
batches, truncated to the model's ``max_length`` tokens.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm
from transformers import PreTrainedTokenizerBase

from models import artifact
from models.batching import inference_batches, pad
from models.labels import LABELS, Task, signed_score
from models.network import MultiTaskClassifier
from models.preprocess import check_text
from models.profiles import test_model_warning

MAX_CHARS = 20_000


@dataclass(frozen=True)
class Prediction:
    """Scores of one text. Probabilities are keyed by label name; ``score`` = P(positive) - P(negative)."""

    sentiment: str
    sentiment_probs: dict[str, float]
    score: float
    topic: str
    topic_probs: dict[str, float]
    model: str
    version: str
    truncated: bool = False


@dataclass(frozen=True)
class PredictionError:
    """Why one input could not be scored."""

    error: str
    model: str
    version: str


@torch.inference_mode()
def predict_proba(
    model: MultiTaskClassifier,
    tokenizer: PreTrainedTokenizerBase,
    texts: Sequence[str],
    max_length: int,
    batch_size: int = 64,
) -> dict[Task, np.ndarray]:
    """Probabilities per task, shape (len(texts), n_labels), in input order. Texts must be prepared."""
    ids = tokenizer(list(texts), truncation=True, max_length=max_length)["input_ids"] if texts else []
    out = {task: np.zeros((len(ids), len(LABELS[task])), dtype=np.float32) for task in model.tasks}
    batches = inference_batches([len(x) for x in ids], batch_size)
    # a bar only for long jobs on a terminal (disable=None turns it off when stderr is not a TTY)
    for batch in tqdm(batches, desc="scoring", unit="batch", leave=False, disable=None if len(batches) > 20 else True):
        input_ids, mask = pad([ids[i] for i in batch], tokenizer.pad_token_id)
        logits = model(input_ids, mask)
        for task in model.tasks:
            out[task][batch] = torch.softmax(logits[task].float(), dim=-1).numpy()
    return out


def quantize_int8(model: MultiTaskClassifier) -> MultiTaskClassifier:
    """Dynamic int8 quantization of every Linear layer (weights int8, activations quantized per batch)."""
    return torch.ao.quantization.quantize_dynamic(model, {nn.Linear}, dtype=torch.qint8)


@dataclass
class Classifier:
    """A loaded model version ready to score texts."""

    model: MultiTaskClassifier
    tokenizer: PreTrainedTokenizerBase
    name: str
    version: str
    max_length: int = 64
    batch_size: int = 64
    training: dict = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path | str, *, int8: bool = False, batch_size: int = 64, name: str | None = None) -> "Classifier":
        """Load a version directory (see :mod:`models.artifact`); ``int8`` quantizes it for CPU."""
        path = Path(path)
        model, tokenizer, training = artifact.load(path)
        if int8:
            model = quantize_int8(model)
        version = path.name + ("-int8" if int8 else "")
        return cls(
            model,
            tokenizer,
            name or path.parent.name,
            version,
            max_length=artifact.max_length(training),
            batch_size=batch_size,
            training=training,
        )

    @property
    def test_model(self) -> str | None:
        """A warning to show wherever this model is used when it is a test model, else None."""
        return test_model_warning(self.name, self.training)

    def describe(self) -> dict:
        """Profile, parameter count and whether it is a test model (for reports and logs)."""
        return {"profile": self.training.get("config", {}).get("profile"), "parameters": self.training.get("parameters"),
                "test_model": self.test_model is not None}

    def proba(self, prepared: Sequence[str]) -> dict[Task, np.ndarray]:
        return predict_proba(self.model, self.tokenizer, prepared, self.max_length, self.batch_size)

    def predict(self, texts: Sequence[object]) -> list[Prediction | PredictionError]:
        """Score texts; each item gets a Prediction or a PredictionError, in input order."""
        checked = check_texts(texts)
        return predictions(checked, self.proba([c[0] for c in checked if c[0] is not None]), self.name, self.version)


Checked = tuple[str | None, str | None, bool]


def check_texts(texts: Sequence[object]) -> list[Checked]:
    """Per input: (prepared text, error, truncated), see :func:`models.preprocess.check_text`."""
    return [check_text(item, MAX_CHARS) for item in texts]


def predictions(checked: Sequence[Checked], probs: dict[Task, np.ndarray], name: str, version: str
                ) -> list[Prediction | PredictionError]:
    """Predictions from the probabilities of the valid inputs (rows in input order), errors for the rest.
    Every backend (in-process, Triton) ends here, so they label and score identically."""
    results: list[Prediction | PredictionError] = []
    sentiment_names, topic_names = LABELS["sentiment"], LABELS["topic"]
    row = 0
    for text, error, truncated in checked:
        if text is None:
            results.append(PredictionError(error or "", name, version))
            continue
        ps, pt = probs["sentiment"][row], probs["topic"][row]
        row += 1
        s_probs = {label: float(p) for label, p in zip(sentiment_names, ps)}
        results.append(Prediction(
            sentiment=sentiment_names[int(ps.argmax())],
            sentiment_probs=s_probs,
            score=signed_score(s_probs["negative"], s_probs["positive"]),
            topic=topic_names[int(pt.argmax())],
            topic_probs={label: float(p) for label, p in zip(topic_names, pt)},
            model=name,
            version=version,
            truncated=truncated,
        ))
    return results
