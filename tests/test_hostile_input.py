"""Hostile input, property-based (hypothesis): whatever arrives, ingest gives exactly one outcome per
item, a valid document or a dead letter with a reason and the original bytes, and never raises; what it
stores is clean text; the store keeps any text verbatim (parameters, never SQL text); an alerts file is
loaded or refused with a ConfigError naming the place, never anything else."""

from __future__ import annotations

import string
import unicodedata
from datetime import datetime, timezone

import orjson
import pytest
import yaml
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from alerts.config import DEFAULT_RULES, AlertsConfig, ConfigError, parse
from schemas import DeadLetter
from schemas.ticker import TICKER_PATTERN
from streams.ingest import Ingested, Ingestor, RawRecord, records
from streams.normalize import normalize

MAX_BYTES, MAX_CHARS = 4096, 500
HOSTILE = [
    "Robert'); DROP TABLE documents; --", "' OR 1=1 --", "\\'; SELECT * FROM system.users; --", "{db:String}",
    "<script>alert(document.cookie)</script>", "<img src=x onerror=alert(1)>", "javascript:alert(1)",
    "&lt;script&gt;alert(1)&lt;/script&gt;", "&amp;amp;amp;amp;lt;b&amp;amp;amp;amp;gt;", "\u202eSLTA\u202c up",
    "a\x00b", "\x85\x9b31m red", "$TSLA 🚀", "Ｔｅｓｌａ ＜b＞", "\u2028\u2029",
    "%s%s%n", "../../etc/passwd", "${jndi:ldap://x}", "{{ 7*7 }}",
]
# any text, including controls, formats (bidi), private use, and the strings above (no lone surrogates:
# they cannot be encoded; invalid UTF-8 comes from the binary strategy)
texts = st.one_of(st.text(st.characters(exclude_categories=("Cs",)), max_size=300), st.sampled_from(HOSTILE),
                  st.lists(st.sampled_from(HOSTILE), min_size=1, max_size=4).map(" ".join))
scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**63, 2**63 - 1), st.floats(allow_nan=False), texts)
json_values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                             st.dictionaries(texts, inner, max_size=4)), max_leaves=12)
times = st.one_of(st.datetimes(timezones=st.just(timezone.utc)).map(lambda t: t.isoformat()),
                  st.sampled_from(["2026-11-03T14:00:00Z", "2026-11-03T14:00:00", "yesterday", "", "9999-99-99"]))


@st.composite
def items(draw) -> tuple[str, bytes]:
    """A news item or social post of the feed's shape, with any field given a hostile or wrong value,
    sometimes an unknown field, sometimes with the wrong kind."""
    if draw(st.booleans()):
        kind, item = "news", {"id": draw(texts), "source": draw(texts), "published_at": draw(times),
                              "headline": draw(texts), "body": draw(texts), "tickers": draw(st.lists(texts, max_size=3))}
    else:
        kind, item = "social", {"id": draw(texts), "platform": draw(texts), "author": draw(texts),
                                "created_at": draw(times), "text": draw(texts),
                                "engagement": {"likes": draw(st.integers(-5, 10**12))}}
    if draw(st.booleans()):
        item["url"] = draw(st.one_of(texts, st.sampled_from(["javascript:alert(1)", "https://ok.example/a b", "http://x.y/\x1b[31m"])))
    for key in draw(st.lists(st.sampled_from(sorted(item)), max_size=2, unique=True)):
        item[key] = draw(json_values)  # a wrong type, or a missing field
        if draw(st.booleans()):
            del item[key]
    if draw(st.integers(0, 9)) == 0:
        item[draw(texts)] = draw(json_values)
    if draw(st.integers(0, 9)) == 0:
        kind = "social" if kind == "news" else "news"
    return kind, orjson.dumps(item)


def deep(n: int, kind: str) -> bytes:
    return b"[" * n + b"]" * n if kind == "list" else b'{"a":' * n + b"1" + b"}" * n


def ingest(values: list[tuple[str, bytes]]) -> list:
    ingestor = Ingestor(b"k", max_message_bytes=MAX_BYTES, max_text_chars=MAX_CHARS)
    return ingestor.process([RawRecord(kind, v, f"raw-{kind}", 0, i) for i, (kind, v) in enumerate(values)])


