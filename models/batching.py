"""Token batching shared by training and inference: length buckets and padding.

Sorting texts of similar length into one batch keeps padding (wasted compute) small: tweets here are
~20-30 tokens while a fixed pad to 64 would double the work.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

import numpy as np
import torch


def length_batches(lengths: Sequence[int], batch_size: int, seed: int | None, pool: int = 50) -> list[list[int]]:
    """Split indices into batches of similar length.

    With a seed: shuffle, sort within pools of ``pool`` batches, then shuffle the batches (training).
    With ``seed=None``: sort everything by length, deterministic order (inference).
    """
    order = list(range(len(lengths)))
    if seed is None:
        order.sort(key=lambda i: lengths[i])
        return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    rng = random.Random(seed)
    rng.shuffle(order)
    span = batch_size * pool
    batches: list[list[int]] = []
    for start in range(0, len(order), span):
        chunk = sorted(order[start : start + span], key=lambda i: lengths[i])
        batches.extend(chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size))
    rng.shuffle(batches)
    return batches


# A forward pass of the MiniLM classifier here costs about as much as 70 tokens beyond its tokens (1 x 16
# tokens: 23 ms; 64 x 16: 270 ms; 64 x 32: 556 ms, i.e. ~18 ms + 0.26 ms per token, 2 threads).
OVERHEAD_TOKENS = 64


def inference_batches(lengths: Sequence[int], max_batch: int, overhead_tokens: int = OVERHEAD_TOKENS) -> list[list[int]]:
    """Split indices into batches of at most ``max_batch`` that minimize the padded work: the sum over
    batches of ``overhead_tokens + size x longest``, exactly (dynamic programming over the length order).

    A plain split of the sorted order into ``max_batch`` chunks pads a small micro-batch of mixed texts to
    its longest one (a random 64 of our texts is 55% padding); one batch per length pays the overhead too
    often. Batches come out in length order."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    n = len(order)
    if n == 0:
        return []
    width = np.array([lengths[i] for i in order], dtype=np.int64)
    best = np.zeros(n + 1, dtype=np.int64)  # best[j]: the least work for the first j texts
    start = np.zeros(n + 1, dtype=np.int64)
    for j in range(1, n + 1):
        first = np.arange(max(0, j - max_batch), j)  # the last batch is order[i:j]
        cost = best[first] + overhead_tokens + (j - first) * width[j - 1]
        k = int(np.argmin(cost))
        best[j], start[j] = cost[k], first[k]
    batches, j = [], n
    while j > 0:
        i = int(start[j])
        batches.append(order[i:j])
        j = i
    return batches[::-1]


def pad_arrays(ids: Sequence[Sequence[int]], pad_id: int) -> tuple[np.ndarray, np.ndarray]:
    """Right-pad token id lists to the longest one: (input_ids, attention_mask), both int64 (B, T)."""
    lengths = np.fromiter((len(x) for x in ids), dtype=np.int64, count=len(ids))
    width = int(lengths.max())
    mask = np.arange(width) < lengths[:, None]
    input_ids = np.full((len(ids), width), pad_id, dtype=np.int64)
    input_ids[mask] = np.fromiter((t for seq in ids for t in seq), dtype=np.int64, count=int(lengths.sum()))
    return input_ids, mask.astype(np.int64)


def pad(ids: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`pad_arrays` as torch tensors (sharing the memory)."""
    input_ids, mask = pad_arrays(ids, pad_id)
    return torch.from_numpy(input_ids), torch.from_numpy(mask)

