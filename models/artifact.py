"""Versioned model directories: ``<models_dir>/<name>/<version>/``.

A version directory holds ``model.safetensors`` (encoder and heads), the encoder ``config.json``,
the tokenizer files, ``labels.json``, ``training.json`` (config, data, timing), ``metrics.json`` and
a model card ``README.md``. Versions are integers, newest highest (Triton's convention).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from transformers import AutoTokenizer, PreTrainedTokenizerBase

from models.labels import LABELS
from models.network import MultiTaskClassifier, load_encoder_config

WEIGHTS = "model.safetensors"
CHECKSUMS = "SHA256SUMS"
# The released model ships inside the package (``models/release/<name>/<version>/``): every command uses it
# unless told otherwise, with no training and no model hub.
RELEASED_DIR = Path(__file__).resolve().parent / "release"


@dataclass(frozen=True)
class ModelRef:
    """Where a model version lives and what it is called in scores."""

    path: Path
    name: str
    version: str


def versions(name_dir: Path) -> list[int]:
    if not name_dir.is_dir():
        return []
    return sorted(int(p.name) for p in name_dir.iterdir() if p.name.isdigit() and (p / WEIGHTS).is_file())


def next_version_dir(models_dir: Path, name: str) -> Path:
    existing = versions(models_dir / name)
    return models_dir / name / str((existing[-1] if existing else 0) + 1)


def released() -> list[Path]:
    """The name directories of the released models shipped with the package."""
    if not RELEASED_DIR.is_dir():
        return []
    return sorted(p for p in RELEASED_DIR.iterdir() if versions(p))


def resolve(spec: str, models_dir: Path) -> ModelRef:
    """Find a model: a version directory, a name directory (newest version), a name under models_dir or
    among the released models, or 'auto' (the released model; without one the newest trained
    ``sentimon-release``, ``sentimon-full``, then ``sentimon-fast``). FileNotFoundError says what to build."""
    candidates: list[Path]
    if spec == "auto":
        candidates = [*released(), *(models_dir / f"sentimon-{p}" for p in ("release", "full", "fast"))]
    else:
        candidates = [Path(spec), models_dir / spec, RELEASED_DIR / spec]
    for path in candidates:
        if (path / WEIGHTS).is_file():
            return ModelRef(path, path.parent.name, path.name)
        found = versions(path)
        if found:
            return ModelRef(path / str(found[-1]), path.name, str(found[-1]))
    raise FileNotFoundError(
        f"no model found for {spec!r} under {models_dir} or {RELEASED_DIR}: restore the released model "
        "(`git checkout -- models/release`), run `make models-full` (or `make models` for the test model), "
        "or set SENTIMON_MODEL to a model directory"
    )


def save(
    model: MultiTaskClassifier,
    tokenizer: PreTrainedTokenizerBase,
    out_dir: Path,
    training: dict[str, Any],
) -> Path:
    """Write weights, encoder config, tokenizer, labels and training record into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    save_weights(model, out_dir)
    model.config.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    write_json(out_dir / "labels.json", {task: list(LABELS[task]) for task in model.tasks})
    write_json(out_dir / "training.json", training)
    return out_dir


def save_weights(model: MultiTaskClassifier, out_dir: Path) -> None:
    """(Re)write ``model.safetensors`` of a version directory."""
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(Path(out_dir) / WEIGHTS), metadata={"format": "pt"})


def load_checked(path: Path) -> tuple[tuple[str, ...], PreTrainedTokenizerBase, dict[str, Any]]:
    """Everything of a version but its network: (tasks, tokenizer, training record), after checking its
    files against ``SHA256SUMS`` and its labels against our taxonomy."""
    path = Path(path)
    verify_checksums(path)
    labels = read_json(path / "labels.json")
    for task, names in labels.items():
        if tuple(names) != LABELS[task]:
            raise ValueError(f"{path}: labels of {task!r} differ from the project taxonomy; retrain the model")
    return tuple(labels), load_tokenizer(path), load_training(path)


