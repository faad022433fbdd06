"""Model artifacts -> a Triton model repository (``sentimon export``).

Layout written (Triton's): ``<out>/<model name>/config.pbtxt`` and ``<out>/<model name>/<version>/``
holding ``model.py`` (the python backend, from ``triton_repo/python/``) and ``artifact/`` (the model
version's files). The model name and version are the artifact's, so every score records the same
``model``/``model_version`` whichever backend produced it. Serving knobs (dynamic batching, instance
kind and count, threads per instance) are written into ``config.pbtxt`` at export, i.e. at deploy time.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from string import Template
from typing import Literal

from models import artifact
from models.artifact import ModelRef

TEMPLATES = Path(__file__).resolve().parents[1] / "triton_repo" / "python"
ARTIFACT_FILES = ("model.safetensors", "config.json", "labels.json", "training.json", "tokenizer.json",
                  "tokenizer_config.json", "special_tokens_map.json", "vocab.txt")


@dataclass(frozen=True)
class Serving:
    """How Triton serves the model: dynamic batching and instances (see ``triton_repo/python/config.pbtxt``)."""

    max_batch_size: int = 256
    preferred_batch_sizes: tuple[int, ...] = (32, 64)
    queue_delay_us: int = 2000
    instances: int = 1
    kind: Literal["KIND_CPU", "KIND_GPU"] = "KIND_CPU"
    threads: int = 1  # torch threads per instance: on 2 cores, 1 (2 threads ran 4x slower, FIELD_NOTES)

    def __post_init__(self) -> None:
        if not self.preferred_batch_sizes or max(self.preferred_batch_sizes) > self.max_batch_size:
            raise ValueError("preferred batch sizes must be given and at most max_batch_size")
        if self.kind not in ("KIND_CPU", "KIND_GPU"):
            raise ValueError(f"instance kind must be KIND_CPU or KIND_GPU, got {self.kind!r}")
        if self.instances < 1 or self.threads < 1:
            raise ValueError("instances and threads must be at least 1")


def config_pbtxt(serving: Serving, max_length: int) -> str:
    template = Template((TEMPLATES / "config.pbtxt").read_text())
    return template.substitute(
        max_batch_size=serving.max_batch_size,
        preferred_batch_sizes=", ".join(str(b) for b in serving.preferred_batch_sizes),
        queue_delay_us=serving.queue_delay_us,
        instances=serving.instances,
        kind=serving.kind,
        threads=serving.threads,
        max_length=max_length,
    )


def export_python(ref: ModelRef, out: Path, serving: Serving = Serving()) -> Path:
    """Write (or replace) the python-backend version of ``ref`` under ``out``; returns its version directory."""
    if not ref.version.isdigit():
        raise ValueError(f"Triton needs a numeric version directory, got {ref.path} (version {ref.version!r})")
    # the server's hard limit is the encoder's positions; clients truncate to the training length
    max_length = int(artifact.read_json(ref.path / "config.json").get("max_position_embeddings", 512))
    model_dir = Path(out) / ref.name
    version_dir = model_dir / ref.version
    if version_dir.exists():
        shutil.rmtree(version_dir)
    (version_dir / "artifact").mkdir(parents=True)
    shutil.copy2(TEMPLATES / "model.py", version_dir / "model.py")
    for name in ARTIFACT_FILES:
        if (ref.path / name).is_file():
            shutil.copy2(ref.path / name, version_dir / "artifact" / name)
    (model_dir / "config.pbtxt").write_text(config_pbtxt(serving, max_length))
    return version_dir
