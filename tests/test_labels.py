import pytest

from models.dataset import read_csv
from models.labels import LABELS, SENTIMENT_LABELS, TOPIC_LABELS, signed_score, source_to_index


def test_taxonomy_order():
    assert SENTIMENT_LABELS == ("negative", "neutral", "positive")
    assert len(TOPIC_LABELS) == 20 and TOPIC_LABELS[11] == "IPO"
    assert set(LABELS) == {"sentiment", "topic"}


def test_source_sentiment_mapping():
    # twitter-financial-news-sentiment: 0 bearish, 1 bullish, 2 neutral
    assert SENTIMENT_LABELS[source_to_index("sentiment", 0)] == "negative"
    assert SENTIMENT_LABELS[source_to_index("sentiment", 1)] == "positive"
    assert SENTIMENT_LABELS[source_to_index("sentiment", 2)] == "neutral"
    with pytest.raises(ValueError, match="unknown sentiment label"):
        source_to_index("sentiment", 3)


def test_topic_mapping_is_identity_and_bounded():
    assert [source_to_index("topic", i) for i in range(20)] == list(range(20))
    with pytest.raises(ValueError, match="unknown topic label"):
        source_to_index("topic", 20)


def test_classes_file_matches_taxonomy(data_dir):
    names = (data_dir / "twitter_financial_news_topic" / "classes.txt").read_text().split("\n")
    assert tuple(n.strip() for n in names if n.strip()) == TOPIC_LABELS


def test_read_csv_maps_labels(tmp_path):
    path = tmp_path / "sent_valid.csv"
    path.write_text('text,label\n"Stock plunges, guidance cut",0\nShares soar,1\nMeeting on Monday,2\n')
    data = read_csv(path, "sentiment")
    assert [SENTIMENT_LABELS[y] for y in data.labels] == ["negative", "positive", "neutral"]
    assert data.texts[0] == "Stock plunges, guidance cut"


def test_read_csv_names_bad_row(tmp_path):
    path = tmp_path / "sent_valid.csv"
    path.write_text("text,label\nfine,1\nbroken,bullish\n")
    with pytest.raises(ValueError, match=r"sent_valid.csv:3: bad label 'bullish'"):
        read_csv(path, "sentiment")


def test_signed_score():
    assert signed_score(0.7, 0.1) == pytest.approx(-0.6)
    assert signed_score(0.0, 1.0) == 1.0
