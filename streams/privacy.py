"""Personal data scrubbing, applied before anything is stored (pure functions).

E-mail addresses and phone numbers become ``[email]`` / ``[phone]`` (in URLs too, whose user info is
dropped: :func:`scrub_url`); author handles and @mentions
become a keyed hash (HMAC-SHA256 with the configured secret), so one author stays one id without
the handle being recoverable by anyone who lacks the key. Scrubbing is idempotent, and the raw archive
keeps items scrubbed the same way (:func:`scrub_raw`: the author as the pseudonym ``~<hash>``, which
:func:`hash_handle` passes through), so a replay from the archive gives the documents live gave.
"""

from __future__ import annotations

import hmac
import re
from urllib.parse import quote, unquote, unquote_plus, urlsplit, urlunsplit

import orjson

from streams.normalize import LINK_END, URL, clean_url

EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b")
PHONE = re.compile(r"(?<![\w+])(?:\+\d{1,3}[\s.-]?)?(?:\(\d{2,4}\)[\s.-]?)?\d{2,4}[\s.-]\d{3,4}(?:[\s.-]\d{2,4})?(?![\w])")
MENTION = re.compile(r"(?<![\w@])@(?!user_[0-9a-f]{8}\b)([A-Za-z0-9_]{1,30})\b")  # not one already replaced
PSEUDONYM = re.compile(r"~[0-9a-f]{16}")
_PHONE_CORE = re.compile(r"\d\d[\s.-]\d\d\d")  # in every PHONE match (digits, separator, digits)
MIN_PHONE_DIGITS = 7
TEXT_FIELDS = ("headline", "body", "text", "title")
UNUSABLE_URL = "unusable-url"


def hash_handle(handle: str, key: bytes) -> str:
    """Keyed hash of a handle (case-insensitive, '@' ignored), 16 hex characters; a pseudonym
    (``~<hash>``, see :func:`scrub_raw`) is its hash already."""
    if PSEUDONYM.fullmatch(handle):
        return handle[1:]
    normalized = handle.strip().lstrip("@").lower().encode()
    return hmac.digest(key, normalized, "sha256").hex()[:16]  # the one-shot C path: a tenth of hmac.new's cost


def _phone(match: re.Match) -> str:
    digits = sum(ch.isdigit() for ch in match.group(0))
    return "[phone]" if digits >= MIN_PHONE_DIGITS else match.group(0)


def _contacts(text: str) -> str:
    """Text with e-mail addresses and phone numbers replaced."""
    # each pattern runs only where its core can match: most texts have neither (half of the scrub's cost)
    if "@" in text:
        text = EMAIL.sub("[email]", text)
    if _PHONE_CORE.search(text):
        text = PHONE.sub(_phone, text)
    return text


def scrub(text: str, key: bytes) -> str:
    """Text with e-mails, phone numbers and @mentions replaced; each link in it as :func:`scrub_url` leaves it
    (so the link ingest takes from a scrubbed text is the one it takes from the original, scrubbed)."""
    if "://" not in text:
        return _words(text, key)
    out, last = [], 0
    for m in URL.finditer(text):
        link = m.group(0).rstrip(LINK_END)
        clean = clean_url(link)
        out += [_words(text[last:m.start()], key), scrub_url(clean) if clean else _words(link, key)]
        last = m.start() + len(link)
    out.append(_words(text[last:], key))
    return "".join(out)


def _words(text: str, key: bytes) -> str:
    text = _contacts(text)
    return MENTION.sub(lambda m: "@user_" + hash_handle(m.group(1), key)[:8], text) if "@" in text else text


def scrub_url(url: str) -> str:
    """A URL as it may be stored: user info (``user:password@``) dropped, e-mail addresses in its path or query
    (plain or percent-encoded) and phone numbers in its query replaced; idempotent. '' when it is not a URL."""
    if not url:
        return url
    try:
        parts = urlsplit(url)
    except ValueError:
        return ""
    netloc = parts.netloc.rpartition("@")[2]
    path, query = parts.path, parts.query
    if "@" in unquote(path):
        path = quote(EMAIL.sub("[email]", unquote(path)), safe=_URL_SAFE)
    if query and (("@" in (plain := unquote_plus(query))) or _PHONE_CORE.search(plain)):
        if _contacts(plain) != plain:
            query = quote(_contacts(plain), safe=_URL_SAFE)
    return urlunsplit(parts._replace(netloc=netloc, path=path, query=query))


_URL_SAFE = "/=&;,+:!$'()*"  # kept as they are when a scrubbed part is written back ('[email]' becomes %5Bemail%5D)


def scrub_raw(value: bytes, key: bytes) -> bytes:
    """A raw item as it may be stored: a JSON object with its text fields scrubbed and its author replaced by
    the pseudonym ``~<hash>``; anything else (malformed, binary) with e-mails and phone numbers replaced in
    its bytes. Replaying the result through ingest gives the same document as the original."""
    try:
        obj = orjson.loads(value)
    except orjson.JSONDecodeError:
        obj = None
    if not isinstance(obj, dict):
        return _contacts(value.decode("utf-8", "surrogateescape")).encode("utf-8", "surrogateescape")
    for field in TEXT_FIELDS:
        if isinstance(obj.get(field), str):
            obj[field] = scrub(obj[field], key)
    url = obj.get("url")
    if isinstance(url, str) and url.strip():
        # a URL ingest would refuse is archived as a placeholder ingest refuses the same way (not as '', which
        # would make ingest take the body's first link instead)
        obj["url"] = scrub_url(clean) if (clean := clean_url(url)) else UNUSABLE_URL
    if isinstance(obj.get("author"), str) and obj["author"].strip():
        obj["author"] = "~" + hash_handle(obj["author"], key)
    return orjson.dumps(obj)
