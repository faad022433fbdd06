import orjson
import pytest

from streams.envelope import pack, shard, split_raw, unpack


def test_shard_is_stable_and_spreads_keys():
    keys = [f"{i:032x}" for i in range(2000)]
    assert [shard(k, 4) for k in keys] == [shard(k, 4) for k in keys]
    assert shard("abc", 4) == 2  # crc32: the same in every process and Python version (no hash seed)
    counts = [sum(shard(k, 4) == p for k in keys) for p in range(4)]
    assert min(counts) > 400


def test_pack_respects_the_size_limit_and_unpack_restores_the_items():
    items = [orjson.dumps({"i": i, "text": "x" * (i % 50)}) for i in range(300)]
    envelopes = pack(items, 1024)
    assert len(envelopes) > 1 and all(len(e) <= 1024 for e in envelopes)
    assert [item for e in envelopes for item in unpack(e)] == items
    assert pack([b"y" * 5000], 1024) == [b"y" * 5000]  # an item larger than the limit travels alone
    assert pack([], 1024) == [] and unpack(b"") == [] and unpack(None) == []


@pytest.mark.parametrize("value, expected", [
    (b'{"a": 1}', None),  # one item
    (b'{"a": 1}\n', None),  # one item, a trailing newline
    (b'{\n  "a": 1\n}', None),  # pretty-printed: one item
    (b'not json\n{"a": 1}', None),  # malformed first line: the message is one (bad) item
    (b'[1]\n[2]', None),  # lines but not objects
    (b'{"a": 1}\n{"b": 2}', [b'{"a": 1}', b'{"b": 2}']),
    (b'{"a": 1}\n\n{broken\r\n{"c": 3}\n', [b'{"a": 1}', b"{broken\r", b'{"c": 3}']),  # a bad line is its own item
])
def test_split_raw_tells_json_lines_from_one_item(value, expected):
    assert split_raw(value) == expected


def test_the_watermark_header_carries_the_time_and_the_producer():
    from datetime import datetime, timezone

    from streams.envelope import read_watermark, watermark_header

    t = datetime(2026, 11, 29, 10, 0, 1, 500000, tzinfo=timezone.utc)
    assert read_watermark(watermark_header(t, "host:42")) == (t, "host:42")
    assert read_watermark(dict(watermark_header(t))) == (t, "")  # a mapping, no producer said
    assert read_watermark([("other", b"x")]) is None and read_watermark(None) is None


def test_a_stage_sends_its_watermark_to_every_partition_once_per_new_value():
    from datetime import datetime, timedelta, timezone

    from sentimon.apps import PRODUCER, Outbox
    from streams.envelope import read_watermark

    t = datetime(2026, 11, 29, 10, 0, tzinfo=timezone.utc)
    marked: dict = {}

    def batch(watermark, *doc_ids):
        out = Outbox("ingest", "dead", {"docs": 4}, 1 << 20, marked=marked)
        for doc_id in doc_ids:
            out.add("docs", doc_id, doc_id.encode())
        return {(m.partition, m.value, read_watermark(m.headers)) for m in out.messages(watermark)}

    first = batch(t, "abc")  # shard("abc", 4) == 2
    assert first == {(2, b"abc", (t, PRODUCER))} | {(p, b"", (t, PRODUCER)) for p in (0, 1, 3)}
    assert batch(t, "abc") == {(2, b"abc", (t, PRODUCER))}  # the others have this watermark already
    later = t + timedelta(seconds=5)
    assert batch(later) == {(p, b"", (later, PRODUCER)) for p in range(4)}  # no items: markers only
    assert batch(None, "abc") == {(2, b"abc", None)}  # no watermark yet: nothing to mark
