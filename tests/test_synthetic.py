from collections import Counter
from datetime import datetime, timedelta, timezone

import orjson
import pytest

from schemas import NewsItem, SocialPost
from streams.ingest import Ingestor, RawRecord
from streams.synthetic import Injected, SyntheticFeed, activity


def test_event_spec_parsing():
    assert Injected.parse("negative:TSLA@30s/40s") == Injected("negative", "TSLA", 30.0, 40.0)
    assert Injected.parse("storm:M&A@10").duration_s == 30.0
    with pytest.raises(ValueError, match="KIND:TARGET@START"):
        Injected.parse("TSLA-crash")


def test_items_are_valid_varied_and_mixed():
    items = list(SyntheticFeed(seed=3).items(600, 50.0))
    kinds = Counter(k for _, k, _ in items)
    assert kinds["news"] > 150 and kinds["social"] > 150
    for _, kind, item in items:
        (NewsItem if kind == "news" else SocialPost).model_validate(item)
    tickers = Counter(t for _, k, i in items for t in i.get("tickers", i.get("cashtags", [])))
    assert len(tickers) > 40
    times = [t for t, _, _ in items]
    assert times == sorted(times)


def test_injected_negative_burst_dominates_its_ticker_during_the_event():
    # feed time in the past (ingest refuses event times beyond stream.max_future_s)
    feed = SyntheticFeed(seed=5, start=datetime.now(timezone.utc) - timedelta(hours=1),
                         events=(Injected("negative", "TSLA", at_s=100, duration_s=100),))
    ingest = Ingestor(b"k")
    during, other = [], []
    for t, kind, item in feed.items(3000, 10.0):
        doc = ingest.process([RawRecord(kind, orjson.dumps(item), "t", 0, 0)])[0].document()
        if "TSLA" in doc.tickers:
            (during if 100 <= t < 200 else other).append(doc.text)
    assert len(during) > 5 * max(1, len(other) / 2)  # far more TSLA stories while the event lasts
    assert any(w in " ".join(during).lower() for w in ("plunge", "crushed", "downgrade", "free fall", "puts"))


def test_daily_rhythm_peaks_in_market_hours():
    assert activity(16) > 3 * activity(3)


def test_republished_stories_are_flagged_by_ingest():
    feed = SyntheticFeed(seed=11, duplicate_rate=0.5)
    ingest = Ingestor(b"k")
    docs = [ingest.process([RawRecord(k, orjson.dumps(i), "t", 0, 0)])[0].document() for _, k, i in feed.items(300, 10.0)]
    flagged = [d for d in docs if d.duplicate_of]
    assert len(flagged) > 20
    by_id = {d.doc_id: d for d in docs}
    assert all(by_id[d.duplicate_of].tickers == d.tickers for d in flagged if d.duplicate_of in by_id)
