"""The Faust applications: the stages wired to topics, one module each (``pipeline``, ``store``, ``alerting``),
what they share in ``common``.

* ``pipeline`` (scale out: one worker per few partitions): ``ingest`` (raw news + social -> documents,
  dead letters) and ``scoring`` (documents -> scores, micro-batched into the classifier).
* ``store`` (exactly one per chDB path; per partition set with a server): ``sink`` (scores -> ClickHouse),
  ``dead_letters`` (the dead-letter topic -> a table, for dashboards), ``archive`` (the raw topics ->
  ``raw_items``, so history can be replayed),
  and alerting (rules evaluated in event time, notifications from the alerts topic) unless it runs as
* ``alerts`` (``sentimon alerts run``; one per deployment, against a ClickHouse server).

Each stage takes micro-batches with ``noack_take(n, within=max_wait)``, writes its output (Kafka
delivery confirmed, or the store insert returned) and only then acknowledges the batch, so the
offsets Faust commits never cover unwritten work. A part that is down (the store, Kafka, the scorer) is waited
out; items the store or the scorer refuse are isolated and dead-lettered (:mod:`streams.errors`). Anything
else crashes the worker (instead of Faust's default of restarting the agent past the unacknowledged batch):
a restarted worker resumes from the committed offsets. Consumer groups are per role, so scoring workers and the store worker
scale independently.

Between stages a message is an envelope of many documents (:mod:`streams.envelope`): Faust's cost per
message is then paid once per envelope, not once per document.
"""

from __future__ import annotations

from sentimon.apps.alerting import alerts_app
from sentimon.apps.common import PRODUCER, Outbox, Role
from sentimon.apps.pipeline import pipeline_app
from sentimon.apps.store import store_app, summarize

__all__ = ["PRODUCER", "Outbox", "Role", "alerts_app", "pipeline_app", "store_app", "summarize"]
