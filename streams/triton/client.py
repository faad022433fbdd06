"""Scoring through Triton over gRPC (asyncio): tokenize here, send large batches, several in flight.

The client tokenizes with the model's own fast tokenizer (truncated to the training length, exactly as
in-process), groups texts by length into batches of at most ``batch_size`` with the least padded work
(:func:`models.batching.inference_batches`, as in-process) and sends them with at most ``in_flight``
requests outstanding; Triton's dynamic batcher merges them further. Transient failures (server
unavailable, timeouts, an answer whose shape does not fit the request) are retried with capped exponential backoff in one place (:meth:`_infer`); a
:class:`CircuitBreaker` makes calls fail fast while the server is down. What cannot succeed by retrying
(a wrong model, a rejected input) raises at once with the server's reason.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

import numpy as np

from models.batching import inference_batches, pad_arrays
from models.classifier import token_ids
from models.labels import LABELS, Task
from streams.errors import ScorerUnavailable
from streams.triton.breaker import CircuitBreaker

CONTRACT_INPUTS = {"input_ids": "INT64", "attention_mask": "INT64"}
CONTRACT_OUTPUTS = {task: ("FP32", len(labels)) for task, labels in LABELS.items()}
TRANSIENT = ("UNAVAILABLE", "DEADLINE_EXCEEDED", "RESOURCE_EXHAUSTED", "ABORTED", "INTERNAL", "CANCELLED")


class TritonUnreachable(ScorerUnavailable):
    """Triton did not answer (after retries), or the circuit is open: try again later."""


class TritonRejected(RuntimeError):
    """Triton answered with an error that retrying will not fix (the message is the server's)."""


class ModelMismatch(RuntimeError):
    """The server does not serve the configured model and version with the project's contract."""


class MalformedAnswer(RuntimeError):
    """Triton answered with outputs that do not fit the request (seen once here, from a python-backend stub
    about to crash: 62 rows for a request of 54). Never used: retried like an unavailable server."""


def _transient(exc: Exception) -> bool:
    status = str(getattr(exc, "status", lambda: "")() or "")
    return (any(code in status for code in TRANSIENT)
            or isinstance(exc, (asyncio.TimeoutError, ConnectionError, MalformedAnswer)))


def _checked(result: dict[str, np.ndarray], rows: int) -> dict[str, np.ndarray]:
    """``result`` if each output is (rows, classes) of the contract, else :class:`MalformedAnswer`."""
    for task, (_, classes) in CONTRACT_OUTPUTS.items():
        shape = getattr(result[task], "shape", None)
        if shape != (rows, classes):
            raise MalformedAnswer(f"Triton answered {task} of shape {shape} for a request of {rows} rows")
    return result


class TritonClient:
    def __init__(self, url: str, name: str, version: str, tokenizer, max_length: int, *, batch_size: int = 64,
                 in_flight: int = 4, timeout_s: float = 30.0, retries: int = 3, backoff_s: float = 0.2,
                 breaker: CircuitBreaker | None = None):
        import tritonclient.grpc.aio as grpc

        self._grpc = grpc
        self.url, self.name, self.version = url, name, version
        self.tokenizer, self.max_length = tokenizer, max_length
        self.batch_size, self.timeout_s, self.retries, self.backoff_s = batch_size, timeout_s, retries, backoff_s
        self.breaker = breaker or CircuitBreaker()
        self._slots = asyncio.Semaphore(in_flight)
        self._client = grpc.InferenceServerClient(url)
        self.latencies: list[float] | None = None  # seconds per request, when a benchmark asks for them
        self.runtime = ""  # what runs the network on the server (its config's ``runtime``), known after check()

    async def check(self) -> None:
        """At start-up: the server is up and serves our model and version with the contract; else
        :class:`TritonUnreachable` or :class:`ModelMismatch` saying what is wrong."""
        try:
            await self._client.is_server_live(client_timeout=self.timeout_s)
            index = await self._client.get_model_repository_index(as_json=True)
        except Exception as exc:  # noqa: BLE001 - any failure here means: not reachable
            raise TritonUnreachable(f"Triton at {self.url} does not answer: {exc}") from exc
        served = sorted({f"{m['name']}/{m.get('version', '?')}" for m in index.get("models", [])
                         if m.get("state") == "READY"})
        if not await self._client.is_model_ready(self.name, self.version):
            raise ModelMismatch(f"Triton at {self.url} does not serve model {self.name!r} version {self.version!r} "
                                f"(ready: {', '.join(served) or 'nothing'}): run `sentimon export` for it, or set "
                                "SENTIMON_MODEL to a served one")
        meta = await self._client.get_model_metadata(self.name, self.version, as_json=True)
        inputs = {i["name"]: i["datatype"] for i in meta.get("inputs", [])}
        outputs = {o["name"]: (o["datatype"], int(o["shape"][-1])) for o in meta.get("outputs", [])}
        if inputs != CONTRACT_INPUTS or outputs != CONTRACT_OUTPUTS:
            raise ModelMismatch(f"model {self.name}/{self.version} on {self.url} has inputs {inputs} and outputs "
                                f"{outputs}; the contract is {CONTRACT_INPUTS} -> {CONTRACT_OUTPUTS}")
        config = (await self._client.get_model_config(self.name, self.version, as_json=True)).get("config", {})
        self.runtime = config.get("parameters", {}).get("runtime", {}).get("string_value", "")

    @property
    def scored_version(self) -> str:
        """The model version every score records: the server's, marked when its runtime quantizes (as
        in-process, :func:`models.runtime.version_suffix`)."""
        from models.runtime import RUNTIMES, version_suffix

        return self.version + (version_suffix(self.runtime) if self.runtime in RUNTIMES else "")

    async def proba(self, texts: Sequence[str]) -> dict[Task, np.ndarray]:
        """Probabilities per task, rows in input order (texts already prepared)."""
        out = {task: np.zeros((len(texts), len(labels)), np.float32) for task, labels in LABELS.items()}
        if not texts:
            return out
        ids = token_ids(self.tokenizer, texts, self.max_length)
        batches = inference_batches([len(x) for x in ids], self.batch_size)  # least padded work, as in-process
        # the costliest requests first: the last ones to finish are then the cheap ones, so the server's
        # instances are not left idle waiting on one long request at the end of every micro-batch
        batches.sort(key=lambda b: len(b) * max(len(ids[i]) for i in b), reverse=True)

        async def one(batch: list[int]) -> None:
            # padded like in-process (models.batching.pad_arrays), so both backends see the same tensors
            input_ids, mask = pad_arrays([ids[i] for i in batch], self.tokenizer.pad_token_id)
            result = await self._infer(input_ids, mask)
            for task in out:
                out[task][batch] = result[task]

        await asyncio.gather(*(one(b) for b in batches))
        return out

    async def _infer(self, input_ids: np.ndarray, mask: np.ndarray) -> dict[str, np.ndarray]:
        grpc = self._grpc
        inputs = [grpc.InferInput("input_ids", list(input_ids.shape), "INT64"),
                  grpc.InferInput("attention_mask", list(mask.shape), "INT64")]
        inputs[0].set_data_from_numpy(input_ids)
        inputs[1].set_data_from_numpy(mask)
        outputs = [grpc.InferRequestedOutput(task) for task in CONTRACT_OUTPUTS]
        delay = self.backoff_s
        for attempt in range(self.retries + 1):
            if not self.breaker.allow(time.monotonic()):
                raise TritonUnreachable(f"Triton at {self.url}: circuit open after {self.breaker.failures} failures; "
                                        f"next try in {self.breaker.retry_in(time.monotonic()):.1f} s")
            try:
                async with self._slots:
                    started = time.perf_counter()
                    result = await self._client.infer(self.name, inputs, model_version=self.version, outputs=outputs,
                                                      client_timeout=self.timeout_s)
                    if self.latencies is not None:
                        self.latencies.append(time.perf_counter() - started)
                answer = _checked({task: result.as_numpy(task) for task in CONTRACT_OUTPUTS}, input_ids.shape[0])
            except Exception as exc:  # noqa: BLE001 - sorted into transient and final below
                if not _transient(exc):
                    self.breaker.success()  # the server answered
                    raise TritonRejected(f"Triton rejected a batch for {self.name}/{self.version}: {exc}") from exc
                self.breaker.failure(time.monotonic())
                if attempt == self.retries:
                    raise TritonUnreachable(f"Triton at {self.url} failed {attempt + 1} times: {exc}") from exc
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            self.breaker.success()
            return answer
        raise AssertionError("unreachable")

    async def close(self) -> None:
        await self._client.close()
