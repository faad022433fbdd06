"""The one label taxonomy every stage uses.

Sentiment is always ``negative / neutral / positive`` in that order (head index = position here),
topic is the 20 classes of twitter-financial-news-topic in their published order. Source data sets
encode labels differently; :data:`SOURCE_SENTIMENT` maps their integers onto ours.
"""

from __future__ import annotations

from typing import Literal

Task = Literal["sentiment", "topic"]
TASKS: tuple[Task, ...] = ("sentiment", "topic")

SENTIMENT_LABELS: tuple[str, ...] = ("negative", "neutral", "positive")

TOPIC_LABELS: tuple[str, ...] = (
    "Analyst Update",
    "Fed | Central Banks",
    "Company | Product News",
    "Treasuries | Corporate Debt",
    "Dividend",
    "Earnings",
    "Energy | Oil",
    "Financials",
    "Currencies",
    "General News | Opinion",
    "Gold | Metals | Materials",
    "IPO",
    "Legal | Regulation",
    "M&A | Investments",
    "Macro",
    "Markets",
    "Politics",
    "Personnel Change",
    "Stock Commentary",
    "Stock Movement",
)

LABELS: dict[Task, tuple[str, ...]] = {"sentiment": SENTIMENT_LABELS, "topic": TOPIC_LABELS}

# twitter-financial-news-sentiment (and the eval CSVs) use 0 bearish, 1 bullish, 2 neutral.
SOURCE_SENTIMENT: dict[int, str] = {0: "negative", 1: "positive", 2: "neutral"}


def source_to_index(task: Task, source_label: int) -> int:
    """Map a data set's integer label to the index of our taxonomy; ValueError if unknown."""
    if task == "sentiment":
        try:
            return SENTIMENT_LABELS.index(SOURCE_SENTIMENT[int(source_label)])
        except KeyError:
            raise ValueError(f"unknown sentiment label {source_label!r}: expected 0, 1 or 2") from None
    if not 0 <= int(source_label) < len(TOPIC_LABELS):
        raise ValueError(f"unknown topic label {source_label!r}: expected 0..{len(TOPIC_LABELS) - 1}")
    return int(source_label)


def signed_score(p_negative: float, p_positive: float) -> float:
    """Signed sentiment in [-1, 1]: P(positive) - P(negative)."""
    return float(p_positive) - float(p_negative)
