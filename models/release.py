"""Packaging a trained version as the released model (``sentimon release``).

The release is what a fresh clone scores with: the weights in float16 safetensors (half the size,
the same decisions; the loader widens them to float32), the encoder config, tokenizer, labels,
training record, metrics, model card and a ``SHA256SUMS`` the loader verifies. A new release must
beat the current one in a paired test on the validation splits (``sentimon evaluate --compare``).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from models import artifact

COPIED = ("config.json", "labels.json", "training.json", "tokenizer.json", "tokenizer_config.json",
          "special_tokens_map.json", "vocab.txt")


def half_precision(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Float weights as float16; the logit adjustments (small offsets) stay float32."""
    return {
        k: v.half().contiguous() if v.is_floating_point() and not k.startswith("logit_adjust_") else v.contiguous()
        for k, v in state.items()
    }


PROJECT_ROOT = Path(__file__).resolve().parents[1]


def portable(training: dict, root: Path = PROJECT_ROOT) -> dict:
    """The training record with the machine's absolute paths (``init_from``, ``teacher``, ``averaged_from``) made
    relative to the project, so a release says where its parents came from on any clone."""

    def relative(path: str) -> str:
        return str(Path(path).relative_to(root)) if Path(path).is_absolute() and Path(path).is_relative_to(root) else path

    config = dict(training.get("config", {}))
    if config.get("init_from"):
        config["init_from"] = relative(config["init_from"])
    if config.get("teacher"):  # one teacher, or an ensemble joined with "+"
        config["teacher"] = "+".join(relative(part) for part in config["teacher"].split("+"))
    record = {**training, "config": config}
    if "averaged_from" in training:
        record["averaged_from"] = [relative(p) for p in training["averaged_from"]]
    return record


def package(source: Path, name: str, version: int | None = None, root: Path = artifact.RELEASED_DIR) -> Path:
    """Write ``root/name/version`` from a trained version directory (next version when None): weights,
    config, tokenizer, labels and training record. Evaluate it there (metrics and card describe what ships),
    then seal it with :func:`models.artifact.write_checksums`."""
    source = Path(source)
    artifact.verify_checksums(source)
    dest = root / name / str(version) if version is not None else artifact.next_version_dir(root, name)
    if dest.exists():
        raise FileExistsError(f"{dest} exists: releases are never overwritten; package a new version")
    dest.mkdir(parents=True)
    try:
        save_file(half_precision(load_file(str(source / artifact.WEIGHTS))), str(dest / artifact.WEIGHTS),
                  metadata={"format": "pt"})
        for file in COPIED:
            if (source / file).is_file() and file != "training.json":
                shutil.copy2(source / file, dest / file)
        artifact.write_json(dest / "training.json", portable(artifact.load_training(source)))
    except BaseException:
        shutil.rmtree(dest, ignore_errors=True)
        raise
    return dest


def verdict(validation: dict[str, dict], others: dict[str, dict[str, dict]] | None = None,
            alpha: float = 0.05) -> tuple[bool, str]:
    """Whether a candidate may replace the release, from the paired tests (candidate minus release): on the
    validation splits (``{task: result}``) no task's accuracy lower and at least one task better beyond
    chance (at most ``alpha`` of the bootstrap resamples not better); on the evaluation-only sets
    (``others``: ``{set: {task: result}}``, only ever a guard) none worse beyond chance (the whole 95%
    interval of the difference below zero). Returns (ok, why)."""
    figures = "; ".join(f"{task} {r['accuracy']['difference'] * 100:+.2f} points "
                        f"(share of resamples not better {r['accuracy']['p_a_not_better']:.3f})"
                        for task, r in validation.items())
    worse = [task for task, r in validation.items() if r["accuracy"]["difference"] < 0]
    if worse:
        return False, f"lower accuracy than the release on {', '.join(worse)}: {figures}"
    if not any(r["accuracy"]["p_a_not_better"] <= alpha for r in validation.values()):
        return False, f"not better than the release beyond chance on any task: {figures}"
    regressions = [f"{name} {task} {r['accuracy']['difference'] * 100:+.2f} points "
                   f"[{r['accuracy']['ci'][0] * 100:+.1f}, {r['accuracy']['ci'][1] * 100:+.1f}]"
                   for name, by_task in (others or {}).items() for task, r in by_task.items()
                   if r["accuracy"]["ci"][1] < 0]
    if regressions:
        return False, f"better on validation ({figures}) but worse beyond chance on {', '.join(regressions)}"
    return True, figures
