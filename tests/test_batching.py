import torch

from models.batching import inference_batches, length_batches, pad


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


def test_unseeded_batches_are_in_length_order():
    lengths = [5, 1, 3, 2, 4]
    assert length_batches(lengths, 2, seed=None) == [[1, 3], [2, 4], [0]]


def test_pad():
    ids, mask = pad([[5, 6, 7], [8]], pad_id=0)
    assert ids.tolist() == [[5, 6, 7], [8, 0, 0]]
    assert mask.tolist() == [[1, 1, 1], [1, 0, 0]]
    assert ids.dtype == mask.dtype == torch.long


def _work(batches, lengths, overhead):
    return sum(overhead + len(b) * max(lengths[i] for i in b) for b in batches)


def test_inference_batches_cover_every_text_once_within_the_limit():
    import random

    rng = random.Random(3)
    lengths = [rng.choice([9, 12, 16, 16, 20, 35]) for _ in range(300)]
    batches = inference_batches(lengths, 64)
    assert sorted(i for b in batches for i in b) == list(range(300))
    assert all(0 < len(b) <= 64 for b in batches)
    assert inference_batches([], 64) == []


def test_inference_batches_are_the_least_padded_work():
    """Exactly optimal against every split of the sorted order (small cases), and far less work than
    plain chunks of the sorted order on a mixed micro-batch."""
    import itertools
    import random

    rng = random.Random(7)
    for _ in range(30):
        lengths = [rng.randint(5, 40) for _ in range(rng.randint(1, 9))]
        order = sorted(range(len(lengths)), key=lambda i: lengths[i])
        best = min(
            _work([order[a:b] for a, b in zip((0, *cuts), (*cuts, len(order)))], lengths, 10)
            for k in range(len(order)) for cuts in itertools.combinations(range(1, len(order)), k)
            if all(b - a <= 4 for a, b in zip((0, *cuts), (*cuts, len(order))))
        )
        assert _work(inference_batches(lengths, 4, overhead_tokens=10), lengths, 10) == best
    mixed = [16] * 50 + [35] * 2 + [9] * 12
    assert _work(inference_batches(mixed, 64), mixed, 64) < 0.7 * _work(length_batches(mixed, 64, seed=None), mixed, 64)

