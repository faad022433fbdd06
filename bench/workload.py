"""The workload every throughput benchmark shares: a backlog of synthetic raw items, and the texts the scoring
stage sees for them."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import orjson

from streams.ingest import Ingested, Ingestor, RawRecord
from streams.synthetic import SyntheticFeed


def backlog(n: int, seed: int) -> list[tuple[str, bytes]]:
    """A backlog of ``n`` raw items (kind, bytes) with event times a day in the past."""
    start = datetime.now(timezone.utc) - timedelta(days=1)
    return [(k, orjson.dumps(i)) for _, k, i in SyntheticFeed(seed=seed, start=start, rhythm=False).items(n, 50.0)]


def scoring_texts(items: list[tuple[str, bytes]]) -> list[str]:
    """The texts the scoring stage sees for these raw items (ingested as the pipeline does)."""
    outcomes = Ingestor(b"bench").process([RawRecord(k, v, "t", 0, 0) for k, v in items])
    return [orjson.loads(d.json)["text"] for d in outcomes if isinstance(d, Ingested)]
