"""Weight averaging across versions (``sentimon average``): the element-wise mean of several fine-tuned
versions of one network, a "model soup".

Versions fine-tuned from the same pretrained encoder with the same head initialisation (same seed) stay
close enough in weight space that their mean is itself a good model, often better than either on text
unlike the training rows. The mean is taken on raw logits: the logit adjustments (prior correction and
calibration) are zeroed and chosen again on the held-out rows, which must therefore be the same rows
for every version (same hold-out share and seed).
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from models import artifact, release

# what every averaged version must share: the network's shape, its inputs, and the held-out rows
SHARED_CONFIG = ("backbone", "tasks", "max_length", "holdout", "seed")


def average_state(states: Sequence[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """The float32 mean of ``states`` (same keys and shapes; ValueError otherwise), logit adjustments zeroed."""
    if len(states) < 2:
        raise ValueError("averaging needs at least two versions")
    keys = set(states[0])
    for i, state in enumerate(states[1:], 2):
        if set(state) != keys:
            raise ValueError(f"version {i} has different weights: {sorted(set(state) ^ keys)[:5]}")
    mean: dict[str, torch.Tensor] = {}
    for key in sorted(keys):
        shapes = {tuple(s[key].shape) for s in states}
        if len(shapes) > 1:
            raise ValueError(f"{key}: shapes differ between versions {sorted(shapes)}")
        if key.startswith("logit_adjust_"):
            mean[key] = torch.zeros_like(states[0][key], dtype=torch.float32)
        else:
            mean[key] = torch.stack([s[key].float() for s in states]).mean(0).contiguous()
    return mean


def check_compatible(trainings: Sequence[dict]) -> None:
    """ValueError unless every training record shares :data:`SHARED_CONFIG` and its class weights (the prior
    correction is the same for all) and held rows out for calibration."""
    first = trainings[0]
    for i, training in enumerate(trainings[1:], 2):
        for field in SHARED_CONFIG:
            if training["config"].get(field) != first["config"].get(field):
                raise ValueError(f"version {i} differs in {field} ({training['config'].get(field)!r} against "
                                 f"{first['config'].get(field)!r}): only versions of one network trained on the same "
                                 "rows can be averaged")
        if training.get("class_weights") != first.get("class_weights"):
            raise ValueError(f"version {i} was trained with other class weights: its prior correction differs")
    if not first["config"].get("holdout"):
        raise ValueError("the versions held no rows out: the averaged weights could not be calibrated")


def average_versions(sources: Sequence[Path], out_dir: Path) -> Path:
    """Write the mean of ``sources`` (version directories, checksums verified) to ``out_dir``, uncalibrated:
    the encoder config, tokenizer and labels of the first, and a training record that names every source."""
    sources = [Path(s) for s in sources]
    for source in sources:
        artifact.verify_checksums(source)
    trainings = [artifact.load_training(s) for s in sources]
    check_compatible(trainings)
    state = average_state([load_file(str(s / artifact.WEIGHTS)) for s in sources])
    out_dir.mkdir(parents=True, exist_ok=False)
    try:
        save_file(state, str(out_dir / artifact.WEIGHTS), metadata={"format": "pt"})
        for file in release.COPIED:
            if (sources[0] / file).is_file() and file != "training.json":
                shutil.copy2(sources[0] / file, out_dir / file)
        record = {k: v for k, v in trainings[-1].items() if k != "calibration"}
        record["averaged_from"] = [str(s) for s in sources]
        artifact.write_json(out_dir / "training.json", record)
    except BaseException:
        shutil.rmtree(out_dir, ignore_errors=True)
        raise
    return out_dir
