"""The scoring stage's classifier interface and its logic: documents -> scored documents (no I/O).

:class:`Scorer` is the one small interface the stage talks to. ``LocalScorer`` runs the model
in-process; ``NoopScorer`` returns neutral scores without a model, to measure the pipeline's own
overhead (``make bench``). A Triton scorer arrives with the Triton issue behind the same interface.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import orjson

from models.classifier import Prediction, PredictionError
from models.labels import SENTIMENT_LABELS, TOPIC_LABELS
from schemas.base import iso_ms, now_utc
from sentimon.settings import Settings


class Scorer(Protocol):
    name: str
    version: str

    def score(self, texts: Sequence[str]) -> list[Prediction | PredictionError]:
        """One result per text, in order; a bad text gives a PredictionError, never an exception."""
        ...


class LocalScorer:
    """The model in this process (:class:`models.classifier.Classifier`)."""

    def __init__(self, classifier):
        self.classifier = classifier
        self.name, self.version = classifier.name, classifier.version

    def score(self, texts: Sequence[str]) -> list[Prediction | PredictionError]:
        return self.classifier.predict(texts)


class NoopScorer:
    """Neutral scores for every text without running a model: the pipeline's own cost, nothing else."""

    name, version = "noop", "0"
    _probs = {label: (1.0 if label == "neutral" else 0.0) for label in SENTIMENT_LABELS}
    _topics = {label: 1.0 / len(TOPIC_LABELS) for label in TOPIC_LABELS}

    def score(self, texts: Sequence[str]) -> list[Prediction | PredictionError]:
        one = Prediction("neutral", self._probs, 0.0, TOPIC_LABELS[9], self._topics, self.name, self.version)
        return [one] * len(texts)


def make_scorer(settings: Settings) -> Scorer:
    """The scorer the settings ask for; the local model is resolved like ``sentimon predict`` does."""
    if settings.scoring.backend == "noop":
        return NoopScorer()
    import torch

    from models import artifact
    from models.classifier import Classifier

    torch.set_num_threads(settings.threads)
    ref = artifact.resolve(settings.model, settings.models_dir)
    return LocalScorer(Classifier.load(ref.path, int8=settings.scoring.int8, batch_size=settings.scoring.batch_size))


def score_fields(doc_id: str, p: Prediction, scored_at: str) -> dict:
    """The :class:`Score` of one prediction as its JSON object (``scored_at`` already ISO-8601 UTC)."""
    return {
        "schema_version": 1,
        "doc_id": doc_id,
        "model": p.model,
        "model_version": p.version,
        "scored_at": scored_at,
        "sentiment": p.sentiment,
        "p_negative": p.sentiment_probs["negative"],
        "p_neutral": p.sentiment_probs["neutral"],
        "p_positive": p.sentiment_probs["positive"],
        "score": max(-1.0, min(1.0, p.score)),
        "topic": p.topic,
        "topic_confidence": p.topic_probs[p.topic],
    }


def scorable(item: bytes) -> dict | str:
    """A document as received on the documents topic: its JSON object when it has what scoring needs
    (a ``doc_id`` and a ``text``), else why not.

    Only what this stage uses is checked: the full :class:`Document` schema was met when ingest wrote it
    and is validated again by the store before anything is written (a full validation here was the
    largest cost of the stage)."""
    try:
        doc = orjson.loads(item)
    except orjson.JSONDecodeError as exc:
        return f"invalid document: malformed JSON: {exc}"
    if not isinstance(doc, dict):
        return f"invalid document: expected a JSON object, got {type(doc).__name__}"
    for name in ("doc_id", "text"):
        if not isinstance(doc.get(name), str) or not doc[name]:
            return f"invalid document: '{name}' must be a non-empty string"
    return doc


def score_documents(scorer: Scorer, documents: Sequence[dict]) -> list[bytes | str]:
    """Score documents (their JSON objects, as received, see :func:`scorable`); per document, in order, the
    :class:`ScoredDocument` message bytes or the reason it could not be scored.

    Works on plain objects and orjson: building and validating pydantic models of data this stage made
    itself cost more per document than everything else in the stage (tests check the output validates).
    """
    results = scorer.score([d["text"] for d in documents])
    if len(results) != len(documents):
        raise RuntimeError(f"scorer {scorer.name} returned {len(results)} results for {len(documents)} texts")
    now = iso_ms(now_utc())
    return [
        orjson.dumps({"schema_version": 1, "document": d, "score": score_fields(d["doc_id"], r, now)})
        if isinstance(r, Prediction) else f"not scorable: {r.error}"
        for d, r in zip(documents, results)
    ]
