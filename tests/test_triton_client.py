"""The Triton client's answer check, against a fake gRPC client (named as such: the real server is in
test_triton.py, which cannot make tritonserver answer with the wrong shape on purpose)."""

import asyncio

import numpy as np
import pytest

from streams.errors import ScorerUnavailable
from streams.triton.breaker import CircuitBreaker
from streams.triton.client import TritonClient


class _FakeResult:
    def __init__(self, rows: int):
        self.rows = rows

    def as_numpy(self, task: str) -> np.ndarray:
        return np.full((self.rows, 3 if task == "sentiment" else 20), 0.5, np.float32)


class FakeGrpcClient:
    """Answers each infer with the next row count in ``rows`` (the request's own when None)."""

    def __init__(self, rows: list[int | None]):
        self.rows, self.calls = list(rows), 0

    async def infer(self, name, inputs, **kwargs):
        self.calls += 1
        want = self.rows.pop(0) if self.rows else None
        return _FakeResult(inputs[0].shape()[0] if want is None else want)

    async def close(self):
        pass


def _client(rows: list[int | None], retries: int) -> TritonClient:
    client = TritonClient("127.0.0.1:1", "m", "1", tokenizer=None, max_length=64, retries=retries, backoff_s=0.001,
                          breaker=CircuitBreaker(threshold=100))
    client._client = FakeGrpcClient(rows)
    return client


def test_an_answer_that_does_not_fit_the_request_is_retried_not_used():
    ids = np.ones((54, 12), np.int64)

    async def run():
        client = _client([62, None], retries=3)
        return client, await client._infer(ids, ids)

    client, answer = asyncio.run(run())
    assert client._client.calls == 2
    assert answer["sentiment"].shape == (54, 3) and answer["topic"].shape == (54, 20)


def test_answers_that_never_fit_make_the_scorer_unavailable_so_the_batch_is_held():
    ids = np.ones((54, 12), np.int64)
    fake = FakeGrpcClient([62, 62, 62])

    async def run():
        client = _client([], retries=2)
        client._client = fake
        await client._infer(ids, ids)

    with pytest.raises(ScorerUnavailable, match="shape .62, 3. for a request of 54 rows"):
        asyncio.run(run())
    assert fake.calls == 3


class FakeTokenizer:
    """Token ids = one id per word, plus two specials (the real tokenizer is in test_triton.py)."""

    pad_token_id = 0

    def __call__(self, texts, truncation=True, max_length=64):
        return {"input_ids": [[101, *range(1000, 1000 + len(t.split()))][:max_length - 1] + [102] for t in texts]}


class RecordingGrpcClient(FakeGrpcClient):
    """Answers every row with its own attended length (so the rows' way back can be checked) and keeps
    each request's (rows, width) in arrival order."""

    def __init__(self):
        super().__init__([])
        self.requests: list[tuple[int, int]] = []

    async def infer(self, name, inputs, **kwargs):
        shape = tuple(inputs[1].shape())
        mask = np.frombuffer(inputs[1]._raw_content, dtype=np.int64).reshape(shape)
        self.requests.append(shape)
        lengths = mask.sum(1).astype(np.float32)
        result = _FakeResult(mask.shape[0])
        result.as_numpy = lambda task: np.repeat(lengths[:, None], 3 if task == "sentiment" else 20, axis=1)
        return result


def test_the_costliest_requests_go_first_and_every_row_comes_back_to_its_text():
    texts = [" ".join(["w"] * n) for n in (3, 40, 7, 25, 1, 12, 33, 5, 18, 2, 9, 30)]

    async def run():
        client = TritonClient("127.0.0.1:1", "m", "1", tokenizer=FakeTokenizer(), max_length=64, batch_size=3,
                              in_flight=1, retries=0)
        client._client = RecordingGrpcClient()
        return client._client.requests, await client.proba(texts)

    requests, out = asyncio.run(run())
    costs = [rows * width for rows, width in requests]
    assert len(requests) > 2 and costs == sorted(costs, reverse=True)
    assert out["sentiment"][:, 0].tolist() == [n + 2 for n in (3, 40, 7, 25, 1, 12, 33, 5, 18, 2, 9, 30)]
