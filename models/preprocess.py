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
# In ASCII the only "C" (control, format, ...) characters are the Cc ones, 0x00-0x1F and 0x7F: most texts
# take these regular expressions instead of a Python loop over their characters (same result).
ASCII_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
ASCII_CONTROL_NOT_SPACE_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def prepare(text: str) -> str:
    """Normalise one text for the model: NFKC, entities, URLs -> 'http', no control chars, single spaces."""
    text = unicodedata.normalize("NFKC", html.unescape(text))
    text = URL_RE.sub(URL_TOKEN, text)
    if text.isascii():
        text = ASCII_CONTROL_RE.sub(" ", text)
    else:
        text = "".join(ch if unicodedata.category(ch)[0] != "C" else " " for ch in text)
    return SPACE_RE.sub(" ", text).strip()


def control_count(text: str) -> int:
    """How many control characters (Unicode category Cc) ``text`` holds, tabs and line breaks not counted."""
    if text.isascii():
        return len(ASCII_CONTROL_NOT_SPACE_RE.findall(text))
    return sum(1 for ch in text if unicodedata.category(ch) == "Cc" and ch not in "\t\n\r")


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
    if item and control_count(item) / len(item) > 0.1:
        return None, "binary input: mostly control characters", False
    text = prepare(item)
    if not text:
        return None, "empty text: nothing to score", False
    return text, None, truncated
