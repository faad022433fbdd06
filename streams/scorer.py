"""The scoring stage's classifier interface and its logic: documents -> scored documents (no I/O).

:class:`Scorer` is the one small interface the stage talks to. ``LocalScorer`` runs the model in
child processes of the worker; ``TritonScorer`` asks a Triton server; ``NoopScorer`` returns neutral
scores without a model, to measure the pipeline's own overhead (``make bench``).
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path
from concurrent.futures import ProcessPoolExecutor
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

import numpy as np
import orjson

from models.classifier import Prediction, PredictionError, check_texts, predictions
from models.runtime import DEFAULT_RUNTIME, RuntimeName
from models.labels import SENTIMENT_LABELS, TOPIC_LABELS
from schemas.base import iso_ms, now_utc
from streams.process import child_pool
from streams.settings import ScoringConfig

log = logging.getLogger(__name__)


class Scorer(Protocol):
    name: str
    version: str

    async def score(self, texts: Sequence[str]) -> list[Prediction | PredictionError]:
        """One result per text, in order; a bad text gives a PredictionError. :class:`ScorerUnavailable`
        when it cannot score now; any other exception is a fault (the worker stops)."""
        ...

    async def close(self) -> None: ...


class LocalScorer:
    """The model on this machine, in processes of its own: ``processes`` spawned children of the worker,
    each loading :class:`models.classifier.Classifier` with ``threads`` torch threads and dying with the
    worker. Each batch is split across them (texts dealt by length, so the parts cost alike) and put
    back in order.

    Why processes: in the worker's own process the forward pass waited for the event loop at every
    operator (the model's Python holds the GIL between torch kernels, the loop's ingest and Kafka work
    the rest of the time). Why one thread each: a two-thread forward pass stalls at every operator's
    barrier whenever anything else on the machine takes one of its cores; live micro-batches of ~25
    texts beside the broker and the store then scored at ~72 texts/s with two threads and ~80 (all
    there were) with one, at 1.4 vs 0.9 cores. Alone, 2 processes x 1 thread score a backlog as fast
    as 1 x 2. Texts are checked here and only valid ones cross to the children; probabilities come back."""

    def __init__(self, executors: Sequence[ProcessPoolExecutor], name: str, version: str, pids: Sequence[int]):
        self._executors = list(executors)
        self.name, self.version = name, version
        self.pids = list(pids)  # the model processes
        self._next = 0  # the process that takes the first part of the next batch

    @classmethod
    async def load(cls, path, *, processes: int = 1, threads: int = 1, runtime: RuntimeName = DEFAULT_RUNTIME,
                   batch_size: int = 64, cache_dir: Path | None = None) -> "LocalScorer":
        """The model at ``path`` loaded in ``processes`` new child processes (all ready when this returns),
        each running it on ``runtime`` (:mod:`models.runtime`; ONNX files derived once into ``cache_dir``)."""
        if cache_dir is not None and runtime.startswith("ort-"):
            # derived once here, not by every child at the same time
            await asyncio.to_thread(_prepare_onnx, str(path), runtime, cache_dir)
        args = (str(path), threads, runtime, batch_size, str(cache_dir) if cache_dir else None)
        executors = [child_pool(1, _model_init, args) for _ in range(processes)]
        loop = asyncio.get_running_loop()
        identities = await asyncio.gather(*(loop.run_in_executor(e, _model_identity) for e in executors))
        return cls(executors, identities[0][0], identities[0][1], [pid for _, _, pid in identities])

    async def score(self, texts: Sequence[str]) -> list[Prediction | PredictionError]:
        return await checked_predictions(texts, self._proba, self.name, self.version)

    async def _proba(self, texts: list[str]) -> dict:
        n = len(self._executors)
        parts = split_by_length([len(t) for t in texts], n)
        loop = asyncio.get_running_loop()
        results = await asyncio.gather(*(
            loop.run_in_executor(self._executors[(self._next + k) % n], _model_proba, [texts[i] for i in part])
            for k, part in enumerate(parts)))
        self._next = (self._next + 1) % n
        return joined(parts, results, len(texts))

    async def close(self) -> None:
        for executor in self._executors:
            executor.shutdown(wait=False, cancel_futures=True)


def split_by_length(lengths: Sequence[int], parts: int) -> list[list[int]]:
    """Indices split into at most ``parts`` non-empty parts of similar cost: dealt in turn in length order."""
    order = sorted(range(len(lengths)), key=lengths.__getitem__)
    return [order[k::parts] for k in range(min(parts, len(order)))]


def joined(parts: Sequence[Sequence[int]], probs: Sequence[dict], n: int) -> dict:
    """The per-task probabilities of each part put back at their indices (rows of ``n`` inputs)."""
    if not parts:
        return {}
    out = {task: np.empty((n, p.shape[1]), dtype=p.dtype) for task, p in probs[0].items()}
    for part, result in zip(parts, probs):
        for task, p in result.items():
            out[task][list(part)] = p
    return out


_model = None  # the model process's classifier


def _prepare_onnx(path: str, runtime: RuntimeName, cache_dir: Path) -> None:
    from models.runtime import onnx_file

    onnx_file(Path(path), None, runtime == "ort-int8", cache_dir)  # loads the network only when writing


def _model_init(path: str, threads: int, runtime: RuntimeName, batch_size: int, cache_dir: str | None) -> None:
    global _model
    import torch

    from models.classifier import Classifier

    torch.set_num_threads(threads)
    _model = Classifier.load(path, runtime=runtime, threads=threads, batch_size=batch_size,
                             cache_dir=Path(cache_dir) if cache_dir else None)


def _model_identity() -> tuple[str, str, int]:
    assert _model is not None
    return _model.name, _model.version, os.getpid()


def _model_proba(texts: list[str]) -> dict:
    assert _model is not None
    return _model.proba(texts)


async def checked_predictions(texts: Sequence[str], proba: Callable[[list[str]], Awaitable[dict]],
                              name: str, version: str) -> list[Prediction | PredictionError]:
    """Every text checked here (:func:`models.classifier.check_texts`), the valid ones scored by ``proba``
    (probabilities per task, rows in order), and labelled exactly as in-process (:func:`predictions`)."""
    checked = check_texts(texts)
    probs = await proba([text for text, _, _ in checked if text is not None])
    return predictions(checked, probs, name, version)


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
        self.name, self.version = client.name, client.scored_version

    async def score(self, texts: Sequence[str]) -> list[Prediction | PredictionError]:
        return await checked_predictions(texts, self.client.proba, self.name, self.version)

    async def close(self) -> None:
        await self.client.close()


async def make_scorer(settings: ScoringConfig) -> Scorer:
    """The scorer the settings ask for; the model is resolved like ``sentimon predict`` does. For Triton
    the served model must be that same name and version (checked now, with a clear error)."""
    backend = settings.scoring.backend
    if backend == "noop":
        return NoopScorer()
    from models import artifact

    ref = artifact.resolve(settings.model, settings.models_dir)
    from models.profiles import test_model_warning

    warning = test_model_warning(ref.name, artifact.load_training(ref.path))
    if warning:
        log.warning(warning)
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
    return await LocalScorer.load(ref.path, processes=sc.processes, threads=sc.threads, runtime=sc.runtime,
                                  batch_size=sc.batch_size, cache_dir=settings.onnx_cache_dir)


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
