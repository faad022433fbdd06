"""The Kafka layer's settings: where the Kafka protocol is spoken, and the topics' names."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Protocol

from pydantic import BaseModel, Field, SecretStr


class KafkaSettings(BaseModel):
    """Where the Kafka protocol is spoken. The default is where ``sentimon broker`` (local tansu) listens."""

    bootstrap_servers: str = Field("127.0.0.1:9092", description="host:port[,host:port]; any Kafka-protocol cluster")
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: str | None = Field(None, description="PLAIN, SCRAM-SHA-256, SCRAM-SHA-512")
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_cafile: Path | None = None
    partitions: int = Field(4, ge=1, description="partitions of the topics Sentimon creates")
    replication_factor: int = Field(1, ge=1)
    # tansu joins a group only after session.timeout/2 (docs/platform.md): keep this short locally
    session_timeout_s: float = Field(6.0, gt=0)
    fetch_max_wait_ms: int = Field(100, ge=1, description="longest a consumer fetch waits for data (latency)")
    # one Faust consumer feeds every stage of a worker: a bounded poll lets documents pass a raw backlog
    max_poll_records: int = Field(
        100, ge=1, description="most records one poll hands a worker's stages (the partitions take turns)")
    # tansu 0.x can answer a retried idempotent produce DuplicateSequenceNumber for a batch it did not keep
    # after a crash, and librdkafka then reports it delivered: acknowledged data lost (`python -m bench broker`)
    idempotence: bool = Field(
        False,
        description="idempotent producers (no duplicates on retry). Off: a retry may write a batch twice, which the "
        "idempotent sinks absorb, one request in flight per broker keeps partition order. Turn on for Apache Kafka; "
        "keep off for tansu, which can lose acknowledged batches with it after a crash",
    )


class TopicSettings(BaseModel):
    """Topic names; ``prefix`` separates environments and replay runs (``prefix`` + name)."""

    prefix: str = Field("", description="e.g. 'prod.' or 'replay-2026-11-01.'")
    raw_news: str = "raw-news"
    raw_social: str = "raw-social"
    documents: str = "documents"
    scores: str = "scores"
    dead_letters: str = "dead-letters"
    alerts: str = "alerts"

    def name(self, topic: str) -> str:
        """The full name of one of the fields above, prefix included."""
        return self.prefix + getattr(self, topic)


class KafkaConfig(Protocol):
    """Where the topics are and what they are called (the application's settings object has both)."""

    kafka: KafkaSettings
    topics: TopicSettings
