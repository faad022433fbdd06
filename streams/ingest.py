"""The ingest stage's logic: raw message bytes -> a :class:`Document`'s JSON or a :class:`DeadLetter` (no I/O).

Every message gets exactly one outcome. Reasons say what was wrong and where, so a feed owner can fix
the producer; the dead letter keeps the original bytes and their topic/partition/offset.
"""

from __future__ import annotations

import base64
import hashlib
from concurrent.futures import ProcessPoolExecutor
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal, NamedTuple

import orjson
from pydantic import ValidationError

from schemas import DeadLetter, Document, NewsItem, SocialPost
from schemas.base import EARLIEST, iso_ms, now_utc
from streams.dedup import Candidate, Deduplicator, Key, keys
from streams.envelope import split_raw
from streams.entities import EntityIndex, default_index
from streams.normalize import clean_label, clean_url, find_urls, looks_binary, normalize
from streams.privacy import hash_handle, scrub, scrub_url
from streams.process import child_pool, collect_rarely

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
    index: int | None = None  # position within a JSON Lines message; None: the message is one item


def records(kind: Kind, value: bytes | None, topic: str, partition: int, offset: int) -> list[RawRecord]:
    """The items of one raw message: itself, or each line of a JSON Lines message (see :mod:`streams.envelope`)."""
    lines = split_raw(value)
    if lines is None:
        return [RawRecord(kind, value, topic, partition, offset)]
    return [RawRecord(kind, line, topic, partition, offset, i) for i, line in enumerate(lines)]


@dataclass(frozen=True)
class Ingested:
    """A document ready for the documents topic: its id, the story it repeats ('' if none), and its JSON.

    The JSON is written straight from fields this stage derived from validated input (building a pydantic
    model per document only to serialize it was a fifth of the stage); the store validates every document
    against :class:`Document` before writing it, and the tests check this output against it."""

    doc_id: str
    duplicate_of: str
    json: bytes

    def document(self) -> Document:
        return Document.model_validate_json(self.json)


_DOCUMENT_DEFAULTS = {
    name: f.get_default(call_default_factory=True) for name, f in Document.model_fields.items()
    if not f.is_required() and name != "duplicate_of"  # written last, see _document_json
}


def _document_json(fields: dict, ingested_at: str) -> bytes:
    """The document's JSON with ``"duplicate_of":""`` last, for :func:`_with_original` to fill in;
    ``ingested_at``: the batch's time, formatted once for all of its documents."""
    return orjson.dumps({
        **_DOCUMENT_DEFAULTS, **fields,
        "event_time": iso_ms(fields["event_time"]), "ingested_at": ingested_at, "duplicate_of": "",
    })


_NO_ORIGINAL = b'""}'


def _with_original(document_json: bytes, original: str) -> bytes:
    # ids are hex (no escaping): splicing is exact and skips serializing the document twice
    return document_json[: -len(_NO_ORIGINAL)] + b'"' + original.encode() + b'"}' if original else document_json


