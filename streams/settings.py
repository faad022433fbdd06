"""The stage library's settings: micro-batching and input bounds, scoring (the local model or Triton), the store,
the raw archive and personal data. The application (:mod:`sentimon.settings`) composes them with the other
layers' sections into one settings object."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import Annotated, Literal, Protocol

from pydantic import BaseModel, Field, SecretStr

from models.runtime import DEFAULT_RUNTIME, RuntimeName
from schemas.base import EARLIEST


class StreamSettings(BaseModel):
    """Micro-batching and input limits of the stream stages."""

    max_batch: int = Field(256, ge=1, description="most raw messages per ingest micro-batch (stream.take)")
    max_envelopes: int = Field(
        8, ge=1, description="most envelopes (JSON Lines messages of documents or scores) per scoring/store micro-batch"
    )
    envelope_max_bytes: int = Field(
        256 * 1024, ge=1024, description="largest envelope a stage produces; keep below the broker's message.max.bytes"
    )
    max_wait_s: float = Field(0.1, gt=0, description="longest wait to fill a micro-batch, seconds")
    sink_max_envelopes: int = Field(16, ge=1, description="most envelopes of scored documents per store insert")
    sink_max_wait_s: float = Field(0.5, gt=0, description="longest wait to fill a store insert, seconds (each insert "
                                   "costs the store its views and merges: at 0.25 s the store worker took the CPU the "
                                   "model needed at 84 docs/s, ingested -> stored p50 2.1 s; at 0.5 s 0.9 s)")
    ingest_processes: int = Field(
        1, ge=0, description="helper processes that parse and normalize large ingest batches (0: all in the worker)"
    )
    max_message_bytes: int = Field(256 * 1024, ge=1024, description="larger raw items (a message, or one line of a JSON Lines message) are dead-lettered")
    max_text_chars: int = Field(20_000, ge=100, description="longer texts are dead-lettered")
    max_future_s: float = Field(300.0, ge=0, description="items whose event time lies further than this after their "
                                "ingestion are dead-lettered (a wrong clock would move the watermark past every window)")
    min_event_time: datetime = Field(EARLIEST, description="items with an earlier event time are dead-lettered "
                                     "(the store holds 1970 onwards)")
    dedup_window: int = Field(50_000, ge=100, description="recent documents remembered for duplicate detection")
    near_duplicate_threshold: float = Field(0.6, gt=0, le=1, description="Jaccard similarity of word pairs")


class ScoringSettings(BaseModel):
    """The classifier behind the scoring stage."""

    backend: Literal["local", "triton", "noop"] = Field(
        "local", description="'local': the model in-process; 'triton': a Triton server (triton.*); "
        "'noop': constant scores (measures pipeline overhead)"
    )
    runtime: RuntimeName = Field(
        DEFAULT_RUNTIME, description="what runs the model in the local model processes and in Triton's python backend: "
        "'ort-int8' (ONNX Runtime, int8 weights: the fastest on CPU), 'ort-fp32', 'torch-fp32' (the trained network "
        "as is), 'torch-int8'; see docs/performance.md for speed and accuracy of each"
    )
    processes: int = Field(2, ge=1, description="model processes of the local backend; each batch is split across them")
    threads: int = Field(1, ge=1, description="threads per local model process (1: no thread of a forward pass "
                         "waits at a barrier for one the rest of the worker preempted)")
    batch_size: int = Field(64, ge=1, description="texts per forward pass (per Triton request)")
    in_flight: int = Field(4, ge=1, description="Triton requests outstanding at once")
    timeout_s: float = Field(30.0, gt=0, description="Triton request timeout, seconds")
    retries: int = Field(3, ge=0, description="retries of a failed Triton request before backing off")


class StoreSettings(BaseModel):
    """ClickHouse: embedded chDB by default, a server by URL. One code path (clickhouse-connect)."""

    dsn: str = Field("", description="'chdb:///path' or 'http(s)://user@host:port' (the password: store.password, or "
                     "in the DSN when it comes from the environment); empty: chdb under var_dir")
    password: SecretStr = Field(SecretStr(""), description="the ClickHouse server's password (http(s) DSNs)")
    database: str = Field("sentimon", description="our own database (chDB's 'default' is special)")


class ArchiveSettings(BaseModel):
    """The raw archive: every raw item kept in the store, so history can be replayed."""

    enabled: bool = Field(True, description="the store worker archives the raw topics (table raw_items)")
    ttl_days: int = Field(0, ge=0, description="keep archived items this many days after archiving; 0: forever")


DEV_PRIVACY_KEY = "sentimon-dev-key"


class PrivacySettings(BaseModel):
    key: SecretStr = Field(
        SecretStr(DEV_PRIVACY_KEY), description="HMAC key for author handles; the public default is refused unless "
        "Kafka is on loopback and the store embedded (a local deployment)"
    )


class TritonSettings(BaseModel):
    """Triton Inference Server: the repository ``sentimon export`` writes and ``sentimon triton`` serves."""

    host: str = Field("127.0.0.1", description="address the local server listens on / the server to use")
    grpc_port: int = Field(8001, ge=0, description="gRPC port (0: a free one, local server only)")
    http_port: int = Field(8000, ge=0, description="HTTP port: health, metadata")
    metrics_port: int = Field(8002, ge=0, description="Prometheus metrics port")
    repository: str = Field("", description="model repository; empty: <var_dir>/triton_repo")
    instances: int = Field(
        2, ge=1, description="model instances (instance_group count), set at export; on a 2-core machine two 1-thread "
        "instances scored 1.7x one 2-thread process (python -m bench triton)"
    )
    kind: Literal["KIND_CPU", "KIND_GPU"] = Field("KIND_CPU", description="instance kind, set at export")
    threads: int = Field(1, ge=1, description="torch threads per instance (1 on a 2-core machine: two instances of 1 thread beat one of 2)")
    max_batch_size: int = Field(256, ge=1, description="largest batch Triton forms")
    preferred_batch_sizes: list[int] = Field([32, 64], description="dynamic batching: batch sizes to aim for")
    queue_delay_us: int = Field(2000, ge=0, description="dynamic batching: longest wait to form a batch, microseconds")
    cpus: list[Annotated[int, Field(ge=0)]] = Field(
        [], description="CPU cores a local server (`sentimon triton`, `make demo`) runs on; empty: any. Beside workers on "
        "one machine, cores of its own keep inference and the stream from taking turns on the same ones"
    )


def redact(dsn: str) -> str:
    """``dsn`` with its password shown as ``***`` (for logs, /health, printed output)."""
    return _DSN_PASSWORD.sub(r"\1:***@", dsn)


_DSN_PASSWORD = re.compile(r"(?<=://)([^:/@]*):[^@/]*@")


class ScoringConfig(Protocol):
    """What building a scorer reads (the application's settings object has it)."""

    model: str
    scoring: ScoringSettings
    triton: TritonSettings

    @property
    def models_dir(self) -> Path: ...

    @property
    def onnx_cache_dir(self) -> Path: ...


class StoreConfig(Protocol):
    """What opening the store reads (the application's settings object has it)."""

    store: StoreSettings
    archive: ArchiveSettings

    @property
    def store_dsn(self) -> str: ...
