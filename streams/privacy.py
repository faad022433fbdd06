"""Personal data scrubbing for social posts, applied before anything is stored (pure functions).

E-mail addresses and phone numbers become ``[email]`` / ``[phone]``; author handles and @mentions
become a keyed hash (HMAC-SHA256 with the configured secret), so one author stays one id without
the handle being recoverable by anyone who lacks the key.
"""

from __future__ import annotations

import hashlib
import hmac
import re

EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b")
PHONE = re.compile(r"(?<![\w+])(?:\+\d{1,3}[\s.-]?)?(?:\(\d{2,4}\)[\s.-]?)?\d{2,4}[\s.-]\d{3,4}(?:[\s.-]\d{2,4})?(?![\w])")
MENTION = re.compile(r"(?<![\w@])@([A-Za-z0-9_]{1,30})\b")
MIN_PHONE_DIGITS = 7


def hash_handle(handle: str, key: bytes) -> str:
    """Keyed hash of a handle (case-insensitive, '@' ignored), 16 hex characters."""
    normalized = handle.strip().lstrip("@").lower().encode()
    return hmac.new(key, normalized, hashlib.sha256).hexdigest()[:16]


def _phone(match: re.Match) -> str:
    digits = sum(ch.isdigit() for ch in match.group(0))
    return "[phone]" if digits >= MIN_PHONE_DIGITS else match.group(0)


def scrub(text: str, key: bytes) -> str:
    """Text with e-mails, phone numbers and @mentions replaced."""
    text = EMAIL.sub("[email]", text)
    text = PHONE.sub(_phone, text)
    return MENTION.sub(lambda m: "@user_" + hash_handle(m.group(1), key)[:8], text)
