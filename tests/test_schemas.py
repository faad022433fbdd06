import json
from datetime import datetime, timezone

import pytest
from pydantic import ValidationError

from schemas import EVENTS, NewsItem, SocialPost
from schemas.jsonschema import JSON_DIR, render


def test_committed_json_schemas_match_the_models():
    rendered = render()
    assert set(rendered) == {p.name for p in JSON_DIR.glob("*.json")}
    for name, text in rendered.items():
        assert (JSON_DIR / name).read_text() == text, f"{name} is stale: run `sentimon schemas export`"


def test_every_event_is_versioned_and_strict():
    for name, model in EVENTS.items():
        assert model.model_fields["schema_version"].default == 1, name
        schema = json.loads((JSON_DIR / f"{name}.v1.json").read_text())
        assert schema.get("additionalProperties") is False, name


def test_timestamps_are_utc_milliseconds():
    item = NewsItem(id="1", source="s", published_at="2026-11-29T12:00:00.987654+05:30", headline="h")
    assert item.published_at == datetime(2026, 11, 29, 6, 30, 0, 987000, tzinfo=timezone.utc)
    assert json.loads(item.model_dump_json())["published_at"] == "2026-11-29T06:30:00.987Z"


def test_naive_timestamps_and_unknown_fields_are_rejected():
    with pytest.raises(ValidationError, match="timezone"):
        NewsItem(id="1", source="s", published_at="2026-11-29T12:00:00", headline="h")
    with pytest.raises(ValidationError, match="Extra inputs"):
        SocialPost.model_validate({"id": "1", "platform": "x", "author": "a", "created_at": "2026-11-29T12:00:00Z",
                                   "text": "t", "mood": "happy"})


def test_topic_names_are_prefixable(settings):
    topics = settings.topics.model_copy(update={"prefix": "replay-7."})
    assert topics.name("scores") == "replay-7.scores"
    assert topics.name("dead_letters") == "replay-7.dead-letters"
