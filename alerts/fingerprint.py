"""An alert's identity: the hash of its labels (the same labels are the same alert, as in Alertmanager)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping


def fingerprint(labels: Mapping[str, str]) -> str:
    """16 hex digits of SHA-256 over the labels sorted by name (order-independent, stable across versions)."""
    h = hashlib.sha256()
    for name in sorted(labels):
        h.update(name.encode())
        h.update(b"\xff")
        h.update(str(labels[name]).encode())
        h.update(b"\xff")
    return h.hexdigest()[:16]