def assert_accounted(values: list[tuple[str, bytes]], outcomes: list) -> None:
    """One outcome per item: a valid document with clean text, or a dead letter with the original bytes."""
    assert len(outcomes) == len(values)
    for (kind, value), outcome in zip(values, outcomes):
        if isinstance(outcome, DeadLetter):
            assert outcome.reason.strip() and outcome.original_bytes() == value
            continue
        assert isinstance(outcome, Ingested)
        doc = outcome.document()  # the JSON the stage emits is a valid Document
        assert doc.kind == kind and doc.text and len(doc.text) <= MAX_CHARS
        assert doc.url == "" or (doc.url.lower().startswith(("http://", "https://")) and doc.url.isprintable()
                                 and not any(c.isspace() for c in doc.url)), ascii(doc.url)
        for field in (doc.text, doc.title, doc.source):
            assert not any(unicodedata.category(c) == "Cc" for c in field), ascii(field)
            assert not set(field) & BIDI, ascii(field)
            assert "<script" not in field.lower() and field == field.strip()


BIDI = set("\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(items(), min_size=1, max_size=8))
def test_any_feed_shaped_item_is_a_clean_document_or_a_dead_letter(values):
    assert_accounted(values, ingest(values))


@settings(max_examples=120, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["news", "social"]), st.binary(max_size=MAX_BYTES + 200)), min_size=1, max_size=8))
@example([("news", b"\xff\xfe\x00"), ("social", b"\xc3\x28"), ("news", b'{"id": "\xed\xa0\x80"}')])
@example([("news", deep(100_000, "list")), ("social", deep(5_000, "dict"))])
def test_any_bytes_are_a_clean_document_or_a_dead_letter(values):
    assert_accounted(values, ingest(values))


def test_huge_deep_and_megabyte_items_are_dead_lettered_with_a_reason():
    big = orjson.dumps({"id": "1", "source": "s", "published_at": "2026-11-03T14:00:00Z", "headline": "x " * 600_000})
    values = [("news", deep(100_000, "list")), ("news", deep(3_000, "dict")), ("news", big), ("news", b"\x00" * 3000)]
    outcomes = Ingestor(b"k").process([RawRecord(k, v, "raw", 0, i) for i, (k, v) in enumerate(values)])
    reasons = [o.reason for o in outcomes]
    assert all(isinstance(o, DeadLetter) for o in outcomes), reasons
    assert "depth" in reasons[0] and "depth" in reasons[1] and "oversized" in reasons[2] and "binary" in reasons[3]


@settings(max_examples=60, deadline=None)
@given(st.lists(items(), min_size=2, max_size=6))
def test_json_lines_of_hostile_items_give_one_outcome_per_line(values):
    kind = values[0][0]
    message = b"\n".join(v for _, v in values)
    raw = records(kind, message, "raw", 0, 0)
    outcomes = Ingestor(b"k", max_message_bytes=10**6, max_text_chars=MAX_CHARS).process(raw)
    assert len(outcomes) == len(raw) == len(values)
    for r, o in zip(raw, outcomes):
        assert isinstance(o, Ingested) or o.original_bytes() == r.value


@settings(max_examples=500, deadline=None)
@given(texts)
def test_normalized_text_is_clean_and_normalizing_again_changes_nothing(text):
    once = normalize(text)
    assert normalize(once) == once
    assert not any(unicodedata.category(c) == "Cc" for c in once) and not set(once) & BIDI


# --- the store: any text kept verbatim ---------------------------------------------------------------


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    from streams.store import Store

    s = Store(f"chdb://{tmp_path_factory.mktemp('hostile') / 'store'}", "sentimon_hostile")
    s.migrate()
    yield s
    s.close()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(title=texts, text=texts.filter(lambda t: t.strip() != ""), ticker=st.from_regex(TICKER_PATTERN, fullmatch=True))
