"""Exact and near-duplicate detection over a bounded window of recent documents.

The same story re-published by several sources is kept but flagged: ``duplicate_of`` names the first
document seen. Only documents about the same entities (``scope``, e.g. their tickers) can be duplicates
of each other: "Apple beats estimates" and "Oracle beats estimates" are two stories.

Exact duplicates share a fingerprint of their words. Near duplicates have a MinHash estimate of the
Jaccard similarity of their word pairs above the threshold, found through LSH (8 bands of 4 rows:
candidates from about 0.6 up) and verified on the signatures. Signatures are computed for a whole
micro-batch in a few numpy operations: a MinHash object per document (datasketch) cost ~100 us per
document, most of the ingest stage. Memory is bounded by ``window`` documents; a redelivered document
(same id) gets the same answer as the first time while it is in the window.
"""

from __future__ import annotations

import hashlib
import re
import zlib
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

_WORD = re.compile(r"[a-z0-9$%.]+")
NUM_PERM = 32
BANDS, ROWS = 8, 4  # BANDS * ROWS == NUM_PERM; threshold of the S-curve ~ (1/BANDS) ** (1/ROWS) = 0.59
SHINGLE = 2
_PRIME = np.uint64((1 << 61) - 1)
_MAX32 = np.uint64(0xFFFFFFFF)
_rng = np.random.RandomState(1)
_A = _rng.randint(1, (1 << 61) - 1, size=NUM_PERM, dtype=np.uint64)
_B = _rng.randint(0, (1 << 61) - 1, size=NUM_PERM, dtype=np.uint64)


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def fingerprint(text: str, scope: str = "") -> str:
    return hashlib.blake2b((scope + "\x1f" + " ".join(words(text))).encode(), digest_size=12).hexdigest()


def shingles(tokens: list[str], size: int = SHINGLE) -> set[bytes]:
    if len(tokens) < size:
        return {" ".join(tokens).encode()}
    return {" ".join(tokens[i : i + size]).encode() for i in range(len(tokens) - size + 1)}


def signatures(shingle_sets: Sequence[set[bytes]]) -> np.ndarray:
    """MinHash signatures, shape (len(shingle_sets), NUM_PERM), uint32 values in uint64; sets must be non-empty."""
    counts = [len(s) for s in shingle_sets]
    hashes = np.fromiter((zlib.crc32(b) for s in shingle_sets for b in s), dtype=np.uint64, count=sum(counts))
    with np.errstate(over="ignore"):  # the universal hash wraps around 2**64 on purpose
        permuted = ((hashes[:, None] * _A + _B) % _PRIME) & _MAX32
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    return np.minimum.reduceat(permuted, starts, axis=0)


_MIX = np.array([0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9, 0x27D4EB2F165667C5], dtype=np.uint64)


def band_keys(sigs: np.ndarray) -> list[list[int]]:
    """Per signature, one integer key per LSH band (a mix of the band's rows)."""
    with np.errstate(over="ignore"):
        mixed = (sigs.reshape(len(sigs), BANDS, ROWS) * _MIX).sum(axis=2)
    return (mixed + np.arange(BANDS, dtype=np.uint64)).tolist()


@dataclass(frozen=True)
class Candidate:
    """One document to check: ``near=False`` looks for exact duplicates only."""

    doc_id: str
    text: str
    scope: str = ""
    near: bool = True


class Key(NamedTuple):
    """What duplicate detection needs of one document, computed without the window (pure, so helper
    processes can compute it): the exact fingerprint and, for near duplicates, the MinHash signature
    (``NUM_PERM`` uint64 values as bytes) with its LSH band keys. A tuple: cheap to pass between processes."""

    doc_id: str
    scope: str
    fingerprint: str
    signature: bytes | None = None
    bands: tuple[int, ...] = ()


def keys(items: Sequence[Candidate], min_words: int = 6) -> list[Key]:
    """The :class:`Key` of each candidate, signatures computed for the whole batch at once."""
    prepared = []
    for item in items:
        tokens = words(item.text)
        near = shingles(tokens) if item.near and len(tokens) >= min_words else None
        prepared.append((item, fingerprint(item.text, item.scope), near))
    near_sets = [p[2] for p in prepared if p[2] is not None]
    sig_array = signatures(near_sets) if near_sets else np.empty((0, NUM_PERM), np.uint64)
    sigs = iter(zip(sig_array, band_keys(sig_array)))
    out = []
    for item, fp, near in prepared:
        if near is None:
            out.append(Key(item.doc_id, item.scope, fp))
        else:
            values, bands = next(sigs)
            out.append(Key(item.doc_id, item.scope, fp, values.tobytes(), tuple(bands)))
    return out


