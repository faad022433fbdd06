"""The scoring stage's classifier interface and its logic: documents -> scored documents (no I/O).

:class:`Scorer` is the one small interface the stage talks to. ``LocalScorer`` runs the model
in-process; ``TritonScorer`` asks a Triton server; ``NoopScorer`` returns neutral scores without a
model, to measure the pipeline's own overhead (``make bench``).
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Sequence
from typing import Protocol

import orjson

from models.classifier import Prediction, PredictionError, check_texts, predictions
from models.labels import SENTIMENT_LABELS, TOPIC_LABELS
from schemas.base import iso_ms, now_utc
from sentimon.settings import Settings


class ScorerUnavailable(RuntimeError):
    """The scorer cannot answer right now (a server down or overloaded); the stage waits and retries."""


class Scorer(Protocol):
    name: str
    version: str

    async def score(self, texts: Sequence[str]) -> list[Prediction | PredictionError]:
        """One result per text, in order; a bad text gives a PredictionError. :class:`ScorerUnavailable`
        when it cannot score now; any other exception is a fault (the worker stops)."""
        ...

    async def close(self) -> None: ...


class LocalScorer:
    """The model in this process (:class:`models.classifier.Classifier`), off the event loop on one thread
    of its own that also loaded it (:meth:`load`).

    Why one thread: libgomp gives every thread that starts a parallel region its own OpenMP team, and once
    the process has more OpenMP threads than cores it stops spinning between regions and sleeps instead.
    Loading on one thread and predicting on others (``asyncio.to_thread``) did exactly that here: the
    forward pass used 1.75 of the 2 cores and ran ~15% slower than on the loading thread (1.98 cores)."""

    def __init__(self, classifier, executor: ThreadPoolExecutor | None = None):
        self.classifier = classifier
        self.name, self.version = classifier.name, classifier.version
        self._executor = executor or _model_thread()

    @classmethod
    async def load(cls, path, *, threads: int, int8: bool = False, batch_size: int = 64) -> "LocalScorer":
        """The model at ``path`` loaded on the scorer's own thread, with ``threads`` torch threads."""
        executor = _model_thread()

        def load():
            import torch

            from models.classifier import Classifier

            torch.set_num_threads(threads)
            return Classifier.load(path, int8=int8, batch_size=batch_size)

        return cls(await asyncio.get_running_loop().run_in_executor(executor, load), executor)

    async def score(self, texts: Sequence[str]) -> list[Prediction | PredictionError]:
        return await asyncio.get_running_loop().run_in_executor(self._executor, self.classifier.predict, list(texts))

    async def close(self) -> None:
        self._executor.shutdown(wait=False)


def _model_thread() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(1, thread_name_prefix="model")


class NoopScorer:
    """Neutral scores for every text without running a model: the pipeline's own cost, nothing else."""

    name, version = "noop", "0"
    _probs = {label: (1.0 if label == "neutral" else 0.0) for label in SENTIMENT_LABELS}
    _topics = {label: 1.0 / len(TOPIC_LABELS) for label in TOPIC_LABELS}

    async def score(self, texts: Sequence[str]) -> list[Prediction | PredictionError]:
        one = Prediction("neutral", self._probs, 0.0, TOPIC_LABELS[9], self._topics, self.name, self.version)
        return [one] * len(texts)

    async def close(self) -> None:
        pass


class TritonScorer:
    """The model served by Triton (:class:`streams.triton.client.TritonClient`): checked and labelled
    here exactly as in-process (:func:`models.classifier.predictions`), probabilities from the server."""

    def __init__(self, client):
        self.client = client
        self.name, self.version = client.name, client.version

    async def score(self, texts: Sequence[str]) -> list[Prediction | PredictionError]:
        checked = check_texts(texts)
        probs = await self.client.proba([text for text, _, _ in checked if text is not None])
        return predictions(checked, probs, self.name, self.version)

    async def close(self) -> None:
        await self.client.close()


async def make_scorer(settings: Settings) -> Scorer:
    """The scorer the settings ask for; the model is resolved like ``sentimon predict`` does. For Triton
    the served model must be that same name and version (checked now, with a clear error)."""
    backend = settings.scoring.backend
    if backend == "noop":
        return NoopScorer()
    from models import artifact

    ref = artifact.resolve(settings.model, settings.models_dir)
    if backend == "triton":
        from streams.triton.client import TritonClient

        tokenizer = await asyncio.to_thread(artifact.load_tokenizer, ref.path)
        t, sc = settings.triton, settings.scoring
        client = TritonClient(f"{t.host}:{t.grpc_port}", ref.name, ref.version, tokenizer,
                              artifact.max_length(artifact.load_training(ref.path)), batch_size=sc.batch_size,
                              in_flight=sc.in_flight, timeout_s=sc.timeout_s, retries=sc.retries)
        await client.check()
        return TritonScorer(client)

    sc = settings.scoring
    return await LocalScorer.load(ref.path, threads=settings.threads, int8=sc.int8, batch_size=sc.batch_size)


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


def scored_messages(documents: Sequence[dict], results: Sequence[Prediction | PredictionError]) -> list[bytes | str]:
    """Per document (its JSON object, as received, see :func:`scorable`) and its result, in order: the
    :class:`ScoredDocument` message bytes, or the reason it could not be scored.

    Works on plain objects and orjson: building and validating pydantic models of data this stage made
    itself cost more per document than everything else in the stage (tests check the output validates).
    """
    if len(results) != len(documents):
        raise RuntimeError(f"the scorer returned {len(results)} results for {len(documents)} texts")
    now = iso_ms(now_utc())
    return [
        orjson.dumps({"schema_version": 1, "document": d, "score": score_fields(d["doc_id"], r, now)})
        if isinstance(r, Prediction) else f"not scorable: {r.error}"
        for d, r in zip(documents, results)
    ]
