"""Text preparation shared by training and inference (the model sees exactly this).

Pure functions. URLs carry no sentiment and cost a dozen word pieces each (t.co links), so they
become the single token ``http``; HTML entities are unescaped; whitespace is collapsed.
"""

from __future__ import annotations

import html
import re
import unicodedata

URL_RE = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
SPACE_RE = re.compile(r"\s+")
URL_TOKEN = "http"


def prepare(text: str) -> str:
    """Normalise one text for the model: NFKC, entities, URLs -> 'http', no control chars, single spaces."""
    text = unicodedata.normalize("NFKC", html.unescape(text))
    text = URL_RE.sub(URL_TOKEN, text)
    text = "".join(ch if unicodedata.category(ch)[0] != "C" else " " for ch in text)
    return SPACE_RE.sub(" ", text).strip()


def check_text(item: object, max_chars: int) -> tuple[str | None, str | None, bool]:
    """Validate one inference input. Returns (prepared text, error, truncated); exactly one of text/error is set.

    bytes are accepted when they are valid UTF-8; binary data (NUL bytes, mostly control characters),
    non-text types and texts empty after preparation are per-item errors. Texts longer than
    ``max_chars`` are cut (``truncated`` is then True) so one huge item cannot stall a batch.
    """
    if isinstance(item, (bytes, bytearray)):
        try:
            item = bytes(item).decode("utf-8")
        except UnicodeDecodeError:
            return None, "binary input: not valid UTF-8", False
    if not isinstance(item, str):
        return None, f"not text: got {type(item).__name__}", False
    if "\x00" in item:
        return None, "binary input: contains NUL bytes", False
    truncated = len(item) > max_chars
    if truncated:
        item = item[:max_chars]
    controls = sum(1 for ch in item if unicodedata.category(ch) == "Cc" and ch not in "\t\n\r")
    if item and controls / len(item) > 0.1:
        return None, "binary input: mostly control characters", False
    text = prepare(item)
    if not text:
        return None, "empty text: nothing to score", False
    return text, None, truncated
