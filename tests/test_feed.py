import orjson

from streams.envelope import split_raw
from streams.feed import messages, read_file
from streams.kafka.producer import OutMessage


def test_jsonl_is_published_byte_for_byte_with_kind_guessed(tmp_path):
    path = tmp_path / "items.jsonl"
    lines = [b'{"id":"1","source":"r","published_at":"2026-11-29T07:00:00Z","headline":"h"}',
             b'{"id":"2","platform":"x","author":"a","created_at":"2026-11-29T07:00:00Z","text":"t"}',
             b"{broken"]
    path.write_bytes(b"\n".join(lines) + b"\n\n")
    assert list(read_file(path)) == [("news", lines[0]), ("social", lines[1]), ("news", lines[2])]
    assert [k for k, _ in read_file(path, "social")] == ["social"] * 3


def test_csv_rows_become_json_items(tmp_path):
    path = tmp_path / "posts.csv"
    path.write_text("id,platform,author,created_at,text,cashtags,likes,reposts\n"
                    "7,x,@bob,2026-11-29T07:00:00Z,\"$TSLA, down\",TSLA|F,3,1\n")
    [(kind, value)] = list(read_file(path))
    assert kind == "social"
    assert orjson.loads(value) == {"id": "7", "platform": "x", "author": "@bob", "created_at": "2026-11-29T07:00:00Z",
                                   "text": "$TSLA, down", "cashtags": ["TSLA", "F"],
                                   "engagement": {"likes": 3, "reposts": 1}}


def test_items_are_joined_into_json_lines_messages_per_kind():
    topics = {"news": "raw-news", "social": "raw-social"}
    items = [("news", b'{"n":1}'), ("social", b'{"s":1}'), ("news", b'{"n":2}'), ("news", b'{"n":3}')]
    assert messages(items, topics) == [OutMessage("raw-news", v) for v in (b'{"n":1}', b'{"n":2}', b'{"n":3}')] + [
        OutMessage("raw-social", b'{"s":1}')]
    batched = messages(items, topics, per_message=2)
    assert [(m.topic, m.value) for m in batched] == [
        ("raw-news", b'{"n":1}\n{"n":2}'), ("raw-news", b'{"n":3}'), ("raw-social", b'{"s":1}')]
    assert [split_raw(m.value) for m in batched] == [[b'{"n":1}', b'{"n":2}'], None, None]
