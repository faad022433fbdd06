import base64

import orjson
import pytest

from schemas import DeadLetter, Document
from streams.dedup import Deduplicator
from streams.ingest import Ingested, Ingestor, RawRecord, doc_id, records


@pytest.fixture()
def ingestor() -> Ingestor:
    return Ingestor(b"k", max_message_bytes=4096, max_text_chars=500)


def news(**over) -> bytes:
    item = {"id": "n1", "source": "Reuters", "published_at": "2026-11-29T07:00:00.123456+01:00",
            "headline": "Tesla &amp; Ford <b>slump</b> https://r.co/1", "body": "", "tickers": ["f"]}
    return orjson.dumps({**item, **over})


def post(**over) -> bytes:
    item = {"id": "p1", "platform": "X", "author": "@Trader", "created_at": "2026-11-29T07:00:00Z",
            "text": "$NVDA to the moon, mail me at a@b.com", "cashtags": ["NVDA"], "engagement": {"likes": 2, "reposts": 1}}
    return orjson.dumps({**item, **over})


def rec(kind, value, offset=0) -> RawRecord:
    return RawRecord(kind, value, f"raw-{kind}", 1, offset)


def run(ingestor: Ingestor, records) -> list[Document | DeadLetter]:
    """The outcomes, documents parsed back from the JSON the stage emits (which must be a valid Document)."""
    out = []
    for outcome in ingestor.process(records):
        if isinstance(outcome, Ingested):
            doc = outcome.document()
            assert (doc.doc_id, doc.duplicate_of) == (outcome.doc_id, outcome.duplicate_of)
            outcome = doc
        out.append(outcome)
    return out


def test_news_becomes_a_clean_document(ingestor):
    [d] = run(ingestor, [rec("news", news())])
    assert isinstance(d, Document)
    assert d.text == "Tesla & Ford slump" and d.title == d.text
    assert d.tickers == ["F", "TSLA"] and d.sectors == ["Consumer Discretionary"]
    assert d.event_time.isoformat() == "2026-11-29T06:00:00.123000+00:00"
    assert d.doc_id == doc_id("news", "reuters", "n1") and d.source == "reuters"


def test_social_post_is_scrubbed_before_storage(ingestor):
    [d] = run(ingestor, [rec("social", post())])
    assert "a@b.com" not in d.model_dump_json() and "Trader" not in d.model_dump_json()
    assert d.author_hash and d.engagement == 3 and d.tickers == ["NVDA"]


def test_doc_id_is_stable_across_redelivery(ingestor):
    [a] = run(ingestor, [rec("news", news())])
    [b] = run(ingestor, [rec("news", news(), offset=99)])
    assert a.doc_id == b.doc_id and a.duplicate_of == b.duplicate_of == ""


def test_republished_story_is_flagged(ingestor):
    first, copy = run(ingestor, [rec("news", news(headline="Tesla shares slump after deliveries miss estimates badly")),
                                    rec("news", news(id="z9", source="bloomberg",
                                                     headline="UPDATE 1-Tesla shares slump after deliveries miss estimates badly"))])
    assert copy.duplicate_of == first.doc_id


@pytest.mark.parametrize(
    "kind, value, reason",
    [
        ("news", b"{not json", "malformed JSON"),
        ("news", b"\xff\xfe\x00binary", "non-UTF-8"),
        ("news", b"ab\x00\x01\x02\x03cd", "binary message"),
        ("news", b"x" * 5000, "oversized message"),
        ("news", b"", "empty message"),
        ("news", b"[1, 2]", "expected a JSON object"),
        ("news", news(extra_field=1), "unknown field 'extra_field'"),
        ("news", news(published_at="yesterday"), "published_at"),
        ("news", news(published_at="2026-11-29T07:00:00"), "needs a timezone"),
        ("social", news(), "wrong schema for social item"),
        ("news", news(headline="<p> </p> https://x.y"), "no text left"),
        ("news", news(headline="word " * 200), "oversized text"),
    ],
)
def test_bad_input_is_dead_lettered_with_reason_and_bytes(ingestor, kind, value, reason):
    good_before, bad, good_after = run(ingestor, [rec("news", news(id="g1"), 1), rec(kind, value, 2),
                                                     rec("news", news(id="g2"), 3)])
    assert isinstance(good_before, Document) and isinstance(good_after, Document)
    assert isinstance(bad, DeadLetter)
    assert reason in bad.reason
    assert bad.original_bytes() == value and base64.b64decode(bad.original) == value
    assert (bad.topic, bad.partition, bad.offset, bad.stage) == (f"raw-{kind}", 1, 2, "ingest")