class Prepared(NamedTuple):
    """A record's document before duplicate detection: its JSON (``duplicate_of`` empty) and its dedup key.
    A tuple: helper processes send many of them (a frozen dataclass cost 3x more to unpickle)."""

    json: bytes
    key: Key


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
    model = RAW_MODELS[record.kind]
    try:  # the common case in one step (pydantic's own JSON parser; no dict built first)
        return model.model_validate_json(value)
    except ValidationError:
        pass  # the step by step path below says precisely what is wrong
    try:
        obj = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise Rejected(f"malformed JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise Rejected(f"wrong schema: expected a JSON object, got {type(obj).__name__}")
    try:
        return model.model_validate(obj)
    except ValidationError as exc:
        raise Rejected(explain(exc, f"{record.kind} item (see {SCHEMA_FILES[record.kind]})")) from None


class Ingestor:
    """Turns raw records into documents; holds the duplicate window and the entity index.

    ``processes`` > 0: batches of at least ``parallel_from`` records are parsed and normalized partly
    in that many helper processes (the per-record work is pure; one Python process uses one core),
    while duplicate detection, which needs the whole window, stays here. Call :meth:`close` when done.
    """

    def __init__(
        self,
        privacy_key: bytes,
        *,
        max_message_bytes: int = 256 * 1024,
        max_text_chars: int = 20_000,
        max_future_s: float = 300.0,
        min_event_time: datetime = EARLIEST,
        dedup: Deduplicator | None = None,
        entities: EntityIndex | None = None,
        processes: int = 0,
        parallel_from: int = 256,
    ):
        self.key = privacy_key
        self.max_message_bytes = max_message_bytes
        self.max_text_chars = max_text_chars
        self.max_future = timedelta(seconds=max_future_s)
        self.min_event_time = min_event_time
        self.dedup = dedup if dedup is not None else Deduplicator()  # not `or`: an empty window is falsy (__len__)
        self.entities = entities or default_index()
        self.processes = processes
        self.parallel_from = parallel_from
        self._pool: ProcessPoolExecutor | None = None

    def start(self) -> None:
        """Start the helper processes now (each imports the models once), not at the first big batch."""
        if self.processes and self._pool is None:
            self._pool = child_pool(
                self.processes, _helper_init,
                (self.key, self.max_message_bytes, self.max_text_chars, self.max_future.total_seconds(),
                 self.min_event_time, self.entities, self.dedup.min_words),
            )
            for f in [self._pool.submit(_helper_prepare, [], now_utc()) for _ in range(self.processes)]:
                f.result()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None

    def prepare(self, records: Sequence[RawRecord], ingested_at: datetime) -> list[Prepared | str]:
        """Per record, in order: its document before duplicate detection, or why it was rejected.
        Pure (no window): helper processes run it."""
        out: list[Prepared | str | None] = []
        candidates, slots, ingested = [], [], iso_ms(ingested_at)
        for record in records:
            try:
                f = self.fields(parse(record, self.max_message_bytes), ingested_at)
                document_json = _document_json(f, ingested)
            except Rejected as exc:
                out.append(str(exc))
                continue
            except Exception as exc:  # noqa: BLE001 - one item must never stop the stage: it is dead-lettered
                out.append(f"could not process the item ({type(exc).__name__}: {str(exc)[:200]})")
                continue
            # news: the same story re-published (exact or near); social: copies of one post (exact only:
            # two people writing "TSLA looks weak" independently are two opinions)
            candidates.append(Candidate(f["doc_id"], f["text"], f"{f['kind']}:{','.join(f['tickers'])}",
                                        near=f["kind"] == "news"))
            slots.append((len(out), document_json))
            out.append(None)
        for (i, document_json), key in zip(slots, keys(candidates, self.dedup.min_words)):
            out[i] = Prepared(document_json, key)
        return out  # type: ignore[return-value]

    def _prepare_all(self, records: Sequence[RawRecord], ingested_at: datetime) -> list[Prepared | str]:
        if not self.processes or len(records) < self.parallel_from:
            return self.prepare(records, ingested_at)
        self.start()
        assert self._pool is not None
        # this process also runs duplicate detection on everything, so helpers take larger shares
        share = int(len(records) * _HELPER_WEIGHT / (_HELPER_WEIGHT * self.processes + 1))
        futures = [self._pool.submit(_helper_prepare, records[i * share:(i + 1) * share], ingested_at)
                   for i in range(self.processes)]
        mine = self.prepare(records[self.processes * share:], ingested_at)
        return [p for f in futures for p in f.result()] + mine

    def fields(self, item: NewsItem | SocialPost, ingested_at: datetime) -> dict:
        """A document's fields but ``duplicate_of``: normalized, scrubbed, with entities and id.
        :class:`Rejected` if nothing is left."""
        if isinstance(item, NewsItem):  # news can carry personal data too (a reporter's phone, a reader's e-mail)
            title = normalize(scrub(item.headline, self.key))
            body = normalize(scrub(item.body, self.key)) if item.body else ""
            text = title or body[:500]
            fields = dict(
                kind="news", source=clean_label(item.source), source_id=item.id, event_time=item.published_at,
                title=title, url=scrub_url(clean_url(item.url or next(iter(find_urls(item.body)), ""))), language=item.language,
            )
            tagged, scan = item.tickers, f"{item.headline} {item.body}"
        else:
            text = normalize(scrub(item.text, self.key))
            fields = dict(
                kind="social", source=clean_label(item.platform), source_id=item.id, event_time=item.created_at,
                url=scrub_url(clean_url(next(iter(find_urls(item.text)), ""))),
                author_hash=hash_handle(item.author, self.key),
                engagement=item.engagement.likes + item.engagement.reposts + item.engagement.replies,
            )
            tagged, scan = item.cashtags, item.text
        if not text:
            raise Rejected("no text left after normalization (only markup, links or whitespace)")
        if not fields["source"]:
            raise Rejected(f"no {'source' if fields['kind'] == 'news' else 'platform'} left after normalization "
                           "(only control or invisible characters)")
        if len(text) > self.max_text_chars:
            raise Rejected(f"oversized text: {len(text)} characters > limit {self.max_text_chars} (stream.max_text_chars)")
        self.check_time(fields["event_time"], ingested_at)
        found = self.entities.find(scan, tagged)
        return dict(
            doc_id=doc_id(fields["kind"], fields["source"], fields["source_id"]),
            ingested_at=ingested_at,
            text=text,
            tickers=list(found.tickers),
            sectors=list(found.sectors),
            **fields,
        )

    def check_time(self, event_time: datetime, ingested_at: datetime) -> None:
        """:class:`Rejected` when the event time lies beyond ``max_future_s`` after ingestion (a wrong clock, a
        typo in the year: it would move the watermark past every window) or before ``min_event_time``."""
        if event_time > ingested_at + self.max_future:
            raise Rejected(f"event time {iso_ms(event_time)} is more than {self.max_future.total_seconds():g} s after "
                           f"ingestion at {iso_ms(ingested_at)} (stream.max_future_s)")
        if event_time < self.min_event_time:
            raise Rejected(f"event time {iso_ms(event_time)} is before {iso_ms(self.min_event_time)} "
                           "(stream.min_event_time)")

    def process(self, records: Sequence[RawRecord]) -> list[Ingested | DeadLetter]:
        """One outcome per record, in order. Duplicates are flagged for the whole batch at once."""
        out: list[Ingested | DeadLetter | None] = [None] * len(records)
        pending: list[tuple[int, Prepared]] = []
        for i, (record, prepared) in enumerate(zip(records, self._prepare_all(records, now_utc()))):
            if isinstance(prepared, str):
                out[i] = dead_letter("ingest", prepared, record.value, record.topic, record.partition, record.offset,
                                     record.index)
            else:
                pending.append((i, prepared))
        originals = self.dedup.check_keys([p.key for _, p in pending])
        for (i, p), original in zip(pending, originals):
            out[i] = Ingested(p.key.doc_id, original, _with_original(p.json, original))
        return out  # type: ignore[return-value]


_HELPER_WEIGHT = 1.5  # a helper's share of a batch relative to this process's (measured: ~0.6 of it with one helper)
_helper: Ingestor | None = None


def _helper_init(key: bytes, max_message_bytes: int, max_text_chars: int, max_future_s: float,
                 min_event_time: datetime, entities: EntityIndex, min_words: int) -> None:
    """A helper's Ingestor: the worker's limits, entity index and duplicate-key rule (no window of its own)."""
    global _helper
    _helper = Ingestor(key, max_message_bytes=max_message_bytes, max_text_chars=max_text_chars,
                       max_future_s=max_future_s, min_event_time=min_event_time, entities=entities,
                       dedup=Deduplicator(min_words=min_words))
    collect_rarely()


def _helper_prepare(records: Sequence[RawRecord], ingested_at: datetime) -> list[Prepared | str]:
    assert _helper is not None
    return _helper.prepare(records, ingested_at)


MAX_ORIGINAL_BYTES = 256 * 1024
"""The most original bytes a dead letter carries (base64 makes it a third larger): dead letters must fit the
broker's message limit (1 MB by default) whatever was refused. A larger original is cut, with its size and
SHA-256 recorded (the whole item stays in the raw topic and the archive)."""


def dead_letter(stage: str, reason: str, value: bytes | None, topic: str, partition: int, offset: int,
                index: int | None = None, max_original: int = MAX_ORIGINAL_BYTES) -> DeadLetter:
    """The dead letter of one item: ``value`` is its original bytes (the line, for an item of a JSON Lines
    message), cut to ``max_original`` bytes when larger (``truncated``, with ``original_size`` and
    ``original_sha256`` of the whole)."""
    value = value or b""
    kept = value[:max_original]
    return DeadLetter(
        stage=stage,  # type: ignore[arg-type]
        reason=reason[:MAX_REASON_CHARS],
        topic=topic,
        partition=partition,
        offset=offset,
        index=index,
        original=base64.b64encode(kept).decode(),
        original_size=len(value),
        original_sha256=hashlib.sha256(value).hexdigest(),
        truncated=len(kept) < len(value),
        failed_at=now_utc(),
    )


MAX_REASON_CHARS = 2000
