import pytest

from models.dataset import LabelledTexts, load, load_hub, tasks_in


def test_shared_splits_have_published_sizes(data_dir):
    assert len(load("sentiment", "train", data_dir)) == 9543
    assert len(load("sentiment", "valid", data_dir)) == 2388
    topic = load("topic", "train", data_dir)
    assert len(topic) == 16990
    counts = topic.counts()
    assert counts[11] == 44 and counts[2] == 3545  # IPO, Company | Product News (data README)


def test_sentiment_label_distribution(data_dir):
    # README: 1442 bearish, 1923 bullish, 6178 neutral -> negative, positive, neutral
    assert load("sentiment", "train", data_dir).counts() == [1442, 6178, 1923]


def test_missing_data_says_what_to_set(tmp_path):
    with pytest.raises(FileNotFoundError, match="SENTIMON_DATA_DIR"):
        load("topic", "train", tmp_path)


def test_tasks_in_sentiment_only_folder(settings):
    folder = settings.eval_dir / "fpb_allagree"
    assert set(tasks_in(folder)) == {"sentiment"}


def test_sample_and_split_are_reproducible_and_stratified():
    data = LabelledTexts("sentiment", [f"t{i}" for i in range(100)], [i % 3 for i in range(100)])
    assert data.sample(10, seed=3) == data.sample(10, seed=3)
    rest, held = data.split(0.2, seed=0)
    assert len(rest) + len(held) == 100
    assert set(rest.texts).isdisjoint(held.texts)
    assert all(abs(c - 7) <= 1 for c in held.counts())


def test_hub_unreachable_gives_clear_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(RuntimeError, match="SENTIMON_DATA_SOURCE=local"):
        load_hub("sentiment", "valid")
