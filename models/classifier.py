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
from tqdm.auto import tqdm
from transformers import PreTrainedTokenizerBase

from models import artifact
from models.batching import inference_batches, pad_arrays
from models.labels import LABELS, Task, signed_score
from models.network import MultiTaskClassifier
from models.preprocess import check_text
from models.profiles import test_model_warning
from models.runtime import Runtime, RuntimeName, TorchRuntime, build, version_suffix

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


def token_ids(tokenizer: PreTrainedTokenizerBase, texts: Sequence[str], max_length: int) -> list[list[int]]:
    """Token ids of prepared texts, truncated to ``max_length``, in one batched call of the fast
    (Rust) tokenizer when the tokenizer has one."""
    if not texts:
        return []
    fast = getattr(tokenizer, "_tokenizer", None)
    if fast is None:
        return tokenizer(list(texts), truncation=True, max_length=max_length)["input_ids"]
    # the Rust tokenizer directly: the same ids as tokenizer(...) without building a BatchEncoding
    # (its truncation setting is per call in transformers too, so setting it here changes nothing else)
    fast.enable_truncation(max_length)
    fast.no_padding()
    return [e.ids for e in fast.encode_batch(list(texts), add_special_tokens=True)]


def predict_proba(
    model: MultiTaskClassifier | Runtime,
    tokenizer: PreTrainedTokenizerBase,
    texts: Sequence[str],
    max_length: int,
    batch_size: int = 64,
) -> dict[Task, np.ndarray]:
    """Probabilities per task, shape (len(texts), n_labels), in input order. Texts must be prepared.
    ``model`` is a runtime (:mod:`models.runtime`) or a torch network (run as ``torch-fp32``)."""
    runtime = model if hasattr(model, "probabilities") else TorchRuntime(model)
    ids = token_ids(tokenizer, texts, max_length)
    out = {task: np.zeros((len(ids), len(LABELS[task])), dtype=np.float32) for task in runtime.tasks}
    batches = inference_batches([len(x) for x in ids], batch_size)
    # a bar only for long jobs on a terminal (disable=None turns it off when stderr is not a TTY)
    for batch in tqdm(batches, desc="scoring", unit="batch", leave=False, disable=None if len(batches) > 20 else True):
        input_ids, mask = pad_arrays([ids[i] for i in batch], tokenizer.pad_token_id)
        for task, probs in runtime.probabilities(input_ids, mask).items():
            out[task][batch] = probs
    return out


@dataclass
class Classifier:
    """A loaded model version ready to score texts."""

    runtime: Runtime
    tokenizer: PreTrainedTokenizerBase
    name: str
    version: str
    max_length: int = 64
    batch_size: int = 64
    training: dict = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path | str, *, runtime: RuntimeName = "torch-fp32", threads: int | None = None,
             cache_dir: Path | None = None, batch_size: int = 64, name: str | None = None) -> "Classifier":
        """Load a version directory (see :mod:`models.artifact`) to run on ``runtime``
        (:mod:`models.runtime`). ``threads`` is ONNX Runtime's per session (torch's: the process's
        ``torch.get_num_threads()``, its default too); ``cache_dir`` keeps the derived ONNX files."""
        import torch

        path = Path(path)
        if runtime.startswith("ort-") and cache_dir is not None:
            # ONNX Runtime needs the torch network only to write a missing ONNX file
            tasks, tokenizer, training = artifact.load_checked(path)
            runner = build(path, None, runtime, threads=threads or torch.get_num_threads(), cache_dir=cache_dir,
                           tasks=tasks)
        else:
            model, tokenizer, training = artifact.load(path)
            runner = build(path, model, runtime, threads=threads or torch.get_num_threads(), cache_dir=cache_dir)
        return cls(
            runner,
            tokenizer,
            name or path.parent.name,
            path.name + version_suffix(runtime),
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
        return predict_proba(self.runtime, self.tokenizer, prepared, self.max_length, self.batch_size)

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
