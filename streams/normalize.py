"""Text normalization for stored and scored documents (pure functions).

Unicode NFKC, HTML tags and entities removed, URLs taken out of the text (they carry no sentiment and
are kept in the document's ``url``), control and zero-width characters dropped, whitespace collapsed.
"""

from __future__ import annotations

import html
import re
import unicodedata

URL = re.compile(r"(?:https?://|www\.)[^\s<>\"']+", re.IGNORECASE)
_TAG = re.compile(r"<(?:script|style)\b.*?</(?:script|style)\s*>|<!--.*?-->|</?[A-Za-z][^<>]*>", re.DOTALL | re.IGNORECASE)
_BLOCK_TAG = re.compile(r"<\s*(?:br|/p|/div|/li|/h\d)\b[^>]*>", re.IGNORECASE)
_INVISIBLE = dict.fromkeys(
    [c for c in range(0x20) if c not in (9, 10, 13)] + [0x7F, 0x200B, 0x200C, 0x200D, 0x2060, 0xFEFF], " "
)
_SPACE = re.compile(r"\s+")
_WWW = re.compile(r"www\.", re.IGNORECASE)


def find_urls(text: str) -> list[str]:
    return [u.rstrip(".,;:!?)]") for u in URL.findall(text)]


def normalize(text: str) -> str:
    """Clean text for storage and scoring; idempotent (``normalize(normalize(x)) == normalize(x)``)."""
    # each step runs only when its marker is present: most items have no markup (a third of the stage's cost)
    if "<" in text:
        text = _BLOCK_TAG.sub(" ", text)
        text = _TAG.sub("", text)
    if "&" in text:
        # feeds double-escape (&amp;amp;): unescape until stable, at most three rounds
        for _ in range(3):
            unescaped = html.unescape(text)
            if unescaped == text:
                break
            text = unescaped
        if "<" in text:
            text = _TAG.sub("", text)
    if not text.isascii():
        text = unicodedata.normalize("NFKC", text)
    if "://" in text or _WWW.search(text):
        text = URL.sub(" ", text)
    text = text.translate(_INVISIBLE)
    return _SPACE.sub(" ", text).strip()


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def looks_binary(text: str) -> bool:
    """True when decoded text is mostly not text: NUL bytes or > 10% control characters."""
    if "\x00" in text:
        return True
    if not text or not _CONTROL.search(text):
        return False
    return len(_CONTROL.findall(text)) / len(text) > 0.10