class Deduplicator:
    def __init__(self, window: int = 50_000, threshold: float = 0.6, min_words: int = 6):
        self.window = window
        self.threshold = threshold
        self.min_words = min_words
        self._seen: OrderedDict[str, str] = OrderedDict()  # doc_id -> duplicate_of ('' for originals)
        self._exact: dict[str, str] = {}  # fingerprint -> first doc_id
        self._fp_of: dict[str, str] = {}  # doc_id -> fingerprint
        self._scope: dict[str, str] = {}  # doc_id -> scope
        self._signature: dict[str, tuple[np.ndarray, list[int]]] = {}  # originals in the LSH index
        # scope -> band key -> doc_ids: only documents of the same scope are ever candidates, and common
        # word pairs ("shares of", "price target") would otherwise fill buckets with other scopes' stories
        self._buckets: dict[str, dict[int, list[str]]] = {}
        self._agree = int(np.ceil(threshold * NUM_PERM))  # equal signature rows needed
        self._order: dict[str, int] = {}  # doc_id -> arrival number
        self._next = 0

    def __len__(self) -> int:
        return len(self._seen)

    def check(self, doc_id: str, text: str, scope: str = "", near: bool = True) -> str:
        """The doc_id of the first document of the same story within ``scope``, or '' when this is the first."""
        return self.check_batch([Candidate(doc_id, text, scope, near)])[0]

    def check_batch(self, items: Sequence[Candidate]) -> list[str]:
        """:meth:`check` for a batch, in order (a document can be a duplicate of one earlier in the batch)."""
        return self.check_keys(keys(items, self.min_words))

    def check_keys(self, batch: Sequence[Key]) -> list[str]:
        """:meth:`check_batch` for keys computed beforehand (see :func:`keys`)."""
        out = []
        for key in batch:
            if key.doc_id in self._seen:
                out.append(self._seen[key.doc_id])
                continue
            signature = None
            if key.signature is not None:
                signature = (np.frombuffer(key.signature, np.uint64), list(key.bands))
            original = self._exact.get(key.fingerprint, "")
            if not original and signature is not None:
                original = self._near(signature, key.scope)
            self._remember(key.doc_id, original, key.fingerprint, key.scope, signature)
            out.append(original)
        return out

    def _near(self, signature: tuple[np.ndarray, list[int]], scope: str) -> str:
        values, bands = signature
        buckets = self._buckets.get(scope)
        if not buckets:
            return ""
        candidates = {d for band in bands for d in buckets.get(band, ())}
        matches = [c for c in candidates if np.count_nonzero(values == self._signature[c][0]) >= self._agree]
        # the earliest document still in the window is the story's original
        return min(matches, key=self._position) if matches else ""

    def _position(self, doc_id: str) -> int:
        return self._order[doc_id]

    def _remember(self, doc_id: str, original: str, fp: str, scope: str,
                  signature: tuple[np.ndarray, list[int]] | None) -> None:
        self._seen[doc_id] = original
        self._order[doc_id] = self._next
        self._next += 1
        self._fp_of[doc_id] = fp
        self._scope[doc_id] = scope
        self._exact.setdefault(fp, doc_id)
        if signature is not None and not original:
            self._signature[doc_id] = signature
            buckets = self._buckets.setdefault(scope, {})
            for key in signature[1]:
                buckets.setdefault(key, []).append(doc_id)
        while len(self._seen) > self.window:
            self._forget(self._seen.popitem(last=False)[0])

    def _forget(self, old: str) -> None:
        self._order.pop(old, None)
        scope = self._scope.pop(old, None)
        old_fp = self._fp_of.pop(old)
        if self._exact.get(old_fp) == old:
            del self._exact[old_fp]
        signature = self._signature.pop(old, None)
        if signature is not None:
            buckets = self._buckets[scope]
            for key in signature[1]:
                bucket = buckets[key]
                bucket.remove(old)
                if not bucket:
                    del buckets[key]
            if not buckets:
                del self._buckets[scope]
