"""Exact and near-duplicate detection over a bounded window of recent documents.

The same story re-published by several sources is kept but flagged: ``duplicate_of`` names the first
document seen. Only documents about the same entities (``scope``, e.g. their tickers) can be duplicates
of each other: "Apple beats estimates" and "Oracle beats estimates" are two stories. Exact duplicates share a fingerprint of their words; near duplicates have a MinHash
Jaccard similarity of word 2-shingles above the threshold (datasketch LSH). Memory is bounded by
``window`` documents; a redelivered document (same id) gets the same answer as the first time while it
is in the window.
"""

from __future__ import annotations

import hashlib
import re
import zlib
from collections import OrderedDict

import numpy as np
from datasketch import MinHash, MinHashLSH

_WORD = re.compile(r"[a-z0-9$%.]+")
NUM_PERM = 32
SHINGLE = 2
# permutations drawn once: drawing them per MinHash costs 5x the hashing itself
_TEMPLATE = MinHash(num_perm=NUM_PERM)


def _hash32(data: bytes) -> int:
    # CRC32 (C) instead of datasketch's default sha1: several times faster, and deterministic
    return zlib.crc32(data)


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def fingerprint(text: str, scope: str = "") -> str:
    return hashlib.blake2b((scope + "\x1f" + " ".join(words(text))).encode(), digest_size=12).hexdigest()


def shingles(tokens: list[str], size: int = SHINGLE) -> set[bytes]:
    if len(tokens) < size:
        return {" ".join(tokens).encode()}
    return {" ".join(tokens[i : i + size]).encode() for i in range(len(tokens) - size + 1)}


class Deduplicator:
    def __init__(self, window: int = 50_000, threshold: float = 0.6, min_words: int = 6):
        self.window = window
        self.min_words = min_words
        self.threshold = threshold
        # weigh misses over false candidates: candidates are verified against the threshold below
        self._lsh = MinHashLSH(threshold=threshold, num_perm=NUM_PERM, weights=(0.2, 0.8))
        self._hashes: dict[str, np.ndarray] = {}  # signatures of originals, to verify LSH candidates
        # one MinHash reused for every document: creating one per document costs more than hashing
        self._minhash = MinHash(num_perm=NUM_PERM, permutations=_TEMPLATE.permutations, scheme=_TEMPLATE.scheme,
                                hashfunc=_hash32)
        self._seen: OrderedDict[str, str] = OrderedDict()  # doc_id -> duplicate_of ('' for originals)
        self._exact: dict[str, str] = {}  # fingerprint -> first doc_id
        self._fp_of: dict[str, str] = {}  # doc_id -> fingerprint
        self._scope: dict[str, str] = {}  # doc_id -> scope
        self._arrival: dict[str, int] = {}  # doc_id -> arrival number, to pick the earliest candidate
        self._next = 0

    def __len__(self) -> int:
        return len(self._seen)

    def check(self, doc_id: str, text: str, scope: str = "", near: bool = True) -> str:
        """The doc_id of the first document of the same story within ``scope``, or '' when this is the first.
        ``near=False`` looks for exact duplicates only."""
        if doc_id in self._seen:
            return self._seen[doc_id]
        tokens = words(text)
        fp = fingerprint(text, scope)
        original = self._exact.get(fp, "")
        minhash = None
        if not original and near and len(tokens) >= self.min_words:
            minhash = self._minhash
            minhash.clear()
            minhash.update_batch(list(shingles(tokens)))
            candidates = [
                c for c in self._lsh.query(minhash)
                if self._scope.get(c) == scope and float(np.mean(minhash.hashvalues == self._hashes[c])) >= self.threshold
            ]
            if candidates:
                # the earliest document still in the window is the story's original
                original = min(candidates, key=lambda c: self._arrival.get(c, 0))
                original = self._seen.get(original) or original
        self._remember(doc_id, original, fp, scope, minhash)
        return original

    def _remember(self, doc_id: str, original: str, fp: str, scope: str, minhash: MinHash | None) -> None:
        self._seen[doc_id] = original
        self._arrival[doc_id] = self._next
        self._next += 1
        self._fp_of[doc_id] = fp
        self._scope[doc_id] = scope
        self._exact.setdefault(fp, doc_id)
        if minhash is not None and not original:
            self._lsh.insert(doc_id, minhash)  # stores band hashes, not the object
            self._hashes[doc_id] = minhash.hashvalues.copy()
        while len(self._seen) > self.window:
            old, _ = self._seen.popitem(last=False)
            self._arrival.pop(old, None)
            old_fp = self._fp_of.pop(old)
            self._scope.pop(old, None)
            if self._exact.get(old_fp) == old:
                del self._exact[old_fp]
            if self._hashes.pop(old, None) is not None:
                self._lsh.remove(old)
