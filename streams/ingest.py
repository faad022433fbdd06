"""The ingest stage's logic: raw message bytes -> :class:`Document` or :class:`DeadLetter` (no I/O).

Every message gets exactly one outcome. Reasons say what was wrong and where, so a feed owner can fix
the producer; the dead letter keeps the original bytes and their topic/partition/offset.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import orjson
from pydantic import ValidationError

from schemas import DeadLetter, Document, NewsItem, SocialPost
from schemas.base import now_utc
from streams.dedup import Candidate, Deduplicator
from streams.entities import EntityIndex, default_index
from streams.normalize import find_urls, looks_binary, normalize
from streams.privacy import hash_handle, scrub

Kind = Literal["news", "social"]
RAW_MODELS: dict[Kind, type[NewsItem] | type[SocialPost]] = {"news": NewsItem, "social": SocialPost}
SCHEMA_FILES: dict[Kind, str] = {"news": "schemas/json/news_item.v1.json", "social": "schemas/json/social_post.v1.json"}


@dataclass(frozen=True)
class RawRecord:
    """One message as consumed: its value bytes and where it came from."""

    kind: Kind
    value: bytes | None
    topic: str
    partition: int
    offset: int


class Rejected(ValueError):
    """A message that cannot become a document; ``str()`` is the reason."""


def doc_id(kind: str, source: str, source_id: str) -> str:
    """Stable document id: the same item from the same source always gets the same id (32 hex chars)."""
    key = "\x1f".join((kind, source.strip().lower(), source_id.strip())).encode()
    return hashlib.blake2b(key, digest_size=16).hexdigest()


def explain(error: ValidationError, what: str) -> str:
    """One line naming each wrong field, e.g. ``unknown field 'foo'; published_at: Field required``."""
    parts = []
    for e in error.errors(include_url=False)[:5]:
        where = ".".join(str(p) for p in e["loc"]) or "(message)"
        if e["type"] == "extra_forbidden":
            parts.append(f"unknown field '{where}'")
        else:
            parts.append(f"{where}: {e['msg']}")
    more = error.error_count() - len(parts)
    return f"wrong schema for {what}: " + "; ".join(parts) + (f" (+{more} more)" if more > 0 else "")


def parse(record: RawRecord, max_bytes: int) -> NewsItem | SocialPost:
    """Decode and validate one raw message; :class:`Rejected` with a reason otherwise."""
    value = record.value
    if value is None or len(value) == 0:
        raise Rejected("empty message")
    if len(value) > max_bytes:
        raise Rejected(f"oversized message: {len(value)} bytes > limit {max_bytes} (stream.max_message_bytes)")
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Rejected(f"binary or non-UTF-8 message: invalid byte at position {exc.start}") from None
    if looks_binary(text):
        raise Rejected("binary message: control characters in the value, expected UTF-8 JSON")
    try:
        obj = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise Rejected(f"malformed JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise Rejected(f"wrong schema: expected a JSON object, got {type(obj).__name__}")
    model = RAW_MODELS[record.kind]
    try:
        return model.model_validate(obj)
    except ValidationError as exc:
        raise Rejected(explain(exc, f"{record.kind} item (see {SCHEMA_FILES[record.kind]})")) from None


class Ingestor:
    """Turns raw records into documents; holds the duplicate window and the entity index."""

    def __init__(
        self,
        privacy_key: bytes,
        *,
        max_message_bytes: int = 256 * 1024,
        max_text_chars: int = 20_000,
        dedup: Deduplicator | None = None,
        entities: EntityIndex | None = None,
    ):
        self.key = privacy_key
        self.max_message_bytes = max_message_bytes
        self.max_text_chars = max_text_chars
        self.dedup = dedup or Deduplicator()
        self.entities = entities or default_index()

    def fields(self, item: NewsItem | SocialPost, ingested_at: datetime) -> dict:
        """A document's fields but ``duplicate_of``: normalized, scrubbed, with entities and id.
        :class:`Rejected` if nothing is left."""
        if isinstance(item, NewsItem):
            title = normalize(item.headline)
            body = normalize(item.body) if item.body else ""
            text = title or body[:500]
            fields = dict(
                kind="news", source=item.source.strip().lower(), source_id=item.id, event_time=item.published_at,
                title=title, url=item.url or next(iter(find_urls(item.body)), ""), language=item.language,
            )
            tagged, scan = item.tickers, f"{item.headline} {item.body}"
        else:
            text = normalize(scrub(item.text, self.key))
            fields = dict(
                kind="social", source=item.platform.strip().lower(), source_id=item.id, event_time=item.created_at,
                url=next(iter(find_urls(item.text)), ""),
                author_hash=hash_handle(item.author, self.key),
                engagement=item.engagement.likes + item.engagement.reposts + item.engagement.replies,
            )
            tagged, scan = item.cashtags, item.text
        if not text:
            raise Rejected("no text left after normalization (only markup, links or whitespace)")
        if len(text) > self.max_text_chars:
            raise Rejected(f"oversized text: {len(text)} characters > limit {self.max_text_chars} (stream.max_text_chars)")
        found = self.entities.find(scan, tagged)
        return dict(
            doc_id=doc_id(fields["kind"], fields["source"], fields["source_id"]),
            ingested_at=ingested_at,
            text=text,
            tickers=list(found.tickers),
            sectors=list(found.sectors),
            **fields,
        )

    def process(self, records: Sequence[RawRecord]) -> list[Document | DeadLetter]:
        """One outcome per record, in order. Duplicates are flagged for the whole batch at once."""
        now = now_utc()
        out: list[Document | DeadLetter | None] = [None] * len(records)
        pending: list[tuple[int, dict]] = []
        for i, record in enumerate(records):
            try:
                pending.append((i, self.fields(parse(record, self.max_message_bytes), now)))
            except Rejected as exc:
                out[i] = dead_letter("ingest", str(exc), record.value, record.topic, record.partition, record.offset)
        # news: the same story re-published (exact or near); social: copies of one post (exact only:
        # two people writing "TSLA looks weak" independently are two opinions)
        originals = self.dedup.check_batch([
            Candidate(f["doc_id"], f["text"], f"{f['kind']}:{','.join(f['tickers'])}", near=f["kind"] == "news")
            for _, f in pending
        ])
        for (i, f), original in zip(pending, originals):
            out[i] = Document(**f, duplicate_of=original)
        return out  # type: ignore[return-value]


def dead_letter(stage: str, reason: str, value: bytes | None, topic: str, partition: int, offset: int) -> DeadLetter:
    return DeadLetter(
        stage=stage,  # type: ignore[arg-type]
        reason=reason,
        topic=topic,
        partition=partition,
        offset=offset,
        original=base64.b64encode(value or b"").decode(),
        failed_at=now_utc(),
    )