def test_a_json_lines_message_is_one_item_per_line_and_a_bad_line_is_dead_lettered_alone(ingestor):
    value = b"\n".join([news(id="a"), b'{"id": "b", "headline": ', news(id="c")])
    items = records("news", value, "raw-news", 2, 17)
    assert [(r.index, r.offset, r.partition) for r in items] == [(0, 17, 2), (1, 17, 2), (2, 17, 2)]
    out = run(ingestor, items)
    assert isinstance(out[0], Document) and isinstance(out[2], Document) and out[0].doc_id != out[2].doc_id
    letter = out[1]
    assert isinstance(letter, DeadLetter) and "malformed JSON" in letter.reason
    assert (letter.index, letter.offset, letter.original_bytes()) == (1, 17, b'{"id": "b", "headline": ')
    [single] = records("news", news(), "raw-news", 0, 1)
    assert single.index is None and run(ingestor, [single])[0].doc_id == doc_id("news", "reuters", "n1")


def test_helper_processes_give_the_same_documents_as_one_process():
    items = [rec("news", news(id=f"n{i}", headline=f"Apple &amp; Tesla <b>story</b> number {i % 40}"), i) for i in range(300)]
    items += [rec("social", post(id=f"p{i}"), 300 + i) for i in range(40)] + [rec("news", b"{broken", 999)]
    inline = run(Ingestor(b"k", max_message_bytes=4096, max_text_chars=500), items)
    helped = Ingestor(b"k", max_message_bytes=4096, max_text_chars=500, processes=1, parallel_from=100)
    try:
        parallel = run(helped, items)
        assert helped._pool is not None  # the batch did go through the helper
    finally:
        helped.close()

    def comparable(outcomes):
        return [o.model_dump(exclude={"ingested_at", "failed_at"}) for o in outcomes]

    assert comparable(parallel) == comparable(inline)
    assert sum(isinstance(o, DeadLetter) for o in parallel) == 1
    assert sum(bool(o.duplicate_of) for o in parallel if isinstance(o, Document)) > 200  # 40 stories, 300 items


def test_helpers_use_the_workers_entity_index():
    from streams.entities import Company, EntityIndex

    index = EntityIndex([Company("ZZZ", "Zeta Widgets", "Energy", ())])
    items = [rec("news", news(id=f"z{i}", headline=f"Zeta Widgets wins contract number {i}", tickers=[]), i)
             for i in range(120)]
    helped = Ingestor(b"k", entities=index, processes=1, parallel_from=10)
    try:
        docs = run(helped, items)
        assert helped._pool is not None
    finally:
        helped.close()
    assert all(d.tickers == ["ZZZ"] and d.sectors == ["Energy"] for d in docs)


def test_the_one_step_parse_accepts_and_rejects_exactly_what_the_step_by_step_validation_does():
    from datetime import datetime, timedelta, timezone

    from streams.ingest import RAW_MODELS, Rejected, parse
    from streams.synthetic import SyntheticFeed

    feed = SyntheticFeed(seed=7, start=datetime(2026, 11, 29, tzinfo=timezone.utc) - timedelta(days=1), rhythm=False)
    values = [(kind, orjson.dumps(item)) for _, kind, item in feed.items(300, 50.0)]
    values += [("news", news(published_at="2026-11-29T07:00:00")), ("news", news(tickers="TSLA")),
               ("social", post(engagement={"likes": "many"})), ("news", news(extra=1)), ("news", b"[1, 2]"),
               ("social", post(created_at=1796105108)), ("news", news(headline="a\\ud800b").replace(b"\\\\", b"\\"))]
    for kind, value in values:
        try:
            expected = RAW_MODELS[kind].model_validate(orjson.loads(value))
        except ValueError:  # orjson's and pydantic's errors
            expected = None
        try:
            got = parse(RawRecord(kind, value, "t", 0, 0), 1 << 20)
        except Rejected:
            got = None
        assert got == expected, value


def test_the_duplicate_window_given_is_the_one_used():
    """An empty Deduplicator is falsy (it has a length): ``dedup or Deduplicator()`` once swapped every configured
    window (``stream.dedup_window``, ``near_duplicate_threshold``) for the default 50,000 documents at 0.6."""
    window = Deduplicator(100, 0.8)
    ingestor = Ingestor(b"k", dedup=window)
    assert ingestor.dedup is window
    records = [RawRecord("social", orjson.dumps({"id": f"p{i}", "platform": "x", "author": "@a_b1c2",
                                                 "created_at": "2026-11-03T14:00:00Z", "text": f"post number {i} about $TSLA"}),
                         "t", 0, i) for i in range(150)]
    assert all(isinstance(o, Ingested) for o in ingestor.process(records))
    assert len(window) == 100  # the oldest 50 forgotten