def load(path: Path) -> tuple[MultiTaskClassifier, PreTrainedTokenizerBase, dict[str, Any]]:
    """Load a version directory for inference (eval mode), checked as :func:`load_checked` does.
    Bounds the CPU kernels' cache for the life of the process (:func:`bound_kernel_cache`)."""
    path = Path(path)
    bound_kernel_cache()
    tasks, tokenizer, training = load_checked(path)
    model = MultiTaskClassifier(
        MultiTaskClassifier.from_config(load_encoder_config(path)).encoder, dropout=0.0, tasks=tasks
    )
    load_weights(model, path)
    model.eval()
    return model, tokenizer, training


def bound_kernel_cache() -> None:
    """No oneDNN primitive cache unless ``ONEDNN_PRIMITIVE_CACHE_CAPACITY`` says otherwise (read at the
    first forward pass). Why: it keeps kernels per input shape (batch x sequence length, thousands of them
    for live micro-batches) and grew a model process by 115-132 MB over 600 batches of random shapes, still growing at
    a 64-entry cap; with none, memory stayed flat and a backlog scored at the same speed (measured here)."""
    os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "0")


def load_tokenizer(path: Path) -> PreTrainedTokenizerBase:
    """The version's own tokenizer (every backend tokenizes with it)."""
    return AutoTokenizer.from_pretrained(str(path), local_files_only=True)


def load_training(path: Path) -> dict[str, Any]:
    """The version's ``training.json`` ({} when absent)."""
    return read_json(Path(path) / "training.json") if (Path(path) / "training.json").is_file() else {}


def max_length(training: dict[str, Any]) -> int:
    """Tokens the model was trained on; inference truncates every text to it, on every backend."""
    return int(training.get("config", {}).get("max_length", 64))


def load_weights(model: MultiTaskClassifier, path: Path, *, zero_adjustments: bool = False) -> None:
    """Load a version's weights into ``model``; ValueError on any mismatch but absent logit adjustments
    (versions from before they existed). ``zero_adjustments`` drops the stored ones (to train on raw logits)."""
    state = load_file(str(Path(path) / WEIGHTS))
    if zero_adjustments:
        state = {k: torch.zeros_like(v) if k.startswith("logit_adjust_") else v for k, v in state.items()}
    missing, unexpected = model.load_state_dict(state, strict=False)
    if unexpected or any(not key.startswith("logit_adjust_") for key in missing):
        raise ValueError(f"{path}: weights do not match the network (missing {missing}, unexpected {unexpected})")


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_checksums(path: Path) -> Path:
    """Write ``SHA256SUMS`` (``sha256sum`` format) over every file of a version directory."""
    path = Path(path)
    files = sorted(p for p in path.iterdir() if p.is_file() and p.name != CHECKSUMS)
    (path / CHECKSUMS).write_text("".join(f"{sha256(p)}  {p.name}\n" for p in files))
    return path / CHECKSUMS


def verify_checksums(path: Path) -> None:
    """Check every file ``SHA256SUMS`` lists (nothing to do without one); ValueError names a changed or
    missing file. The released model carries one, so a damaged checkout fails loudly instead of scoring."""
    listing = Path(path) / CHECKSUMS
    if not listing.is_file():
        return
    for line in listing.read_text().splitlines():
        if not line.strip():
            continue
        expected, _, name = line.partition("  ")
        target = Path(path) / name
        if not target.is_file():
            raise ValueError(f"{path}: {name} is missing (listed in {CHECKSUMS}); restore it, e.g. `git checkout -- {target}`")
        if sha256(target) != expected:
            raise ValueError(
                f"{path}: {name} does not match its checksum in {CHECKSUMS}: the model files are damaged or were "
                f"changed; restore them (e.g. `git checkout -- {path}`) or package a new version"
            )


def write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")


def read_json(path: Path) -> Any:
    return json.loads(Path(path).read_text())

