"""Shared fixtures. The tiny model is trained once per session on real data with the real backbone."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest

from models.dataset import load
from models.labels import TASKS
from models.profiles import TrainConfig
from sentimon.settings import Settings

TINY = TrainConfig(
    profile="tiny",
    max_length=48,
    epochs=1.0,
    lr=2e-4,
    train_limit={"sentiment": 800, "topic": 1200},
    eval_limit=None,
    checkpoint_every=1000,
)


@pytest.fixture(scope="session")
def settings() -> Settings:
    return Settings()


@pytest.fixture(scope="session")
def data_dir(settings: Settings) -> Path:
    if not settings.data_dir.is_dir():
        pytest.fail(f"training data missing at {settings.data_dir}: set SENTIMON_DATA_DIR")
    return settings.data_dir


@pytest.fixture(scope="session")
def train_sets(data_dir: Path):
    return {t: load(t, "train", data_dir) for t in TASKS}


@pytest.fixture(scope="session")
def valid_small(data_dir: Path):
    return {t: load(t, "valid", data_dir).sample(400, seed=1) for t in TASKS}


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory, train_sets, valid_small):
    """(artifact dir, in-memory model) of a ~1 min multi-task training run."""
    from models.train import train

    root = tmp_path_factory.mktemp("tiny")
    out = root / "models" / "sentimon-tiny" / "1"
    model, _ = train(TINY, train_sets, valid_small, root / "run", out, progress=False, log=lambda _: None)
    return out, model


@pytest.fixture(autouse=True)
def fresh_settings():
    """Commands read settings through a cache; each test starts from its own environment."""
    from sentimon.settings import get_settings

    get_settings.cache_clear()
    yield
    get_settings.cache_clear()
