"""Token batching shared by training and inference: length buckets and padding.

Sorting texts of similar length into one batch keeps padding (wasted compute) small: tweets here are
~20-30 tokens while a fixed pad to 64 would double the work.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

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


def pad(ids: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad token id lists to the longest one: (input_ids, attention_mask), both int64 (B, T)."""
    width = max(len(x) for x in ids)
    input_ids = torch.full((len(ids), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(ids), width), dtype=torch.long)
    for row, seq in enumerate(ids):
        input_ids[row, : len(seq)] = torch.tensor(seq, dtype=torch.long)
        mask[row, : len(seq)] = 1
    return input_ids, mask
