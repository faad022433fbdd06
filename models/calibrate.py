"""Decision calibration on held-out training rows (``sentimon calibrate``), never on validation data.

Two logit offsets are chosen after training, both stored in the model's logit adjustments so every
backend applies them:

- **topic prior correction strength** ``lam``: the offsets ``-lam * log(class weight)`` move topic
  decisions from balanced (lam = 0, good for rare topics) towards the true prior (lam = 1, more accurate).
  The most accurate ``lam`` is kept whose held-out macro-F1 stays within ``f1_tolerance`` of lam = 0's.
- **neutral offset** ``b <= 0`` added to the sentiment head's neutral logit after its full prior
  correction: a negative ``b`` makes the model call clear-toned text neutral less often. The ``b`` with
  the best held-out macro-F1 is kept among those within ``accuracy_tolerance`` of the best held-out
  accuracy. Positive offsets are not tried: on tweets they can buy held-out accuracy, but they cost
  clearly toned text from elsewhere its tone (measured: +1.0 took 5.8 points of accuracy off FiQA posts
  and 2.1 off SemEval headlines), and tone the signed score misses is an alert the desk never gets.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.dataset import LabelledTexts
from models.labels import LABELS, Task
from models.significance import scores as _scores

STRENGTHS = tuple(round(x * 0.1, 1) for x in range(11))
NEUTRAL_OFFSETS = tuple(round(x * 0.1, 1) for x in range(-20, 1))


@dataclass(frozen=True)
class Choice:
    value: float
    accuracy: float
    macro_f1: float


def topic_strength(
    raw_logits: np.ndarray, y: Sequence[int], class_weights: Sequence[float], f1_tolerance: float = 0.01,
    strengths: Sequence[float] = STRENGTHS,
) -> tuple[Choice, list[Choice]]:
    """The chosen prior-correction strength for topic and every candidate's held-out figures."""
    y_arr = np.asarray(y)
    offsets = -np.log(np.clip(np.asarray(class_weights, dtype=np.float64), 1e-12, None))
    k = raw_logits.shape[1]
    grid = [Choice(lam, *_scores(y_arr, (raw_logits + lam * offsets).argmax(1), k)) for lam in strengths]
    floor = grid[0].macro_f1 - f1_tolerance
    allowed = [c for c in grid if c.macro_f1 >= floor] or grid[:1]
    return max(allowed, key=lambda c: (c.accuracy, c.macro_f1)), grid


def neutral_offset(
    corrected_logits: np.ndarray, y: Sequence[int], accuracy_tolerance: float = 0.003,
    offsets: Sequence[float] = NEUTRAL_OFFSETS,
) -> tuple[Choice, list[Choice]]:
    """The chosen offset on the neutral logit (after the prior correction) and every candidate's figures."""
    y_arr = np.asarray(y)
    neutral = LABELS["sentiment"].index("neutral")
    k = corrected_logits.shape[1]
    grid = []
    for b in offsets:
        shifted = corrected_logits.copy()
        shifted[:, neutral] += b
        grid.append(Choice(b, *_scores(y_arr, shifted.argmax(1), k)))
    best_accuracy = max(c.accuracy for c in grid)
    allowed = [c for c in grid if c.accuracy >= best_accuracy - accuracy_tolerance]
    # ties go to the offset closest to 0 (the least change)
    return max(allowed, key=lambda c: (c.macro_f1, -abs(c.value))), grid


def calibrate_artifact(path: Path, train_sets: dict[Task, LabelledTexts], log: Callable[[str], None] = print) -> dict:
    """Choose both offsets on the rows the model's training held out, write them into the version's
    weights and record the choice (with every candidate's held-out figures) in ``training.json``."""
    import torch

    from models import artifact
    from models.classifier import predict_proba
    from models.preprocess import prepare
    from models.profiles import TrainConfig
    from models.train import training_rows

    path = Path(path)
    model, tokenizer, training = artifact.load(path)
    config = TrainConfig(**training["config"])
    if not config.holdout or "class_weights" not in training:
        raise ValueError(f"{path} was trained without held-out rows: nothing to calibrate on (train with holdout > 0)")
    _, held = training_rows(config, train_sets)
    for task in model.tasks:
        model.set_logit_adjustment(task, torch.zeros(len(LABELS[task])))
    record: dict = {"held_out_rows": {t: len(d) for t, d in held.items()}}
    for task, data in held.items():
        probs = predict_proba(model, tokenizer, [prepare(x) or "." for x in data.texts], config.max_length)[task]
        raw = np.log(np.clip(probs.astype(np.float64), 1e-12, None))
        offsets = -np.log(np.clip(np.asarray(training["class_weights"][task], dtype=np.float64), 1e-12, None))
        if task == "topic":
            choice, grid = topic_strength(raw, data.labels, training["class_weights"][task])
            adjust = choice.value * offsets
            log(f"topic prior correction strength {choice.value}: held-out accuracy {choice.accuracy:.4f}, "
                f"macro-F1 {choice.macro_f1:.4f} (strength 0: {grid[0].accuracy:.4f} / {grid[0].macro_f1:.4f})")
        else:
            choice, grid = neutral_offset(raw + offsets, data.labels)
            adjust = offsets.copy()
            adjust[LABELS["sentiment"].index("neutral")] += choice.value
            base = next(c for c in grid if c.value == 0)
            log(f"sentiment neutral offset {choice.value:+.1f}: held-out accuracy {choice.accuracy:.4f}, "
                f"macro-F1 {choice.macro_f1:.4f} (offset 0: {base.accuracy:.4f} / {base.macro_f1:.4f})")
        model.set_logit_adjustment(task, torch.tensor(adjust, dtype=torch.float32))
        record[task] = {
            "parameter": "strength" if task == "topic" else "neutral_offset",
            "chosen": choice.__dict__,
            "grid": [c.__dict__ for c in grid],
            "logit_adjustment": [round(float(x), 6) for x in adjust],
        }
    artifact.save_weights(model, path)
    training["calibration"] = record
    artifact.write_json(path / "training.json", training)
    return record
