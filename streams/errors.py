"""Which failures a stage waits out and which it isolates (pure classification, no I/O).

* **transient**: the store, the broker or the network is down, busy or misconfigured (connection refused, a
  timeout, a full disk, a missing table, wrong credentials). Retrying can help and dropping data cannot: the
  stage retries with capped backoff, acknowledges nothing meanwhile and reports not ready on ``/health``.
* **data**: these items cannot be written however often it is tried (a value out of a column's range, more
  partitions than one insert takes, anything the store refuses while it answers queries). The stage splits
  the batch until each offending item is alone, dead-letters it with the store's reason, its original bytes
  and its source position, and writes the rest.

An error not known to be transient counts as data only while the store answers a probe query: a store that
fails every query is down, and a store that is down never turns a batch into dead letters.
"""

from __future__ import annotations

import re
from typing import Literal

Failure = Literal["transient", "data"]


class ScorerUnavailable(RuntimeError):
    """The scorer cannot answer right now (a server down or overloaded): transient, the stage waits and retries."""

# ClickHouse error codes that say something about the store or the deployment, never about the items
SYSTEMIC_CODES = frozenset({
    3,    # UNEXPECTED_END_OF_FILE
    16,   # NO_SUCH_COLUMN_IN_TABLE (a migration missing)
    32,   # ATTEMPT_TO_READ_AFTER_EOF
    47,   # UNKNOWN_IDENTIFIER
    60,   # UNKNOWN_TABLE
    81,   # UNKNOWN_DATABASE
    159,  # TIMEOUT_EXCEEDED
    164,  # READONLY
    202,  # TOO_MANY_SIMULTANEOUS_QUERIES
    209,  # SOCKET_TIMEOUT
    210,  # NETWORK_ERROR
    236,  # ABORTED
    241,  # MEMORY_LIMIT_EXCEEDED
    242,  # TABLE_IS_READ_ONLY
    243,  # NOT_ENOUGH_SPACE
    285,  # TOO_FEW_LIVE_REPLICAS
    319,  # UNKNOWN_STATUS_OF_INSERT
    394,  # QUERY_WAS_CANCELLED
    425,  # SYSTEM_ERROR
    497,  # ACCESS_DENIED
    516,  # AUTHENTICATION_FAILED
    999,  # KEEPER_EXCEPTION
    1000,  # POCO_EXCEPTION
})
TOO_MANY_PARTS = 252  # "too many parts" (merges behind: transient) or "too many partitions for single INSERT" (data)
_CODE = re.compile(r"\bCode:\s*(\d+)")


def clickhouse_code(exc: BaseException) -> int | None:
    """The ClickHouse error code an exception's message carries (``Code: 252. DB::Exception: ...``), if any."""
    found = _CODE.search(str(exc))
    return int(found.group(1)) if found else None


def classify(exc: BaseException) -> Failure:
    """``transient`` for failures of the world (see the module docstring), ``data`` for everything else."""
    from clickhouse_connect.driver.exceptions import OperationalError

    if isinstance(exc, (OSError, TimeoutError, OperationalError)):  # ConnectionError is an OSError
        return "transient"
    code = clickhouse_code(exc)
    if code in SYSTEMIC_CODES:
        return "transient"
    if code == TOO_MANY_PARTS and "single insert" not in str(exc).lower():
        return "transient"
    return "data"


def reason(exc: BaseException, limit: int = 500) -> str:
    """One line for a dead letter: the error's type and the first line of its message."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
    return f"{type(exc).__name__}: {text[:limit]}"


def kafka_transient(err) -> bool:
    """Whether a Kafka delivery error (confluent-kafka's ``KafkaError``) may pass by itself: the broker
    unreachable, a leader moving, a timeout. Not: a message too large, an unknown topic, no authorization."""
    from confluent_kafka import KafkaError

    transient = {KafkaError._MSG_TIMED_OUT, KafkaError._TIMED_OUT, KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN,
                 KafkaError._RESOLVE, KafkaError.REQUEST_TIMED_OUT, KafkaError.NOT_ENOUGH_REPLICAS,
                 KafkaError.NOT_ENOUGH_REPLICAS_AFTER_APPEND, KafkaError.LEADER_NOT_AVAILABLE,
                 KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError.NETWORK_EXCEPTION}
    return err.code() in transient or err.retriable()
