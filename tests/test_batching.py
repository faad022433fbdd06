import torch

from models.batching import length_batches, pad


def test_training_batches_cover_each_index_once_and_are_seeded():
    lengths = [(i * 7) % 31 + 1 for i in range(1000)]
    batches = length_batches(lengths, 32, seed=5)
    flat = sorted(i for b in batches for i in b)
    assert flat == list(range(1000))
    assert batches == length_batches(lengths, 32, seed=5)
    assert batches != length_batches(lengths, 32, seed=6)
    # bucketing keeps the length spread inside a batch small
    spread = sum(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches) / len(batches)
    assert spread < 5


def test_inference_batches_are_sorted():
    lengths = [5, 1, 3, 2, 4]
    assert length_batches(lengths, 2, seed=None) == [[1, 3], [2, 4], [0]]


def test_pad():
    ids, mask = pad([[5, 6, 7], [8]], pad_id=0)
    assert ids.tolist() == [[5, 6, 7], [8, 0, 0]]
    assert mask.tolist() == [[1, 1, 1], [1, 0, 0]]
    assert ids.dtype == mask.dtype == torch.long