def test_the_store_keeps_any_text_verbatim_and_runs_none_of_it(store, title, text, ticker):
    from conftest import scored

    assume("\x00" not in title + text + ticker)  # ClickHouse strings may hold NUL, chDB's Arrow path trims at it
    sd = scored(f"h{abs(hash((title, text, ticker)))}", tickers=(ticker,))
    sd = sd.model_copy(update={"document": sd.document.model_copy(update={"title": title, "text": text})})
    before = store.query("SELECT count() FROM system.tables WHERE database = {db:String}", {"db": "sentimon_hostile"})
    store.write([sd])
    rows = store.query("SELECT title, text, tickers FROM {db}.documents WHERE doc_id = {id:String}",
                       {"id": sd.document.doc_id})
    assert rows == [(title, text, [ticker])]
    found = store.query("SELECT count() FROM {db}.documents WHERE title = {t:String}", {"t": title})
    assert found[0][0] >= 1  # and as a query parameter
    after = store.query("SELECT count() FROM system.tables WHERE database = {db:String}", {"db": "sentimon_hostile"})
    assert before == after  # nothing created or dropped


# --- alerts files ------------------------------------------------------------------------------------


DEFAULT = yaml.safe_load(DEFAULT_RULES.read_text())


def _paths(node, prefix=()):
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _paths(v, prefix + (i,))
    yield prefix


PATHS = [p for p in _paths(DEFAULT) if p]
yaml_values = st.one_of(json_values, st.sampled_from(["5m", "-1m", "0s", "1y", "{{ x", "{% for %}", "${NOPE}", "~", "[", "&a"]))


@st.composite
def mutated_rules(draw) -> str:
    """The shipped alerts file with a few values replaced, removed, or set to hostile text."""
    data = yaml.safe_load(DEFAULT_RULES.read_text())
    for path in draw(st.lists(st.sampled_from(PATHS), min_size=1, max_size=3)):
        parent = data
        try:
            for key in path[:-1]:
                parent = parent[key]
            if draw(st.booleans()):
                parent[path[-1]] = draw(yaml_values)
            else:
                del parent[path[-1]]
        except (KeyError, IndexError, TypeError):
            pass  # an earlier mutation removed or replaced the path
    return yaml.safe_dump(data, allow_unicode=True)


def check_parse(text: str) -> None:
    try:
        config = parse(text, "rules.yaml")
    except ConfigError as exc:
        assert str(exc).startswith(("rules.yaml:", "invalid alerts file:")), str(exc)
        assert "Traceback" not in str(exc)
    else:
        assert isinstance(config, AlertsConfig)


@settings(max_examples=300, deadline=None)
@given(mutated_rules())
def test_a_mutated_alerts_file_loads_or_is_refused_with_its_place(text):
    check_parse(text)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=400), st.text(string.printable, max_size=400),
                 json_values.map(lambda v: yaml.safe_dump(v, allow_unicode=True))))
@example("rules: !!python/object/apply:os.system ['echo pwned']")
@example("a: &a [*a, *a]\nrules: *a")
@example("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]\n" for i in range(1, 8)))  # a billion laughs: 10**8 values
@example("? [a, b]\n: c\n")
@example("rules:\n  - name: x\n    for: 1e300\n    scope: {kind: ticker}\n    detector: {type: negative_share, window: 5m, threshold: 0.5}\n")
@example("rules:\n  - name: x\n    annotations: {summary: '{{ ().__class__.__base__.__subclasses__() }}'}\n"
         "    scope: {kind: ticker}\n    detector: {type: negative_share, window: 5m, threshold: 0.5}\n")
def test_any_text_as_an_alerts_file_loads_or_is_refused_with_its_place(text):
    check_parse(text)


def test_the_checks_above_can_fail():
    """The properties are not vacuous: a dirty document and a non-ConfigError would be caught."""
    outcome = ingest([("news", orjson.dumps({"id": "1", "source": "s", "published_at": "2026-11-03T14:00:00Z",
                                              "headline": "fine"}))])
    assert isinstance(outcome[0], Ingested)
    with pytest.raises(AssertionError):
        assert_accounted([("news", b"other bytes")], [DeadLetter(stage="ingest", reason="x", topic="t", partition=0,
                                                                 offset=0, original="", failed_at=datetime.now(timezone.utc))])
